package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/store"
)

// Defaults for Options.
const (
	defaultBatchSize = 250
	defaultParallel  = 4
)

// Notifier notifies the workers that jobs wait in the queue.
type Notifier interface {
	NotifyQueued() error
}

// Options tune a Scheduler.
type Options struct {
	// BatchSize is how many due cron jobs one transaction claims; 250 when zero.
	BatchSize int
	// Parallel is how many transactions one Fire call runs at once; 4 when zero.
	Parallel int
}

// Scheduler turns due cron jobs into queued jobs.
type Scheduler struct {
	store *store.Store
	queue Notifier
	opts  Options
	log   hclog.Logger
}

// New returns a scheduler.
func New(st *store.Store, q Notifier, opts Options, log hclog.Logger) *Scheduler {
	if opts.BatchSize <= 0 {
		opts.BatchSize = defaultBatchSize
	}
	if opts.Parallel <= 0 {
		opts.Parallel = defaultParallel
	}
	return &Scheduler{store: st, queue: q, opts: opts, log: log.Named("scheduler")}
}

// Fire creates a job for every cron job due by the database clock and returns how many it
// created. Any number of workers may call it at once: each due run gets one job.
func (s *Scheduler) Fire(ctx context.Context) (int, error) {
	now, err := s.store.DatabaseTime(ctx)
	if err != nil {
		return 0, err
	}
	return s.FireAt(ctx, now)
}

// FireAt creates a job for every cron job due at or before now, and moves each cron job to its
// first run after now. It returns how many jobs it created; when a batch fails, the count of
// the batches that succeeded and the first error.
func (s *Scheduler) FireAt(ctx context.Context, now time.Time) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		total    int
		firstErr error
	)
	for range s.opts.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.drain(ctx, now)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return total, firstErr
}

// drain fires batches until no due cron job is left unlocked.
func (s *Scheduler) drain(ctx context.Context, now time.Time) (int, error) {
	parsed := map[string]Schedule{}
	next := func(expr string) (time.Time, bool) {
		sched, ok := parsed[expr]
		if !ok {
			var err error
			if sched, err = Parse(expr); err != nil {
				return time.Time{}, false
			}
			parsed[expr] = sched
		}
		t := sched.Next(now)
		return t, !t.IsZero()
	}
	total := 0
	for ctx.Err() == nil {
		fired, err := s.store.FireDueCronJobs(ctx, now, s.opts.BatchSize, next)
		if err != nil {
			return total, err
		}
		for _, cjid := range fired.Unreadable {
			s.log.Error("cron job schedule cannot be read; it stays idle until its schedule is changed", "cjid", cjid)
		}
		s.notify(fired.Runs)
		total += len(fired.Runs)
		if fired.Claimed == 0 && len(fired.Unreadable) == 0 {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// notify notifies the workers of the jobs of a batch. A failure only delays the jobs: workers
// also look for queued jobs in Postgres every second.
func (s *Scheduler) notify(runs []store.CronRun) {
	for _, run := range runs {
		s.log.Debug("cron job fired", "cjid", run.CronjobID, "jid", run.JID)
	}
	if len(runs) == 0 {
		return
	}
	if err := s.queue.NotifyQueued(); err != nil {
		s.log.Warn("notify workers of cron job runs failed; the jobs start at their next look, within a second", "jobs", len(runs), "error", err)
	}
}
