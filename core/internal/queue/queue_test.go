package queue

import (
	"context"
	"testing"
	"time"

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
