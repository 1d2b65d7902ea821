package queue

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/testenv"
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

// An enqueue makes idle workers fetch at once instead of at their next poll.
func TestEnqueueWakesWorkers(t *testing.T) {
	t.Parallel()
	pool := NewPool(testenv.RedisURL(t))
	defer pool.Close()
	q := New(pool, testenv.Namespace())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	drained := make(chan struct{}, 100)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		q.drainOnWake(ctx, hclog.NewNullLogger(), func() { drained <- struct{}{} })
	}()

	// The subscription starts in the background: enqueue until one drain has run.
	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		if err := q.EnqueueDispatch(1); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		select {
		case <-drained:
			done = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no drain within 30 s of enqueues")
		}
	}

	cancel()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("drainOnWake still runs 30 s after its context ended")
	}
}
