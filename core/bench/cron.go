package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

// Cron phase settings. The schedule fires once a year, so that a second job of a cron job
// within the phase can only be a duplicate.
const (
	cronSchedule = "0 0 1 1 *"
	// cronLead is how far ahead of the database clock the cron jobs are made due; their
	// update takes a fraction of it.
	cronLead = 2 * time.Second
	// cronSettle is how long the phase keeps watching after every cron job fired; workers fire
	// every second, so a duplicate would show within it.
	cronSettle = 3 * time.Second
)

// cronRange is the phase's cron jobs (ids lo to hi) and the jobs after job id firstJob.
type cronRange struct {
	lo, hi   int64
	firstJob int64
	sid      int64
}

// measureCron makes cron jobs due at the same instant while worker processes run and waits
// until every one has fired. It then reads each run's lateness (its job's creation time after
// the due time), the cron jobs fired twice and those never fired.
func measureCron(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	if err := p.retireActiveJobs(ctx); err != nil {
		return err
	}
	for i := range sizes.CronWorkers {
		w, err := p.startWorker(ctx, fmt.Sprintf("worker-cron-%d", i+1))
		if err != nil {
			return err
		}
		defer w.stop()
	}
	r, err := p.createCronJobs(ctx, sizes.CronJobs)
	if err != nil {
		return err
	}
	due, err := p.makeCronJobsDue(ctx, r)
	if err != nil {
		return err
	}

	err = poll(ctx, cronLead+sizes.PhaseTimeout, 100*time.Millisecond, "every cron job to fire", func() (bool, error) {
		_, fired, err := p.countCronRuns(ctx, r)
		return fired == sizes.CronJobs, err
	})
	if err != nil {
		return err
	}
	time.Sleep(cronSettle)
	jobs, fired, err := p.countCronRuns(ctx, r)
	if err != nil {
		return err
	}
	late, err := p.cronLateness(ctx, r, due)
	if err != nil {
		return err
	}

	res.CronLateP99Millis = ptr(millis(percentile(late, 0.99)))
	res.CronDuplicates = ptr(float64(jobs - fired))
	res.CronMissed = ptr(float64(sizes.CronJobs - fired))
	if _, err := p.db.ExecContext(ctx, "UPDATE cronjobs SET status = 'DISABLED' WHERE cjid BETWEEN ? AND ?", r.lo, r.hi); err != nil {
		return err
	}
	return p.retireActiveJobs(ctx)
}

// createCronJobs inserts n ACTIVE cron jobs of the main spider that are not due yet.
func (p *platform) createCronJobs(ctx context.Context, n int) (cronRange, error) {
	r := cronRange{sid: p.spiders[mainSpider]}
	var err error
	if r.firstJob, err = p.maxJobID(ctx); err != nil {
		return r, err
	}
	_, err = p.db.QueryOneContext(ctx, pg.Scan(&r.lo, &r.hi), `WITH created AS (
			INSERT INTO cronjobs (spider_id, schedule, status, next_run)
			SELECT ?, ?, 'ACTIVE', NULL FROM generate_series(1, ?) RETURNING cjid)
		SELECT min(cjid), max(cjid) FROM created`, r.sid, cronSchedule, n)
	if err != nil {
		return r, fmt.Errorf("create cron jobs: %w", err)
	}
	return r, nil
}

// makeCronJobsDue sets every cron job's next run to one instant cronLead ahead, in one
// statement, and returns that instant.
func (p *platform) makeCronJobsDue(ctx context.Context, r cronRange) (time.Time, error) {
	var due, after time.Time
	_, err := p.db.QueryOneContext(ctx, pg.Scan(&due), `WITH due AS (
			UPDATE cronjobs SET next_run = date_trunc('milliseconds', now()) + ?::interval
			WHERE cjid BETWEEN ? AND ? RETURNING next_run)
		SELECT min(next_run) FROM due`, fmt.Sprintf("%d milliseconds", cronLead.Milliseconds()), r.lo, r.hi)
	if err != nil {
		return due, fmt.Errorf("make cron jobs due: %w", err)
	}
	if _, err := p.db.QueryOneContext(ctx, pg.Scan(&after), "SELECT clock_timestamp()"); err != nil {
		return due, err
	}
	if !after.Before(due) {
		return due, fmt.Errorf("making the cron jobs due took past their due time %s; fewer cron jobs would fit in %s", due, cronLead)
	}
	return due, nil
}

// countCronRuns returns how many jobs the phase's cron jobs created, and how many cron jobs
// created at least one.
func (p *platform) countCronRuns(ctx context.Context, r cronRange) (jobs, fired int, err error) {
	_, err = p.db.QueryOneContext(ctx, pg.Scan(&jobs, &fired), `SELECT count(*), count(DISTINCT cronjob_id) FROM jobs
		WHERE spider_id = ? AND jid > ? AND cronjob_id BETWEEN ? AND ?`, r.sid, r.firstJob, r.lo, r.hi)
	return jobs, fired, err
}

// cronLateness returns, for every job of the phase's cron jobs, its creation time after due.
func (p *platform) cronLateness(ctx context.Context, r cronRange, due time.Time) ([]time.Duration, error) {
	var micros []int64
	_, err := p.db.QueryContext(ctx, pg.Scan(pg.Array(&micros)), `SELECT coalesce(array_agg(
			(extract(epoch FROM created - ?::timestamptz) * 1000000)::bigint), '{}') FROM jobs
		WHERE spider_id = ? AND jid > ? AND cronjob_id BETWEEN ? AND ?`, due, r.sid, r.firstJob, r.lo, r.hi)
	late := make([]time.Duration, len(micros))
	for i, us := range micros {
		late[i] = time.Duration(us) * time.Microsecond
	}
	return late, err
}
