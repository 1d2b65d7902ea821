package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/testenv"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestTryLockOneHolder(t *testing.T) {
	t.Parallel()
	pool := NewPool(testenv.RedisURL(t))
	defer pool.Close()
	q := New(pool, testenv.Namespace())
	ctx := context.Background()

	first, err := q.tryLock(ctx, "reconcile", time.Minute)
	if err != nil || !first {
		t.Fatalf("first tryLock = %v, %v; want the lock", first, err)
	}
	second, err := q.tryLock(ctx, "reconcile", time.Minute)
	if err != nil || second {
		t.Errorf("second tryLock = %v, %v; want no lock while the first holds it", second, err)
	}
	other, err := New(pool, testenv.Namespace()).tryLock(ctx, "reconcile", time.Minute)
	if err != nil || !other {
		t.Errorf("tryLock in another namespace = %v, %v; want the lock", other, err)
	}
}

// A pool whose Redis is gone waits before it reports the failed dial, so retry loops slow down.
func TestDialFailureWaits(t *testing.T) {
	t.Parallel()
	pool := NewPool("redis://127.0.0.1:1/0")
	defer pool.Close()
	start := time.Now()
	for i := 0; i < 3; i++ {
		conn := pool.Get()
		if conn.Err() == nil {
			t.Fatal("dial to a closed port succeeded")
		}
		conn.Close()
	}
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("three failed dials returned after %s, want at least the 600 ms of back-off", waited)
	}
}

// A notification wakes the workers for its kind of work only, at once instead of at their
// next poll.
func TestNotifyWakesWorkers(t *testing.T) {
	t.Parallel()
	pool := NewPool(testenv.RedisURL(t))
	defer pool.Close()
	q := New(pool, testenv.Namespace())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	jobs, deploys := make(chan struct{}, 1), make(chan struct{}, 1)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		q.listen(ctx, hclog.NewNullLogger(), map[string]chan<- struct{}{wakeJobs: jobs, wakeDeploys: deploys})
	}()

	// The subscription starts in the background: notify until a wake-up comes.
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		if err := q.NotifyQueued(); err != nil {
			t.Fatalf("notify: %v", err)
		}
		select {
		case <-jobs:
			done = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake-up within 30 s of notifications")
		}
	}
	// Messages arrive in order, so once a build's wake-up came, no earlier notification is
	// left to arrive: a second build then shows whether builds wake the job launcher.
	for round := range 2 {
		if err := q.EnqueueBuild(1); err != nil {
			t.Fatalf("enqueue build: %v", err)
		}
		select {
		case <-deploys:
		case <-time.After(30 * time.Second):
			t.Fatal("no deploy wake-up within 30 s of an enqueued build")
		}
		select {
		case <-jobs:
			if round == 1 {
				t.Error("an enqueued build woke the job launcher too")
			}
		default:
		}
	}

	cancel()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("listen still runs 30 s after its context ended")
	}
}

// A signal runs the work at once, long before the next tick, and signals that come while it
// runs collapse into one more run.
func TestEveryRunsOnSignal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := make(chan struct{}, 1)
	runs := make(chan struct{}, 10)
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		every(ctx, hclog.NewNullLogger(), "test work", time.Hour, now, func(context.Context) error {
			runs <- struct{}{}
			<-release
			return nil
		})
	}()

	now <- struct{}{}
	select {
	case <-runs:
	case <-time.After(30 * time.Second):
		t.Fatal("no run within 30 s of a signal, with an hourly tick")
	}
	// Three signals while the first run is blocked: the buffer of one keeps a single signal.
	for range 3 {
		select {
		case now <- struct{}{}:
		default:
		}
	}
	close(release)
	select {
	case <-runs:
	case <-time.After(30 * time.Second):
		t.Fatal("no second run after the signals sent during the first")
	}
	select {
	case <-runs:
		t.Error("a third run followed; the signals during the first run should collapse into one")
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done
}

// Calls of a spaced function start at least the gap apart, however soon they are made.
func TestSpacedKeepsTheGap(t *testing.T) {
	t.Parallel()
	var starts []time.Time
	run := spaced(50*time.Millisecond, func(context.Context) error {
		starts = append(starts, time.Now())
		return nil
	})
	for range 3 {
		if err := run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 50*time.Millisecond {
			t.Errorf("call %d started %s after the one before, want at least 50ms", i+1, gap)
		}
	}
}

// During an outage the rounds with nothing due neither end the run of failures nor log it
// again: one line when it starts and one when a round works again.
func TestEveryLogsAnOutageOnceAcrossIdleRounds(t *testing.T) {
	t.Parallel()
	outage := fmt.Errorf("launch job 7, engine unavailable: %w", errdefs.ErrUnavailable)
	got := everyLog([]error{outage, errIdle, errIdle, outage, errIdle, outage, nil, errIdle, nil})
	if n := strings.Count(got, "launch queued jobs failed"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, got)
	}
	if n := strings.Count(got, "launch queued jobs works again"); n != 1 || !strings.Contains(got, "failures=3") {
		t.Errorf("the end of the outage was logged %d times, want once with failures=3:\n%s", n, got)
	}
}

// After a failure that is not the engine's, such as Postgres refusing the claim, a round with
// nothing due shows that the claim works again.
func TestEveryEndsADatabaseOutageOnAnIdleRound(t *testing.T) {
	t.Parallel()
	got := everyLog([]error{errors.New("claim queued jobs: connection refused"), errIdle, errIdle})
	if strings.Count(got, "launch queued jobs works again") != 1 || !strings.Contains(got, "failures=1") {
		t.Errorf("the first idle round after a database failure should log the end of the outage once:\n%s", got)
	}
}

// everyLog runs every over a run function that returns results in turn, and returns what it
// logged at info level and above.
func everyLog(results []error) string {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logged bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Info})
	calls := 0
	every(ctx, log, "launch queued jobs", time.Millisecond, nil, func(context.Context) error {
		err := results[calls]
		if calls++; calls == len(results) {
			cancel()
		}
		return err
	})
	return logged.String()
}
