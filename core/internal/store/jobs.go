package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

const jobColumns = "j.*, s.name AS spider_name"

// CreateJob inserts a job in status IN_QUEUE with its environment variables.
func (s *Store) CreateJob(ctx context.Context, j *Job) error {
	return s.createJob(ctx, j, nil)
}

// JobActivity is the project activity recorded with a new job. Its description is Before,
// the job's id and After.
type JobActivity struct {
	UserID        int64
	Before, After string
}

// createJobQuery writes a job, its environment variables, its activity and the activity's
// notifications in one statement.
var createJobQuery = newPreparedQuery("estela_create_job", `WITH job AS (
	INSERT INTO jobs (project_id, spider_id, cronjob_id, status, data_status, data_expiry_days,
		resource_tier, args, tags, proxy_usage_data, created, has_env_vars)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?::jsonb, coalesce(?::timestamptz, now()), ?)
	RETURNING *),
vars AS (
	INSERT INTO env_vars (job_id, name, value, masked)
	SELECT job.jid, v.name, v.value, v.masked
	FROM job, unnest(?::text[], ?::text[], ?::boolean[]) WITH ORDINALITY AS v (name, value, masked, i)
	ORDER BY v.i
	RETURNING evid),
act AS (
	INSERT INTO activities (user_id, project_id, description)
	SELECT ?::bigint, job.project_id, ?::text || job.jid || ?::text FROM job WHERE ?::boolean
	RETURNING aid),
note AS (
	INSERT INTO notifications (activity_id, user_id)
	SELECT act.aid, p.user_id FROM act, permissions p
	WHERE p.project_id = ? AND p.user_id IS DISTINCT FROM ?::bigint ORDER BY p.id)
SELECT job.*, (SELECT coalesce(array_agg(evid ORDER BY evid), '{}') FROM vars) AS new_evids FROM job`)

// CreateJobWithActivity inserts a job as CreateJob does and records an activity for it, with
// a notification for every other member of the project, in the same statement.
func (s *Store) CreateJobWithActivity(ctx context.Context, j *Job, act JobActivity) error {
	return s.createJob(ctx, j, &act)
}

// createJob writes the job, its environment variables and the optional activity with one
// statement, so that a job creation costs one round trip and one commit.
func (s *Store) createJob(ctx context.Context, j *Job, act *JobActivity) error {
	j.Status = JobInQueue
	if j.Args == nil {
		j.Args = []Arg{}
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if j.ProxyUsageData == nil {
		j.ProxyUsageData = map[string]any{}
	}

	args, err := json.Marshal(j.Args)
	if err != nil {
		return fmt.Errorf("encode job args: %w", err)
	}
	proxyUsage, err := json.Marshal(j.ProxyUsageData)
	if err != nil {
		return fmt.Errorf("encode job proxy usage: %w", err)
	}

	// The env vars go in as three parallel arrays, unnested in their order.
	names := make([]string, len(j.EnvVars))
	values := make([]string, len(j.EnvVars))
	masked := make([]bool, len(j.EnvVars))
	for i, v := range j.EnvVars {
		names[i], values[i], masked[i] = v.Name, v.Value, v.Masked
	}

	var created *time.Time
	if !j.Created.IsZero() {
		created = &j.Created
	}
	var actor *int64
	var before, after string
	if act != nil {
		before, after = act.Before, act.After
		if act.UserID != 0 {
			actor = &act.UserID
		}
	}

	var row struct {
		EVIDs []int64 `pg:"new_evids,array"`
		Job
	}
	_, err = s.queryPrepared(ctx, &row, true, createJobQuery,
		j.ProjectID, j.SpiderID, j.CronjobID, j.Status, j.DataStatus, j.DataExpiryDays,
		j.ResourceTier, string(args), pg.Array(j.Tags), string(proxyUsage), created, len(j.EnvVars) > 0,
		pg.Array(names), pg.Array(values), pg.Array(masked),
		actor, before, after, act != nil,
		j.ProjectID, actor)
	if err != nil {
		return mapError("create job", err)
	}
	if len(row.EVIDs) != len(j.EnvVars) {
		return fmt.Errorf("create job: %d environment variables written, want %d", len(row.EVIDs), len(j.EnvVars))
	}

	spiderName, vars := j.SpiderName, j.EnvVars
	*j = row.Job
	j.SpiderName, j.EnvVars = spiderName, vars
	for i := range j.EnvVars {
		j.EnvVars[i].EVID, j.EnvVars[i].JobID = row.EVIDs[i], &j.JID
	}
	return nil
}

// Job loads a job by its whole path: a job of another spider or project is not found.
func (s *Store) Job(ctx context.Context, pid string, sid, jid int64) (*Job, error) {
	j := &Job{}
	_, err := s.db.QueryOneContext(ctx, j, "SELECT "+jobColumns+` FROM jobs j JOIN spiders s ON s.sid = j.spider_id
		WHERE j.jid = ? AND j.spider_id = ? AND j.project_id = ?`, jid, sid, pid)
	return j, mapError("load job", err)
}

// JobByID loads a job by id alone, for the worker and for job tokens.
func (s *Store) JobByID(ctx context.Context, jid int64) (*Job, error) {
	j := &Job{}
	_, err := s.db.QueryOneContext(ctx, j, "SELECT "+jobColumns+` FROM jobs j JOIN spiders s ON s.sid = j.spider_id
		WHERE j.jid = ?`, jid)
	return j, mapError("load job", err)
}

// JobEnvVars returns the environment variables of a job.
func (s *Store) JobEnvVars(ctx context.Context, jid int64) ([]EnvVar, error) {
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("job_id = ?", jid).Order("evid").Select()
	return vars, mapError("list job env vars", err)
}

// JobFilter narrows ListJobs. Zero fields do not filter.
type JobFilter struct {
	CronjobID int64
	Status    string
	Tag       string
}

// listColumns are the columns of the job list statements: the fields of a job that the job
// list shows, and its environment variables. Leaving out the others, among them four
// timestamps, made the statement about a tenth cheaper. The variables' subquery runs only for
// jobs that were given variables (migration 0011): run for every listed job, it took about a
// quarter of the statement's time.
const listColumns = `j.jid, j.seq, j.project_id, j.spider_id, j.cronjob_id, j.status, j.data_status, j.data_expiry_days,
	j.resource_tier, j.args, j.tags, j.lifespan_us, j.total_response_bytes, j.item_count, j.request_count,
	j.proxy_usage_data, j.error_reason, j.created, j.storage_bytes, j.peak_memory_bytes,
	CASE WHEN j.has_env_vars THEN (SELECT json_agg(json_build_object('evid', e.evid, 'name', e.name,
		'value', e.value, 'masked', e.masked) ORDER BY e.evid) FROM env_vars e WHERE e.job_id = j.jid) END AS list_env_vars`

// listCallerByID and listCallerByToken find the caller of a job list statement: by user id, or
// by the hash of a token's key. A token finds its user only when the user is active: job and
// deploy tokens find none.
const (
	listCallerByID    = `SELECT u.id, u.is_superuser, u.is_staff FROM users u WHERE u.id = ?`
	listCallerByToken = `SELECT u.id, u.is_superuser, u.is_staff FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.key_hash = ? AND u.is_active`
)

// listSpider is the subquery of the job list statements that selects the live spider of a live
// project, with the caller and the role the caller holds on the project. Reading them here
// saves the job list a statement for each. Its parameters are those of total, the caller's,
// the spider and the project.
func listSpider(total, caller string) string {
	return `SELECT s.sid, s.name, ` + total + ` AS total, c.id AS caller_id, c.is_superuser AS caller_superuser,
		c.is_staff AS caller_staff,
		(SELECT m.role FROM permissions m WHERE m.project_id = s.project_id AND m.user_id = c.id) AS role
		FROM spiders s LEFT JOIN (` + caller + `) c ON true
		WHERE s.sid = ? AND s.project_id = ? AND NOT s.deleted
		AND EXISTS (SELECT 1 FROM projects p WHERE p.pid = s.project_id AND NOT p.deleted)`
}

// listHead is the start of the job list statements: the spider's columns, then the jobs'.
const listHead = `SELECT sp.total AS list_total, sp.role AS list_role, sp.caller_id AS list_caller_id,
	sp.caller_superuser AS list_caller_superuser, sp.caller_staff AS list_caller_staff, sp.name AS spider_name, ` + listColumns

// listJobsQuery reads a page of a spider's jobs without a filter. OFFSET 0 keeps Postgres from
// merging the spider's subquery into the outer query, which made it compute the count once per
// listed job.
//
// The count and the page are subqueries, where they were calls of spider_job_count and
// spider_jobs_page (migrations 0008 and 0010), whose settings leave Postgres one plan only. The
// calls took about a fifth of the statement's time in pgbench, and the subqueries' plans need
// no such settings. Both read the job number index. Its condition on the number makes it
// cheaper by the planner's estimates than the index on (spider, created), whatever the
// statistics are, and a sequential scan is cheaper only while the table takes a few pages.
// TestListJobsWithStaleStatistics checks both plans with statistics taken before the jobs
// were inserted.
func listJobsQuery(caller string) string {
	return listHead + ` FROM (` + listSpider(`coalesce((SELECT n.seq FROM jobs n WHERE n.spider_id = s.sid
		ORDER BY n.seq DESC LIMIT 1), 0)`, caller) + ` OFFSET 0) sp
	LEFT JOIN LATERAL (SELECT * FROM jobs j WHERE j.spider_id = sp.sid AND j.seq <= sp.total - ?
		ORDER BY j.seq DESC LIMIT ?) j ON true
	ORDER BY j.seq DESC`
}

var (
	listJobsByID    = newPreparedQuery("estela_list_jobs", listJobsQuery(listCallerByID))
	listJobsByToken = newPreparedQuery("estela_list_jobs_by_token", listJobsQuery(listCallerByToken))
)

// JobList is one page of a spider's jobs.
type JobList struct {
	Jobs []Job
	// Count is the number of jobs that match the filter.
	Count int
	// Caller is the user given to ListJobsFor or ListJobsForToken, with only ID, IsSuperuser
	// and IsStaff read. It is nil when there is no such user, or the token is not an active
	// user's.
	Caller *User
	// CallerRole is the role the caller holds on the project, "" for none.
	CallerRole string
}

// ListJobs returns one page of the jobs of a live spider of a live project, newest first, with
// their environment variables, and the number of jobs that match the filter. The jobs carry
// the fields that the job list shows and their numbers: DeployID, DispatchAttempts, DispatchedAt,
// DispatchAfter, StatusChanged and HasEnvVars are left zero. It returns ErrNotFound when the
// project has no such live spider.
func (s *Store) ListJobs(ctx context.Context, pid string, sid int64, f JobFilter, page Page) ([]Job, int, error) {
	list, err := s.ListJobsFor(ctx, pid, sid, 0, f, page)
	if err != nil {
		return nil, 0, err
	}
	return list.Jobs, list.Count, nil
}

// ListJobsFor does what ListJobs does and also reads the user userID and the role the user
// holds on the project, in the same statement, so that the caller can check them.
func (s *Store) ListJobsFor(ctx context.Context, pid string, sid, userID int64, f JobFilter, page Page) (*JobList, error) {
	return s.listJobs(ctx, pid, sid, listJobsByID, listCallerByID, userID, f, page)
}

// ListJobsForToken does what ListJobsFor does for the user of a token, found by its key in the
// same statement. Caller is nil when the key is not an active user's token: the request must
// then be authenticated as every other one is.
func (s *Store) ListJobsForToken(ctx context.Context, pid string, sid int64, key string, f JobFilter, page Page) (*JobList, error) {
	return s.listJobs(ctx, pid, sid, listJobsByToken, listCallerByToken, hashKey(key), f, page)
}

// listJobs runs one job list statement: prepared, the one without a filter, and otherwise
// one built for the filter around the caller subquery caller. callerParam is that subquery's
// parameter.
//
// Without a filter the count is the spider's highest job number and the page a range of
// numbers, so any page costs a few index lookups. A filter counts the matching rows and
// skips to the page, reading only the skipped rows' ids.
func (s *Store) listJobs(ctx context.Context, pid string, sid int64, prepared *preparedQuery, caller string, callerParam any,
	f JobFilter, page Page) (*JobList, error) {
	rows := jobListRows{jobs: make([]Job, 0, min(page.Limit, 100)+1)}
	var res pg.Result
	var err error
	if f == (JobFilter{}) {
		res, err = s.queryPrepared(ctx, &rows, false, prepared, callerParam, sid, pid, page.Offset, page.Limit)
	} else {
		where := "j.spider_id = ?"
		params := []any{sid}
		if f.CronjobID != 0 {
			where += " AND j.cronjob_id = ?"
			params = append(params, f.CronjobID)
		}
		if f.Status != "" {
			where += " AND j.status = ?"
			params = append(params, f.Status)
		}
		if f.Tag != "" {
			where += " AND j.tags @> ARRAY[?]::text[]"
			params = append(params, f.Tag)
		}
		all := append(append(append([]any{}, params...), callerParam, sid, pid), params...)
		all = append(all, page.Offset, page.Limit)
		res, err = s.db.QueryContext(ctx, &rows, listHead+`
			FROM (`+listSpider("(SELECT count(*) FROM jobs j WHERE "+where+")", caller)+`) sp
			LEFT JOIN LATERAL (SELECT j.* FROM (SELECT j.jid FROM jobs j WHERE `+where+`
				ORDER BY j.seq DESC OFFSET ? LIMIT ?) ids JOIN jobs j ON j.jid = ids.jid) j ON true
			ORDER BY j.seq DESC`, all...)
	}
	if err != nil {
		return nil, mapError("list jobs", err)
	}
	if res.RowsReturned() == 0 {
		return nil, fmt.Errorf("list jobs of spider %d: %w", sid, ErrNotFound)
	}
	if len(rows.jobs) == 0 {
		rows.jobs = nil
	}
	return &JobList{Jobs: rows.jobs, Count: rows.total, Caller: rows.caller, CallerRole: rows.role}, nil
}

// EnvVarsOfJobs returns the environment variables of several jobs, keyed by job id.
func (s *Store) EnvVarsOfJobs(ctx context.Context, jids []int64) (map[int64][]EnvVar, error) {
	out := make(map[int64][]EnvVar, len(jids))
	if len(jids) == 0 {
		return out, nil
	}
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("job_id = ANY(?)", pg.Array(jids)).Order("evid").Select()
	for _, v := range vars {
		out[*v.JobID] = append(out[*v.JobID], v)
	}
	return out, mapError("list env vars of jobs", err)
}

// Transition moves a job from one status to another only if it still has the expected status,
// so that concurrent writers cannot both win. It returns ErrConflict when the job moved on.
func (s *Store) Transition(ctx context.Context, jid int64, from, to string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_changed = now()
		WHERE jid = ? AND status = ?`, to, jid, from)
	if err != nil {
		return mapError("update job status", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("move job %d from %s to %s: %w", jid, from, to, ErrConflict)
	}
	return nil
}

// JobUpdate is a set of optional changes to one job. Nil fields are left as they are.
type JobUpdate struct {
	// FromStatus and Status, when Status is set, change the status only if it is still FromStatus.
	FromStatus         string
	Status             *string
	LifespanMicros     *int64
	TotalResponseBytes *int64
	ItemCount          *int64
	RequestCount       *int64
	ProxyUsageData     map[string]any
	ErrorReason        *string
	DataStatus         *string
	DataExpiryDays     **int
}

// UpdateJob applies an update and returns the job as stored afterwards. When the update
// changes the status and the job no longer has FromStatus, nothing is written and ErrConflict
// is returned.
func (s *Store) UpdateJob(ctx context.Context, jid int64, u JobUpdate) (*Job, error) {
	q := s.db.ModelContext(ctx, (*Job)(nil)).Where("jid = ?", jid)
	changed := false
	if u.Status != nil {
		changed = true
		q = q.Set("status = ?", *u.Status).Set("status_changed = now()").Where("status = ?", u.FromStatus)
	}
	set := func(column string, v any) {
		q = q.Set(column+" = ?", v)
		changed = true
	}
	if u.LifespanMicros != nil {
		set("lifespan_us", *u.LifespanMicros)
	}
	if u.TotalResponseBytes != nil {
		set("total_response_bytes", *u.TotalResponseBytes)
	}
	if u.ItemCount != nil {
		set("item_count", *u.ItemCount)
	}
	if u.RequestCount != nil {
		set("request_count", *u.RequestCount)
	}
	if u.ProxyUsageData != nil {
		set("proxy_usage_data", u.ProxyUsageData)
	}
	if u.ErrorReason != nil {
		set("error_reason", *u.ErrorReason)
	}
	if u.DataStatus != nil {
		set("data_status", *u.DataStatus)
	}
	if u.DataExpiryDays != nil {
		set("data_expiry_days", *u.DataExpiryDays)
	}
	if !changed {
		return s.JobByID(ctx, jid)
	}
	res, err := q.Update()
	if err != nil {
		return nil, mapError("update job", err)
	}
	if res.RowsAffected() == 0 {
		if _, err := s.JobByID(ctx, jid); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("update job %d: status is no longer %s: %w", jid, u.FromStatus, ErrConflict)
	}
	return s.JobByID(ctx, jid)
}

// ClaimJob moves an IN_QUEUE job to WAITING for dispatch and counts the attempt. It returns
// ErrConflict when the job is no longer queued, so only one worker dispatches a job.
func (s *Store) ClaimJob(ctx context.Context, jid int64) (*Job, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_changed = now(), dispatched_at = now(),
		dispatch_attempts = dispatch_attempts + 1 WHERE jid = ? AND status = ?`, JobWaiting, jid, JobInQueue)
	if err != nil {
		return nil, mapError("claim job", err)
	}
	if res.RowsAffected() == 0 {
		return nil, fmt.Errorf("claim job %d: not queued: %w", jid, ErrConflict)
	}
	return s.JobByID(ctx, jid)
}

// ReturnJobsToQueue puts WAITING jobs whose launch failed back in the queue, where no worker
// claims them before the after duration has passed. With refund set the claim's attempt is not
// counted, for launches that failed because the engine was unavailable. Jobs that are no
// longer WAITING are left alone. It returns how many jobs went back.
//
// The tokens of earlier claims stay valid until the job ends: an engine may have created the
// job before its failure reached the worker, and then keeps that job, and its token, when the
// next launch requests it by name.
func (s *Store) ReturnJobsToQueue(ctx context.Context, jids []int64, after time.Duration, refund bool) (int, error) {
	if len(jids) == 0 {
		return 0, nil
	}
	refunded := 0
	if refund {
		refunded = 1
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, status_changed = now(),
			dispatch_after = now() + ? * interval '1 microsecond', dispatch_attempts = greatest(dispatch_attempts - ?, 0)
		WHERE jid = ANY(?) AND status = ?`, JobInQueue, after.Microseconds(), refunded, pg.Array(jids), JobWaiting)
	if err != nil {
		return 0, mapError("return jobs to the queue", err)
	}
	return res.RowsAffected(), nil
}

// ActiveJobs returns every WAITING or RUNNING job, oldest first.
func (s *Store) ActiveJobs(ctx context.Context) ([]Job, error) {
	var jobs []Job
	_, err := s.db.QueryContext(ctx, &jobs, "SELECT "+jobColumns+` FROM jobs j JOIN spiders s ON s.sid = j.spider_id
		WHERE j.status IN (?, ?) ORDER BY j.jid`, JobWaiting, JobRunning)
	return jobs, mapError("list active jobs", err)
}

// BuildingDeployIDs returns the ids of deploys still BUILDING that were created before the
// given time and whose image build has not started.
func (s *Store) BuildingDeployIDs(ctx context.Context, before time.Time) ([]int64, error) {
	var ids []int64
	_, err := s.db.QueryContext(ctx, pg.Scan(pg.Array(&ids)), `SELECT coalesce(array_agg(did ORDER BY did), '{}')
		FROM deploys WHERE status = ? AND created < ? AND build_started IS NULL`, DeployBuilding, before)
	return ids, mapError("list building deploys", err)
}

// EnvVarInProject finds an environment variable by id among those of a project, its spiders
// and its jobs; variables of other projects are not found.
func (s *Store) EnvVarInProject(ctx context.Context, pid string, evid int64) (*EnvVar, error) {
	ev := &EnvVar{}
	_, err := s.db.QueryOneContext(ctx, ev, `SELECT e.* FROM env_vars e
		LEFT JOIN spiders s ON s.sid = e.spider_id
		LEFT JOIN jobs j ON j.jid = e.job_id
		WHERE e.evid = ? AND (e.project_id = ? OR s.project_id = ? OR j.project_id = ?)`, evid, pid, pid, pid)
	return ev, mapError("load env var", err)
}

// JobStatus is a job's status and when it last changed.
type JobStatus struct {
	Status  string
	Changed time.Time
}

// JobStatuses returns the status of each existing job among ids.
func (s *Store) JobStatuses(ctx context.Context, ids []int64) (map[int64]JobStatus, error) {
	var rows []struct {
		JID           int64
		Status        string
		StatusChanged time.Time
	}
	_, err := s.db.QueryContext(ctx, &rows, "SELECT jid, status, status_changed FROM jobs WHERE jid = ANY(?)", pg.Array(ids))
	if err != nil {
		return nil, mapError("load job statuses", err)
	}
	out := make(map[int64]JobStatus, len(rows))
	for _, r := range rows {
		out[r.JID] = JobStatus{Status: r.Status, Changed: r.StatusChanged}
	}
	return out, nil
}

// Launch holds the job, artifact, environment and token a worker needs to launch a claimed job.
type Launch struct {
	Job *Job
	// Artifact is the newest successful deploy's artifact that contains the job's spider, or
	// "" when there is none.
	Artifact string
	// EnvVars are the job's own environment variables, in the order they were given.
	EnvVars []LaunchEnvVar
	// SharedCollection is the collection the job shares with the other runs of its cron job,
	// or "" when the job keeps its data under its own key.
	SharedCollection string
	// Token is a new job token for the job to call the API with.
	Token string
}

// LaunchEnvVar is one environment variable of a job being launched.
type LaunchEnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// claimJobForLaunchQuery claims a queued job and reads what its launch needs.
var claimJobForLaunchQuery = newPreparedQuery("estela_claim_job_for_launch", `WITH d AS (
	SELECT d.did, d.artifact_ref FROM deploys d
	JOIN deploy_spiders ds ON ds.deploy_id = d.did
	JOIN jobs q ON q.spider_id = ds.spider_id
	WHERE q.jid = ? AND d.status = ? ORDER BY d.did DESC LIMIT 1),
claimed AS (
	UPDATE jobs j SET status = ?, status_changed = now(), dispatched_at = now(), dispatch_after = NULL,
		dispatch_attempts = j.dispatch_attempts + 1, deploy_id = coalesce((SELECT did FROM d), j.deploy_id)
	FROM spiders s WHERE j.jid = ? AND j.status = ? AND s.sid = j.spider_id
	RETURNING j.*, s.name AS spider_name),
token AS (
	INSERT INTO tokens (key_hash, job_id) SELECT ?, jid FROM claimed)
SELECT claimed.*, (SELECT artifact_ref FROM d) AS launch_artifact,
	(SELECT coalesce(json_agg(json_build_object('name', e.name, 'value', e.value) ORDER BY e.evid), '[]')
		FROM env_vars e WHERE e.job_id = claimed.jid) AS launch_env_vars,
	(SELECT collection FROM job_collections WHERE job_id = claimed.jid) AS launch_collection
FROM claimed`)

// ClaimJobForLaunch moves an IN_QUEUE job to WAITING, counts the attempt, records the newest
// successful deploy that contains its spider and creates a job token, all in one statement,
// and returns what the launch needs. It returns ErrConflict when the job is not queued, so only
// one worker launches a job.
func (s *Store) ClaimJobForLaunch(ctx context.Context, jid int64) (*Launch, error) {
	key, err := NewTokenKey()
	if err != nil {
		return nil, err
	}
	var row struct {
		Artifact   *string        `pg:"launch_artifact"`
		Env        []LaunchEnvVar `pg:"launch_env_vars,type:jsonb"`
		Collection *string        `pg:"launch_collection"`
		Job
	}
	_, err = s.queryPrepared(ctx, &row, true, claimJobForLaunchQuery,
		jid, DeploySuccess, JobWaiting, jid, JobInQueue, hashKey(key))
	if err == pg.ErrNoRows {
		return nil, fmt.Errorf("claim job %d: not queued: %w", jid, ErrConflict)
	}
	if err != nil {
		return nil, mapError("claim job", err)
	}
	l := &Launch{Job: &row.Job, EnvVars: row.Env, Token: key}
	if row.Artifact != nil {
		l.Artifact = *row.Artifact
	}
	if row.Collection != nil {
		l.SharedCollection = *row.Collection
	}
	return l, nil
}

// claimQueuedJobsQuery claims the oldest due IN_QUEUE jobs, skipping those another worker is
// claiming, and reads what their launches need. Each claimed job gets the token whose hash has
// its position in the claim (launch_n) in the array of hashes.
const claimQueuedJobsQuery = `WITH picked AS (
	SELECT q.jid, q.n, s.name AS spider_name, d.did, d.artifact_ref FROM (
		SELECT jid, spider_id, row_number() OVER (ORDER BY jid) AS n FROM (
			SELECT jid, spider_id FROM jobs
			WHERE status = ? AND (dispatch_after IS NULL OR dispatch_after <= now())
			ORDER BY jid LIMIT ? FOR UPDATE SKIP LOCKED) due) q
	JOIN spiders s ON s.sid = q.spider_id
	LEFT JOIN LATERAL (SELECT d.did, d.artifact_ref FROM deploys d JOIN deploy_spiders ds ON ds.deploy_id = d.did
		WHERE ds.spider_id = q.spider_id AND d.status = ? ORDER BY d.did DESC LIMIT 1) d ON true),
claimed AS (
	UPDATE jobs j SET status = ?, status_changed = now(), dispatched_at = now(), dispatch_after = NULL,
		dispatch_attempts = j.dispatch_attempts + 1, deploy_id = coalesce(p.did, j.deploy_id)
	FROM picked p WHERE j.jid = p.jid
	RETURNING j.*, p.spider_name, p.n AS launch_n, p.artifact_ref AS launch_artifact),
token AS (
	INSERT INTO tokens (key_hash, job_id)
	SELECT decode(k.hash, 'hex'), c.jid FROM claimed c
	JOIN unnest(?::text[]) WITH ORDINALITY k(hash, n) ON k.n = c.launch_n)
SELECT claimed.*,
	(SELECT coalesce(json_agg(json_build_object('name', e.name, 'value', e.value) ORDER BY e.evid), '[]')
		FROM env_vars e WHERE e.job_id = claimed.jid) AS launch_env_vars,
	(SELECT collection FROM job_collections WHERE job_id = claimed.jid) AS launch_collection
FROM claimed ORDER BY claimed.jid`

// ClaimQueuedJobs claims up to limit IN_QUEUE jobs, oldest first, as ClaimJobForLaunch claims
// one, and returns what their launches need. Jobs that wait for a retry (dispatch_after) are
// left in the queue, and so are jobs that another worker is claiming at the same moment. An
// empty result means no job is due.
func (s *Store) ClaimQueuedJobs(ctx context.Context, limit int) ([]*Launch, error) {
	keys := make([]string, limit)
	hashes := make([]string, limit)
	for i := range keys {
		key, err := NewTokenKey()
		if err != nil {
			return nil, err
		}
		keys[i], hashes[i] = key, hex.EncodeToString(hashKey(key))
	}
	var rows []struct {
		N          int            `pg:"launch_n"`
		Artifact   *string        `pg:"launch_artifact"`
		Env        []LaunchEnvVar `pg:"launch_env_vars,type:jsonb"`
		Collection *string        `pg:"launch_collection"`
		Job
	}
	_, err := s.db.QueryContext(ctx, &rows, claimQueuedJobsQuery,
		JobInQueue, limit, DeploySuccess, JobWaiting, pg.Array(hashes))
	if err != nil {
		return nil, mapError("claim queued jobs", err)
	}
	launches := make([]*Launch, len(rows))
	for i := range rows {
		r := &rows[i]
		l := &Launch{Job: &r.Job, EnvVars: r.Env, Token: keys[r.N-1]}
		if r.Artifact != nil {
			l.Artifact = *r.Artifact
		}
		if r.Collection != nil {
			l.SharedCollection = *r.Collection
		}
		launches[i] = l
	}
	return launches, nil
}
