package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-pg/pg/v10"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/queue"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// dispatchers is how many goroutines launch the reconcile phase's jobs: the worker
// concurrency of the benchmark's config, so that the launch rate is a limit for the dispatch
// phase.
const dispatchers = 16

// measureReconcile launches jobs on a noop engine of its own through the worker's dispatch
// code, then times reconciles of them: the task a worker runs every reconcile_seconds. Every
// engine call is counted. The workers' own reconcile is an hour apart, so it does not run
// meanwhile.
func measureReconcile(ctx context.Context, p *platform, res *Results) error {
	sizes := p.opts.Sizes
	if err := p.retireActiveJobs(ctx); err != nil {
		return err
	}
	eng, err := p.openEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	counter := &countingEngine{Engine: eng}
	pool := queue.NewPool(p.redisURL)
	defer pool.Close()
	svc := dispatch.New(p.st, counter, nil, discardQueue{}, livestats.NewReader(pool, p.namespace+":"), dispatch.Settings{
		APIHost: p.client.base, RedisURL: p.redisURL, LostJobGrace: time.Hour, MaxDispatchAttempts: 5,
	}, p.log)

	ids, err := p.queuedJobs(ctx, sizes.ReconcileJobs)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := launchJobs(ctx, svc, ids, sizes.PhaseTimeout); err != nil {
		return err
	}
	res.Limits.DispatchCodeJobsPerSecond = float64(len(ids)) / time.Since(start).Seconds()
	ticks, calls, err := timeReconciles(ctx, svc, counter, sizes.ReconcileTicks)
	if err != nil {
		return err
	}
	if err := p.checkWaiting(ctx, ids); err != nil {
		return err
	}

	res.ReconcileEngineCallsPerTick = ptr(float64(calls) / float64(len(ticks)))
	res.ReconcileTickMillis = ptr(millis(percentile(ticks, 0.5)))
	res.Limits.ReconcileMaxTickMillis = millis(slices.Max(ticks))
	return p.retireActiveJobs(ctx)
}

// queuedJobs inserts n IN_QUEUE jobs of the main spider and returns their ids.
func (p *platform) queuedJobs(ctx context.Context, n int) ([]int64, error) {
	var ids []int64
	_, err := p.db.QueryContext(ctx, pg.Scan(pg.Array(&ids)), `WITH created AS (
			INSERT INTO jobs (project_id, spider_id, status) SELECT ?, ?, 'IN_QUEUE' FROM generate_series(1, ?)
			RETURNING jid)
		SELECT coalesce(array_agg(jid ORDER BY jid), '{}') FROM created`, p.project, p.spiders[mainSpider], n)
	if err != nil {
		return nil, fmt.Errorf("create queued jobs: %w", err)
	}
	return ids, nil
}

// launchJobs dispatches every job with the worker's code, from several goroutines.
func launchJobs(ctx context.Context, svc *dispatch.Service, ids []int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, dispatchers)
	for d := range dispatchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(ids)) && errs[d] == nil; i = next.Add(1) - 1 {
				errs[d] = svc.DispatchJob(ctx, ids[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("launch reconcile jobs: %w", err)
		}
	}
	return nil
}

// timeReconciles runs n reconciles one after another and returns how long each took and how
// many engine calls they made in all.
func timeReconciles(ctx context.Context, svc *dispatch.Service, counter *countingEngine, n int) ([]time.Duration, int64, error) {
	counter.calls.Store(0)
	ticks := make([]time.Duration, n)
	for i := range ticks {
		start := time.Now()
		if err := svc.Reconcile(ctx); err != nil {
			return nil, 0, fmt.Errorf("reconcile: %w", err)
		}
		ticks[i] = time.Since(start)
	}
	return ticks, counter.calls.Load(), nil
}

// checkWaiting returns an error unless every job is still WAITING: a reconcile that ended
// live jobs would have done other work than the one measured.
func (p *platform) checkWaiting(ctx context.Context, ids []int64) error {
	var waiting int
	_, err := p.db.QueryOneContext(ctx, pg.Scan(&waiting), "SELECT count(*) FROM jobs WHERE jid = ANY(?) AND status = 'WAITING'", pg.Array(ids))
	if err == nil && waiting != len(ids) {
		err = fmt.Errorf("%d of %d reconcile jobs are WAITING; the others were not launched or were ended", waiting, len(ids))
	}
	return err
}

// discardQueue replaces the queue in the reconcile phase, which enqueues nothing that matters.
type discardQueue struct{}

func (discardQueue) NotifyQueued() error      { return nil }
func (discardQueue) EnqueueBuild(int64) error { return nil }

// countingEngine counts every call made to the engine.
type countingEngine struct {
	engine.Engine
	calls atomic.Int64
}

func (c *countingEngine) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	c.calls.Add(1)
	return c.Engine.GetInfo(ctx)
}

func (c *countingEngine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	c.calls.Add(1)
	return c.Engine.Configure(ctx, req)
}

func (c *countingEngine) PrepareArtifact(ctx context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	c.calls.Add(1)
	return c.Engine.PrepareArtifact(ctx, req)
}

func (c *countingEngine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	c.calls.Add(1)
	return c.Engine.CreateJob(ctx, req)
}

func (c *countingEngine) GetJob(ctx context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	c.calls.Add(1)
	return c.Engine.GetJob(ctx, req)
}

func (c *countingEngine) ListJobs(ctx context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	c.calls.Add(1)
	return c.Engine.ListJobs(ctx, req)
}

func (c *countingEngine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	c.calls.Add(1)
	return c.Engine.StopJob(ctx, req)
}

func (c *countingEngine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	c.calls.Add(1)
	return c.Engine.DeleteJob(ctx, req)
}
