// Package queue runs background work on Redis with gocraft/work: dispatching jobs to the engine,
// preparing deploys, and the periodic reconcile. It is the only package that imports
// gocraft/work. Redis may lose the queue; Postgres stays the source of truth and the periodic
// reconcile enqueues again whatever is missing.
package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocraft/work"
	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"
)

// Names of the queued tasks.
const (
	TaskDispatchJob = "dispatch_job"
	TaskBuildDeploy = "build_deploy"
)

// Handlers is the work the worker does. Every handler must be idempotent: a task may run twice.
type Handlers interface {
	DispatchJob(ctx context.Context, jid int64) error
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

// EnqueueDispatch queues the launch of a new job. The plain enqueue costs fewer Redis round
// trips than a unique one; a job enqueued twice is still launched once, because launching
// claims it in Postgres first.
func (q *Queue) EnqueueDispatch(jid int64) error {
	_, err := q.enqueuer.Enqueue(TaskDispatchJob, work.Q{"jid": jid})
	if err != nil {
		return fmt.Errorf("enqueue dispatch of job %d: %w", jid, err)
	}
	q.wake()
	return nil
}

// RequeueDispatch enqueues a job that waited too long in Postgres, unless it already waits in
// the queue, so that the periodic sweep does not pile up copies of a long queue.
func (q *Queue) RequeueDispatch(jid int64) error {
	_, err := q.enqueuer.EnqueueUnique(TaskDispatchJob, work.Q{"jid": jid})
	if err != nil {
		return fmt.Errorf("enqueue dispatch of job %d: %w", jid, err)
	}
	q.wake()
	return nil
}

// EnqueueBuild queues the preparation of a deploy.
func (q *Queue) EnqueueBuild(did int64) error {
	_, err := q.enqueuer.EnqueueUnique(TaskBuildDeploy, work.Q{"did": did})
	if err != nil {
		return fmt.Errorf("enqueue build of deploy %d: %w", did, err)
	}
	q.wake()
	return nil
}

// wakeChannel is the Redis channel on which an enqueue notifies the workers that a task waits.
func (q *Queue) wakeChannel() string {
	return q.namespace + ":wake"
}

// wake notifies the workers that a task waits. A failure is left unreported because the task
// is queued, and an idle worker finds it at its next poll, at most 5 seconds later.
func (q *Queue) wake() {
	conn := q.pool.Get()
	defer conn.Close()
	_, _ = conn.Do("PUBLISH", q.wakeChannel(), "1")
}

// drainOnWake makes the pool's workers fetch at once whenever an enqueue publishes on the wake
// channel. gocraft/work's idle workers poll Redis with a back-off that reaches 5 seconds after
// about a second without tasks, so without this a job created after a quiet spell waited up to
// 5 seconds for a worker. Wake-ups that come while a drain runs collapse into one. It returns
// when ctx is done, without waiting for a drain in progress: gocraft's Stop ends the workers.
func (q *Queue) drainOnWake(ctx context.Context, log hclog.Logger, drain func()) {
	woken := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-woken:
				drain()
			}
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		err := q.listenForWakes(ctx, woken)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 {
			log.Warn("subscribe to new-task notifications failed, idle workers poll every 5 seconds until it works again", "error", err)
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
func (q *Queue) listenForWakes(ctx context.Context, woken chan<- struct{}) error {
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
			select {
			case woken <- struct{}{}:
			default:
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

// WorkerOptions tune Run.
type WorkerOptions struct {
	Concurrency    uint
	ReconcileEvery time.Duration
	// CronEvery is how often the worker fires due cron jobs; 1 s when zero.
	CronEvery time.Duration
	Logger    hclog.Logger
}

// Run processes tasks until ctx is done, then waits for running tasks to end.
func (q *Queue) Run(ctx context.Context, h Handlers, opts WorkerOptions) {
	log := opts.Logger.Named("worker")
	pool := work.NewWorkerPool(struct{}{}, opts.Concurrency, q.namespace, q.pool)
	retry := work.JobOptions{MaxFails: 4, Backoff: func(job *work.Job) int64 { return 2 * job.Fails }}

	pool.JobWithOptions(TaskDispatchJob, retry, func(job *work.Job) error {
		jid := job.ArgInt64("jid")
		if err := job.ArgError(); err != nil {
			return logFailure(log, job, err)
		}
		return logFailure(log, job, h.DispatchJob(ctx, jid))
	})
	pool.JobWithOptions(TaskBuildDeploy, retry, func(job *work.Job) error {
		did := job.ArgInt64("did")
		if err := job.ArgError(); err != nil {
			return logFailure(log, job, err)
		}
		return logFailure(log, job, h.BuildDeploy(ctx, did))
	})
	pool.Start()
	cronDone, reconcileDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(cronDone)
		fireCronEvery(ctx, log, opts.CronEvery, h.FireCron)
	}()
	go func() {
		defer close(reconcileDone)
		q.reconcileEvery(ctx, log, opts.ReconcileEvery, h.Reconcile)
	}()
	go q.drainOnWake(ctx, log, pool.Drain)
	log.Info("worker started", "concurrency", opts.Concurrency, "namespace", q.namespace)
	<-ctx.Done()
	pool.Stop()
	<-cronDone
	<-reconcileDone
	log.Info("worker stopped")
}

// reconcileEvery runs the reconcile at start and then every interval, on a ticker in each
// worker. A gocraft/work periodic task would not do: gocraft schedules periodic tasks in Redis
// minutes ahead, so after Redis lost its data the reconcile stopped for up to two minutes, and
// with it the sweep that finds queued jobs again. A Redis lock lets one worker
// reconcile per tick; when Redis cannot be reached, each worker reconciles anyway, which is
// safe because every status change is conditional.
func (q *Queue) reconcileEvery(ctx context.Context, log hclog.Logger, every time.Duration, reconcile func(context.Context) error) {
	if every <= 0 {
		every = 10 * time.Second
	}
	run := func(ctx context.Context) error {
		locked, err := q.tryLock(ctx, "reconcile", every*8/10)
		if err == nil && !locked {
			return nil
		}
		return reconcile(ctx)
	}
	if err := run(ctx); err != nil && ctx.Err() == nil {
		log.Error("reconcile", "error", err)
	}
	fireCronEvery(ctx, log.Named("reconcile"), every, run)
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

// fireCronEvery calls fire on every tick until ctx is done. The ticks run in each worker
// process rather than as a gocraft/work periodic task, which would reach only one worker per
// tick: with every worker firing at once, a minute with many due cron jobs is split among them.
// Calls never overlap: the ticks that come while one runs collapse into one. A run of failures
// is logged at its first failure and then once a minute.
func fireCronEvery(ctx context.Context, log hclog.Logger, every time.Duration, fire func(context.Context) error) {
	if every <= 0 {
		every = time.Second
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var failures int
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := fire(ctx)
		switch {
		case err == nil && failures > 0:
			log.Info("firing cron jobs works again", "failures", failures)
			failures = 0
		case err != nil && ctx.Err() == nil:
			failures++
			if failures == 1 || time.Since(lastLogged) >= time.Minute {
				log.Error("fire cron jobs", "failures", failures, "error", err)
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
