// Package queue runs the worker's background work: launching queued jobs, preparing deploys
// (gocraft/work tasks on Redis), firing cron jobs and the periodic reconcile. It is the only
// package that imports gocraft/work. Redis may lose its data, because Postgres stays the
// source of truth: queued jobs are claimed from Postgres itself, and the reconcile enqueues
// again the deploys that Redis lost.
package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// TaskBuildDeploy is the name of the queued task that prepares a deploy.
const TaskBuildDeploy = "build_deploy"

// Handlers is the work the worker does. Every handler must be idempotent: a task may run twice.
type Handlers interface {
	// DispatchQueued launches the queued jobs that are due and returns how many it claimed.
	// Every worker calls it at once, so concurrent calls must split the jobs without launching
	// one twice.
	DispatchQueued(ctx context.Context) (int, error)
	BuildDeploy(ctx context.Context, did int64) error
	Reconcile(ctx context.Context) error
	// FireCron creates the jobs of due cron jobs. Every worker calls it at once, so it must let
	// concurrent calls split the work without creating a run twice.
	FireCron(ctx context.Context) error
}

// Queue enqueues tasks and runs workers on one Redis namespace.
type Queue struct {
	pool      *redis.Pool
	namespace string
	enqueuer  *work.Enqueuer
}

// NewPool returns a Redis connection pool for url (redis://[:password@]host:port/db). While
// Redis cannot be reached, a failed dial waits up to a second before it returns, so that
// gocraft/work's fetch loops, which retry at once and print every failure, do not spin.
func NewPool(url string) *redis.Pool {
	var failures atomic.Int64
	return &redis.Pool{
		MaxActive: 50,
		// As many idle connections as active ones: a busy worker otherwise opens and closes
		// a connection for most commands.
		MaxIdle:     50,
		IdleTimeout: 4 * time.Minute,
		Wait:        true,
		Dial: func() (redis.Conn, error) {
			conn, err := redis.DialURL(url, redis.DialConnectTimeout(5*time.Second),
				redis.DialReadTimeout(30*time.Second), redis.DialWriteTimeout(10*time.Second))
			if err != nil {
				n := failures.Add(1)
				time.Sleep(min(time.Duration(n)*100*time.Millisecond, time.Second))
				return nil, err
			}
			failures.Store(0)
			return conn, nil
		},
		TestOnBorrow: func(c redis.Conn, t time.Time) error {
			if time.Since(t) < time.Minute {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// New returns a queue on the pool, with its keys under namespace.
func New(pool *redis.Pool, namespace string) *Queue {
	return &Queue{pool: pool, namespace: namespace, enqueuer: work.NewEnqueuer(namespace, pool)}
}

// Ping checks that Redis responds.
func (q *Queue) Ping(ctx context.Context) error {
	conn, err := q.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to redis: %w", err)
	}
	defer conn.Close()
	_, err = conn.Do("PING")
	return err
}

// NotifyQueued notifies the workers that jobs wait in Postgres to be launched, so that they
// claim them at once rather than at their next look, up to a second later.
func (q *Queue) NotifyQueued() error {
	if err := q.wake(wakeJobs); err != nil {
		return fmt.Errorf("notify workers of queued jobs: %w", err)
	}
	return nil
}

// EnqueueBuild queues the preparation of a deploy.
func (q *Queue) EnqueueBuild(did int64) error {
	_, err := q.enqueuer.EnqueueUnique(TaskBuildDeploy, work.Q{"did": did})
	if err != nil {
		return fmt.Errorf("enqueue build of deploy %d: %w", did, err)
	}
	// The task is queued: an idle worker finds it at its next poll, at most 5 seconds later,
	// even when the notification fails.
	_ = q.wake(wakeDeploys)
	return nil
}

// wakeChannel is the Redis channel that notifies the workers of waiting work.
func (q *Queue) wakeChannel() string {
	return q.namespace + ":wake"
}

// Messages on the wake channel, naming the kind of work that waits.
const (
	wakeJobs    = "jobs"
	wakeDeploys = "deploys"
)

// wake notifies the workers that work of a kind waits.
func (q *Queue) wake(kind string) error {
	conn := q.pool.Get()
	defer conn.Close()
	_, err := conn.Do("PUBLISH", q.wakeChannel(), kind)
	return err
}

// listen signals woken[kind] for each message that names a kind of work, and every channel for
// any other message. A channel with a buffer of one collapses the wake-ups that
// come while its reader works into one. It returns when ctx is done.
func (q *Queue) listen(ctx context.Context, log hclog.Logger, woken map[string]chan<- struct{}) {
	failures := 0
	for ctx.Err() == nil {
		err := q.listenForWakes(ctx, woken)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 {
			log.Warn("subscribe to new-task notifications failed; until it works again, queued jobs wait up to a second and deploys up to 5 seconds", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(failures)*time.Second, 10*time.Second)):
		}
	}
}

// listenForWakes subscribes to the wake channel and signals woken for each message until the
// connection fails or ctx is done. A ping every 10 seconds keeps the connection's 30-second
// read timeout from ending a quiet subscription. One goroutine writes (pings, and the
// unsubscribe at the end) while this one reads, as redigo allows.
func (q *Queue) listenForWakes(ctx context.Context, woken map[string]chan<- struct{}) error {
	conn, err := q.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	psc := redis.PubSubConn{Conn: conn}
	defer psc.Close()
	if err := psc.Subscribe(q.wakeChannel()); err != nil {
		return err
	}

	// The writer ends before the connection is closed: the deferred calls run in reverse.
	var writer sync.WaitGroup
	defer writer.Wait()
	done := make(chan struct{})
	defer close(done)
	writer.Go(func() {
		ticker := time.NewTicker(10 * time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				_ = psc.Unsubscribe()
				return
			case <-ticker.C:
				if psc.Ping("") != nil {
					return
				}
			}
		}
	})

	for {
		switch v := psc.Receive().(type) {
		case redis.Message:
			if c, ok := woken[string(v.Data)]; ok {
				signal(c)
				continue
			}
			for _, c := range woken {
				signal(c)
			}
		case redis.Subscription:
			if v.Kind == "unsubscribe" && v.Count == 0 {
				return ctx.Err()
			}
		case error:
			return v
		}
	}
}

// claimGap is the shortest time between two claims of queued jobs by one worker. Each new job
// wakes the workers, and without a gap a worker woken a thousand times a second claimed the
// jobs a few at a time, at about the cost of a claim of a hundred. A job created right after a
// claim waits up to this long.
const claimGap = 20 * time.Millisecond

// spaced returns run, made to start at least gap after the start of its previous call.
func spaced(gap time.Duration, run func(context.Context) error) func(context.Context) error {
	var last time.Time
	return func(ctx context.Context) error {
		if wait := gap - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		last = time.Now()
		return run(ctx)
	}
}

// signal sends on c unless a signal already waits there.
func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// WorkerOptions tune Run.
type WorkerOptions struct {
	// Concurrency is how many deploys the worker prepares at once.
	Concurrency    uint
	ReconcileEvery time.Duration
	// CronEvery is how often the worker fires due cron jobs; 1 s when zero.
	CronEvery time.Duration
	// DispatchEvery is how often the worker looks for queued jobs without a notification;
	// 1 s when zero. Jobs whose launch failed wait for this look.
	DispatchEvery time.Duration
	Logger        hclog.Logger
}

// Run processes tasks until ctx is done, then waits for running tasks to end.
func (q *Queue) Run(ctx context.Context, h Handlers, opts WorkerOptions) {
	log := opts.Logger.Named("worker")
	pool := work.NewWorkerPool(struct{}{}, opts.Concurrency, q.namespace, q.pool)
	retry := work.JobOptions{MaxFails: 4, Backoff: func(job *work.Job) int64 { return 2 * job.Fails }}

	pool.JobWithOptions(TaskBuildDeploy, retry, func(job *work.Job) error {
		did := job.ArgInt64("did")
		if err := job.ArgError(); err != nil {
			return logFailure(log, job, err)
		}
		return logFailure(log, job, h.BuildDeploy(ctx, did))
	})
	pool.Start()
	var loops sync.WaitGroup
	loops.Go(func() { every(ctx, log, "fire cron jobs", opts.CronEvery, nil, h.FireCron) })
	loops.Go(func() { q.reconcileEvery(ctx, log, opts.ReconcileEvery, h.Reconcile) })
	// A wake-up makes the worker claim queued jobs, or makes gocraft/work's idle workers fetch
	// deploy tasks: they poll Redis with a back-off that reaches 5 seconds after about a second
	// without tasks. The drain goroutine is not waited for: gocraft's Stop ends the workers.
	dispatchNow, drainNow := make(chan struct{}, 1), make(chan struct{}, 1)
	// The first claim comes at once, for the jobs queued while no worker ran.
	signal(dispatchNow)
	loops.Go(func() {
		every(ctx, log, "launch queued jobs", opts.DispatchEvery, dispatchNow, spaced(claimGap, func(ctx context.Context) error {
			claimed, err := h.DispatchQueued(ctx)
			if err == nil && claimed == 0 {
				return errIdle
			}
			return err
		}))
	})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-drainNow:
				pool.Drain()
			}
		}
	}()
	go q.listen(ctx, log, map[string]chan<- struct{}{wakeJobs: dispatchNow, wakeDeploys: drainNow})
	log.Info("worker started", "concurrency", opts.Concurrency, "namespace", q.namespace)
	<-ctx.Done()
	log.Info("worker stopping: finishing the launches and tasks in progress")
	pool.Stop()
	loops.Wait()
	log.Info("worker stopped")
}

// reconcileEvery runs the reconcile at start and then every interval, on a ticker in each
// worker. A gocraft/work periodic task would not do: gocraft schedules periodic tasks in Redis
// minutes ahead, so after Redis lost its data the reconcile stopped for up to two minutes, and
// with it the sweep that finds queued jobs again. A Redis lock lets one worker
// reconcile per tick; when Redis cannot be reached, each worker reconciles anyway, which is
// safe because every status change is conditional.
func (q *Queue) reconcileEvery(ctx context.Context, log hclog.Logger, interval time.Duration, reconcile func(context.Context) error) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	run := func(ctx context.Context) error {
		locked, err := q.tryLock(ctx, "reconcile", interval*8/10)
		if err == nil && !locked {
			return nil
		}
		return reconcile(ctx)
	}
	if err := run(ctx); err != nil && ctx.Err() == nil {
		log.Error("reconcile failed", "error", err)
	}
	every(ctx, log, "reconcile", interval, nil, run)
}

// tryLock takes a lock that expires after ttl, and reports whether this call got it.
func (q *Queue) tryLock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	conn, err := q.pool.GetContext(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	reply, err := redis.String(conn.Do("SET", q.namespace+":lock:"+name, "1", "NX", "PX", ttl.Milliseconds()))
	if err == redis.ErrNil {
		return false, nil
	}
	return reply == "OK", err
}

// errIdle is the result of a run of every that found nothing to do. After a failed launch,
// whose error wraps errdefs.ErrUnavailable, it is neither a failure nor a success. The failed
// jobs wait before they are due again, so the rounds in between have nothing to launch and do
// not show that the engine works again. After any other failure, such as Postgres refusing
// the claim, it is a success: the claim worked.
var errIdle = errors.New("nothing to do")

// every calls run on every tick, and at once for each signal on now (nil for none), until ctx
// is done. It runs in each worker process rather than as a gocraft/work periodic task, which
// would reach only one worker per tick. With every worker calling run at once, a minute with
// many due cron jobs, or a long queue of jobs, is split among them. Calls never overlap: the
// ticks and signals that come while one runs collapse into one. A run of failures is logged
// under name at its first failure and then once a minute, and its end at the next success.
// Calls that return errIdle end it only when the last failure was not the engine's.
func every(ctx context.Context, log hclog.Logger, name string, interval time.Duration, now <-chan struct{}, run func(context.Context) error) {
	if interval <= 0 {
		interval = time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var failures int
	var lastErr error
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-now:
		}
		err := run(ctx)
		if errors.Is(err, errIdle) {
			if errors.Is(lastErr, errdefs.ErrUnavailable) {
				continue
			}
			err = nil
		}
		switch {
		case err == nil && failures > 0:
			log.Info(name+" works again", "failures", failures)
			failures, lastErr = 0, nil
		case err != nil && ctx.Err() == nil:
			failures, lastErr = failures+1, err
			if failures == 1 || time.Since(lastLogged) >= time.Minute {
				log.Error(name+" failed", "failures", failures, "error", err)
				lastLogged = time.Now()
			}
		}
	}
}

func logFailure(log hclog.Logger, job *work.Job, err error) error {
	if err != nil {
		log.Error("task failed", "task", job.Name, "args", job.Args, "attempt", job.Fails+1, "error", err)
	}
	return err
}
