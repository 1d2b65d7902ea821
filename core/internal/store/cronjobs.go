package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-pg/pg/v10"
)

// Cron job statuses. Only ACTIVE cron jobs fire.
const (
	CronActive   = "ACTIVE"
	CronDisabled = "DISABLED"
)

// CronJob is a schedule that creates jobs of a spider. Each job gets the cron job's arguments,
// tags, environment variables, resource tier and data persistence as they are when it fires.
type CronJob struct {
	tableName struct{} `pg:"cronjobs"`

	CJID             int64      `pg:"cjid,pk"`
	SpiderID         int64      `pg:"spider_id"`
	Schedule         string     `pg:"schedule"`
	Status           string     `pg:"status"`
	UniqueCollection bool       `pg:"unique_collection,use_zero"`
	DataStatus       string     `pg:"data_status"`
	DataExpiryDays   *int       `pg:"data_expiry_days"`
	ResourceTier     string     `pg:"resource_tier"`
	Args             []Arg      `pg:"args,type:jsonb,use_zero"`
	Tags             []string   `pg:"tags,array,use_zero"`
	Deleted          bool       `pg:"deleted,use_zero"`
	Created          time.Time  `pg:"created"`
	NextRun          *time.Time `pg:"next_run"`
	// ProjectID, SpiderName and SpiderDeleted are read from the cron job's spider.
	ProjectID     string   `pg:"project_id"`
	SpiderName    string   `pg:"spider_name"`
	SpiderDeleted bool     `pg:"spider_deleted,use_zero"`
	EnvVars       []EnvVar `pg:"-"`
}

// Name returns estela's cron job name "scj-<cjid>-<sid>-<pid>".
func (c *CronJob) Name() string {
	return "scj-" + strconv.FormatInt(c.CJID, 10) + "-" + strconv.FormatInt(c.SpiderID, 10) + "-" + c.ProjectID
}

// Collection returns the key "scj<cjid>.<sid>.<pid>" of the data collection that the jobs of
// a cron job with unique_collection share.
func (c *CronJob) Collection() string {
	return "scj" + formatKey(c.CJID, c.SpiderID, c.ProjectID)
}

const cronColumns = "c.*, s.project_id, s.name AS spider_name, s.deleted AS spider_deleted"

// CreateCronJob inserts a cron job of a live spider of project c.ProjectID, with its
// environment variables, in one transaction. A spider that is deleted or belongs to another
// project gives ErrNotFound.
func (s *Store) CreateCronJob(ctx context.Context, c *CronJob) error {
	if c.Args == nil {
		c.Args = []Arg{}
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	args, err := json.Marshal(c.Args)
	if err != nil {
		return fmt.Errorf("encode cron job args: %w", err)
	}
	return s.inTx(ctx, func(tx *pg.Tx) error {
		_, err := tx.QueryOneContext(ctx, pg.Scan(&c.CJID, &c.Created, &c.SpiderName), `
			INSERT INTO cronjobs (spider_id, schedule, status, unique_collection, data_status, data_expiry_days,
				resource_tier, args, tags, next_run)
			SELECT s.sid, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ? FROM spiders s
			WHERE s.sid = ? AND s.project_id = ? AND NOT s.deleted
			RETURNING cjid, created, (SELECT name FROM spiders WHERE sid = spider_id)`,
			c.Schedule, c.Status, c.UniqueCollection, c.DataStatus, c.DataExpiryDays, c.ResourceTier,
			string(args), pg.Array(c.Tags), c.NextRun, c.SpiderID, c.ProjectID)
		if err != nil {
			return mapError("create cron job", err)
		}
		return insertCronEnvVars(ctx, tx, c.CJID, c.EnvVars)
	})
}

func insertCronEnvVars(ctx context.Context, tx *pg.Tx, cjid int64, vars []EnvVar) error {
	for i := range vars {
		ev := &vars[i]
		ev.EVID, ev.ProjectID, ev.SpiderID, ev.JobID, ev.CronjobID = 0, nil, nil, nil, &cjid
		if _, err := tx.ModelContext(ctx, ev).Returning("*").Insert(); err != nil {
			return mapError("create cron job env var", err)
		}
	}
	return nil
}

// CronJob loads a cron job by its whole path: one of another spider or project, or a deleted
// one, is not found. The spider itself may be deleted, so that its cron jobs stay visible.
func (s *Store) CronJob(ctx context.Context, pid string, sid, cjid int64) (*CronJob, error) {
	c := &CronJob{}
	_, err := s.db.QueryOneContext(ctx, c, "SELECT "+cronColumns+` FROM cronjobs c JOIN spiders s ON s.sid = c.spider_id
		WHERE c.cjid = ? AND c.spider_id = ? AND s.project_id = ? AND NOT c.deleted`, cjid, sid, pid)
	return c, mapError("load cron job", err)
}

// SpiderInAnyState loads a spider of a project, deleted or not.
func (s *Store) SpiderInAnyState(ctx context.Context, pid string, sid int64) (*Spider, error) {
	sp := &Spider{}
	err := s.db.ModelContext(ctx, sp).Where("sid = ? AND project_id = ?", sid, pid).Select()
	return sp, mapError("load spider", err)
}

// CronJobFilter selects the cron jobs ListCronJobs returns. SpiderID and Tag do not filter
// when zero.
type CronJobFilter struct {
	ProjectID string
	SpiderID  int64
	Tag       string
}

// ListCronJobs returns one page of the live cron jobs of a project, or of one of its spiders,
// newest first, and their total count.
func (s *Store) ListCronJobs(ctx context.Context, f CronJobFilter, page Page) ([]CronJob, int, error) {
	where := "s.project_id = ? AND NOT c.deleted"
	params := []any{f.ProjectID}
	if f.SpiderID != 0 {
		where += " AND c.spider_id = ?"
		params = append(params, f.SpiderID)
	}
	if f.Tag != "" {
		where += " AND c.tags @> ARRAY[?]::text[]"
		params = append(params, f.Tag)
	}
	from := " FROM cronjobs c JOIN spiders s ON s.sid = c.spider_id WHERE " + where
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*)"+from, params...); err != nil {
		return nil, 0, mapError("count cron jobs", err)
	}
	var list []CronJob
	_, err := s.db.QueryContext(ctx, &list, "SELECT "+cronColumns+from+" ORDER BY c.cjid DESC OFFSET ? LIMIT ?",
		append(params, page.Offset, page.Limit)...)
	return list, count, mapError("list cron jobs", err)
}

// EnvVarsOfCronJobs returns the environment variables of several cron jobs, keyed by cron job id.
func (s *Store) EnvVarsOfCronJobs(ctx context.Context, cjids []int64) (map[int64][]EnvVar, error) {
	out := make(map[int64][]EnvVar, len(cjids))
	if len(cjids) == 0 {
		return out, nil
	}
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("cronjob_id = ANY(?)", pg.Array(cjids)).Order("evid").Select()
	for _, v := range vars {
		out[*v.CronjobID] = append(out[*v.CronjobID], v)
	}
	return out, mapError("list env vars of cron jobs", err)
}

// CronEnvVarInProject finds an environment variable of a cron job of a project by id; those of
// other projects are not found.
func (s *Store) CronEnvVarInProject(ctx context.Context, pid string, evid int64) (*EnvVar, error) {
	ev := &EnvVar{}
	_, err := s.db.QueryOneContext(ctx, ev, `SELECT e.* FROM env_vars e
		JOIN cronjobs c ON c.cjid = e.cronjob_id JOIN spiders s ON s.sid = c.spider_id
		WHERE e.evid = ? AND s.project_id = ?`, evid, pid)
	return ev, mapError("load env var", err)
}

// CronJobUpdate is a set of optional changes to a cron job. Nil fields are left as they are;
// a non-nil Args, Tags or EnvVars replaces the whole list.
type CronJobUpdate struct {
	Status   *string
	Schedule *string
	// NextRun is set together with Schedule, and when a cron job is enabled.
	NextRun          *time.Time
	UniqueCollection *bool
	DataStatus       *string
	DataExpiryDays   **int
	ResourceTier     *string
	Args             *[]Arg
	Tags             *[]string
	EnvVars          *[]EnvVar
}

// UpdateCronJob applies an update to a live cron job in one transaction.
func (s *Store) UpdateCronJob(ctx context.Context, cjid int64, u CronJobUpdate) error {
	var sets []string
	var params []any
	set := func(column string, v any) {
		sets = append(sets, column+" = ?")
		params = append(params, v)
	}
	if u.Status != nil {
		set("status", *u.Status)
	}
	if u.Schedule != nil {
		set("schedule", *u.Schedule)
	}
	if u.NextRun != nil {
		set("next_run", *u.NextRun)
	}
	if u.UniqueCollection != nil {
		set("unique_collection", *u.UniqueCollection)
	}
	if u.DataStatus != nil {
		set("data_status", *u.DataStatus)
	}
	if u.DataExpiryDays != nil {
		set("data_expiry_days", *u.DataExpiryDays)
	}
	if u.ResourceTier != nil {
		set("resource_tier", *u.ResourceTier)
	}
	if u.Args != nil {
		args, err := json.Marshal(nonNil(*u.Args))
		if err != nil {
			return fmt.Errorf("encode cron job args: %w", err)
		}
		sets = append(sets, "args = ?::jsonb")
		params = append(params, string(args))
	}
	if u.Tags != nil {
		set("tags", pg.Array(nonNil(*u.Tags)))
	}
	sets = append(sets, "cjid = cjid") // keeps the statement valid when only env vars change
	return s.inTx(ctx, func(tx *pg.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE cronjobs SET "+strings.Join(sets, ", ")+" WHERE cjid = ? AND NOT deleted",
			append(params, cjid)...)
		if err != nil {
			return mapError("update cron job", err)
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("update cron job %d: %w", cjid, ErrNotFound)
		}
		if u.EnvVars == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM env_vars WHERE cronjob_id = ?", cjid); err != nil {
			return mapError("delete cron job env vars", err)
		}
		return insertCronEnvVars(ctx, tx, cjid, *u.EnvVars)
	})
}

func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// DeleteCronJob soft-deletes a cron job and disables it, so it never fires again.
func (s *Store) DeleteCronJob(ctx context.Context, cjid int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE cronjobs SET deleted = true, status = ?, next_run = NULL
		WHERE cjid = ? AND NOT deleted`, CronDisabled, cjid)
	if err != nil {
		return mapError("delete cron job", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("delete cron job %d: %w", cjid, ErrNotFound)
	}
	return nil
}

// CronRun is a job created for a cron job.
type CronRun struct {
	JID       int64 `pg:"jid"`
	CronjobID int64 `pg:"cronjob_id"`
}

// CreateCronJobRun creates one IN_QUEUE job from the current values of a cron job, without
// touching its schedule. It returns ErrNotFound when the cron job, its spider or its project
// is deleted.
func (s *Store) CreateCronJobRun(ctx context.Context, cjid int64) (int64, error) {
	var runs []CronRun
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		var err error
		runs, err = insertCronRuns(ctx, tx, []int64{cjid})
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, fmt.Errorf("run cron job %d: %w", cjid, ErrNotFound)
	}
	return runs[0].JID, nil
}

// insertCronRuns creates one IN_QUEUE job per live cron job of cjids, with the arguments,
// tags, resource tier, data persistence and environment variables the cron job has now. Cron
// jobs that are deleted, or whose spider or project is deleted, get no job. Jobs of cron jobs
// with unique_collection get the shared collection. The jobs are inserted ordered by spider,
// because each insert locks its spider's row to number the job (migration 0006).
func insertCronRuns(ctx context.Context, tx *pg.Tx, cjids []int64) ([]CronRun, error) {
	var runs []CronRun
	_, err := tx.QueryContext(ctx, &runs, `
		INSERT INTO jobs (project_id, spider_id, cronjob_id, status, data_status, data_expiry_days, resource_tier, args, tags,
			has_env_vars)
		SELECT s.project_id, c.spider_id, c.cjid, ?, c.data_status,
			CASE WHEN c.data_status = 'PENDING' THEN c.data_expiry_days END, c.resource_tier, c.args, c.tags,
			EXISTS (SELECT 1 FROM env_vars e WHERE e.cronjob_id = c.cjid)
		FROM cronjobs c JOIN spiders s ON s.sid = c.spider_id JOIN projects p ON p.pid = s.project_id
		WHERE c.cjid = ANY(?) AND NOT c.deleted AND NOT s.deleted AND NOT p.deleted
		ORDER BY c.spider_id, c.cjid
		RETURNING jid, cronjob_id`, JobInQueue, pg.Array(cjids))
	if err != nil {
		return nil, mapError("create cron job runs", err)
	}
	if len(runs) == 0 {
		return nil, nil
	}
	jids := make([]int64, len(runs))
	for i, r := range runs {
		jids[i] = r.JID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO env_vars (job_id, name, value, masked)
		SELECT j.jid, e.name, e.value, e.masked FROM jobs j JOIN env_vars e ON e.cronjob_id = j.cronjob_id
		WHERE j.jid = ANY(?) ORDER BY j.jid, e.evid`, pg.Array(jids)); err != nil {
		return nil, mapError("copy cron job env vars", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO job_collections (job_id, collection)
		SELECT j.jid, 'scj' || c.cjid || '.' || c.spider_id || '.' || j.project_id
		FROM jobs j JOIN cronjobs c ON c.cjid = j.cronjob_id
		WHERE j.jid = ANY(?) AND c.unique_collection`, pg.Array(jids)); err != nil {
		return nil, mapError("record shared collections", err)
	}
	return runs, nil
}

// FiredCronJobs is what one FireDueCronJobs call did.
type FiredCronJobs struct {
	// Claimed counts the due cron jobs whose run this call claimed, with or without a job.
	Claimed int
	// Runs are the jobs created. Cron jobs of deleted spiders or projects are claimed and
	// moved to their next run, but get no job.
	Runs []CronRun
	// Unreadable lists cron jobs whose schedule next could not read; their next_run was
	// cleared, so they stay idle until their schedule is changed.
	Unreadable []int64
}

// FireDueCronJobs claims up to limit ACTIVE cron jobs whose next_run is at or before now and
// creates one job for each, in one transaction. It locks the due rows with FOR UPDATE SKIP
// LOCKED, so concurrent callers take disjoint batches, and claims each run with a conditional
// UPDATE that moves next_run from the due time to next(schedule). A run is therefore created
// once however many callers fire at once. next returns false for a schedule it cannot read.
//
// next_run holds one time only: a cron job that missed several runs, for example while no
// worker ran, fires once and then moves to the first run after now.
func (s *Store) FireDueCronJobs(ctx context.Context, now time.Time, limit int, next func(schedule string) (time.Time, bool)) (FiredCronJobs, error) {
	var fired FiredCronJobs
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		fired = FiredCronJobs{}
		var due []struct {
			CJID     int64     `pg:"cjid"`
			Schedule string    `pg:"schedule"`
			NextRun  time.Time `pg:"next_run"`
		}
		if _, err := tx.QueryContext(ctx, &due, `SELECT cjid, schedule, next_run FROM cronjobs
			WHERE status = ? AND NOT deleted AND next_run <= ?
			ORDER BY next_run, cjid LIMIT ? FOR UPDATE SKIP LOCKED`, CronActive, now, limit); err != nil {
			return mapError("select due cron jobs", err)
		}
		if len(due) == 0 {
			return nil
		}
		var ids []int64
		var dues, following []time.Time
		for _, d := range due {
			t, ok := next(d.Schedule)
			if !ok {
				fired.Unreadable = append(fired.Unreadable, d.CJID)
				continue
			}
			ids, dues, following = append(ids, d.CJID), append(dues, d.NextRun), append(following, t)
		}
		if len(fired.Unreadable) > 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE cronjobs SET next_run = NULL WHERE cjid = ANY(?)", pg.Array(fired.Unreadable)); err != nil {
				return mapError("clear unreadable schedules", err)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		var claimed []int64
		if _, err := tx.QueryOneContext(ctx, pg.Scan(pg.Array(&claimed)), `
			WITH claimed AS (
				UPDATE cronjobs c SET next_run = v.following
				FROM (SELECT unnest(?::bigint[]) AS cjid, unnest(?::timestamptz[]) AS due, unnest(?::timestamptz[]) AS following) v
				WHERE c.cjid = v.cjid AND c.next_run = v.due
				RETURNING c.cjid)
			SELECT coalesce(array_agg(cjid), '{}') FROM claimed`,
			pg.Array(ids), pg.Array(dues), pg.Array(following)); err != nil {
			return mapError("claim cron job runs", err)
		}
		fired.Claimed = len(claimed)
		runs, err := insertCronRuns(ctx, tx, claimed)
		fired.Runs = runs
		return err
	})
	return fired, err
}

// DatabaseTime returns the database server's clock. Workers read due cron jobs by it, so their
// own clocks need not agree.
func (s *Store) DatabaseTime(ctx context.Context) (time.Time, error) {
	var now time.Time
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&now), "SELECT clock_timestamp()")
	return now.UTC(), mapError("read database time", err)
}
