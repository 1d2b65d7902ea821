package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// queueJobs creates n jobs, alternating between the given spiders, and returns their ids.
func queueJobs(t *testing.T, st *store.Store, pid string, n int, spiders ...int64) []int64 {
	t.Helper()
	jids := make([]int64, n)
	for i := range jids {
		j := &store.Job{ProjectID: pid, SpiderID: spiders[i%len(spiders)], DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
		if i == 0 {
			j.EnvVars = []store.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}
		}
		if err := st.CreateJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		jids[i] = j.JID
	}
	return jids
}

func launchedIDs(launches []*store.Launch) []int64 {
	ids := make([]int64, len(launches))
	for i, l := range launches {
		ids[i] = l.Job.JID
	}
	return ids
}

func TestClaimQueuedJobsOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, books := quotesAndBooks(t, st)
	jids := queueJobs(t, st, p.PID, 5, quotes, books)

	launches, err := st.ClaimQueuedJobs(ctx, 3)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if diff := cmp.Diff(jids[:3], launchedIDs(launches)); diff != "" {
		t.Fatalf("claimed jobs (-want +got):\n%s", diff)
	}
	tokens := map[string]bool{}
	for i, l := range launches {
		wantSpider := []string{"quotes", "books"}[i%2]
		if l.Job.Status != store.JobWaiting || l.Job.DispatchAttempts != 1 || l.Job.SpiderName != wantSpider || l.Artifact != "/artifacts/1" {
			t.Errorf("claimed job %d: %s, %d attempts, spider %q, artifact %q; want WAITING, 1, %s, /artifacts/1",
				l.Job.JID, l.Job.Status, l.Job.DispatchAttempts, l.Job.SpiderName, l.Artifact, wantSpider)
		}
		principal, err := st.Authenticate(ctx, l.Token)
		if err != nil || principal.JobID != l.Job.JID {
			t.Errorf("token of job %d authenticates as %+v, %v", l.Job.JID, principal, err)
		}
		tokens[l.Token] = true
	}
	if len(tokens) != 3 {
		t.Errorf("3 claimed jobs got %d distinct tokens", len(tokens))
	}
	if want := []store.LaunchEnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}; !cmp.Equal(want, launches[0].EnvVars) {
		t.Errorf("env vars of the first job = %v, want %v", launches[0].EnvVars, want)
	}

	rest, err := st.ClaimQueuedJobs(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jids[3:], launchedIDs(rest)); diff != "" {
		t.Errorf("second claim (-want +got):\n%s", diff)
	}
	if none, err := st.ClaimQueuedJobs(ctx, 100); err != nil || len(none) != 0 {
		t.Errorf("claim of an empty queue = %v, %v; want nothing", launchedIDs(none), err)
	}
}

// Workers with their own connections claim at once; each job goes to exactly one of them.
func TestClaimQueuedJobsSplitsBetweenWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	var workers [3]*store.Store
	for i := range workers {
		st, err := store.Open(ctx, url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		workers[i] = st
	}
	p, quotes, books := quotesAndBooks(t, workers[0])
	jids := queueJobs(t, workers[0], p.PID, 200, quotes, books)

	var mu sync.Mutex
	claimedBy := map[int64]int{}
	var wg sync.WaitGroup
	for w, st := range workers {
		wg.Go(func() {
			for {
				launches, err := st.ClaimQueuedJobs(ctx, 7)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if len(launches) == 0 {
					return
				}
				mu.Lock()
				for _, l := range launches {
					claimedBy[l.Job.JID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, jid := range jids {
		if claimedBy[jid] != 1 {
			t.Errorf("job %d claimed %d times, want once", jid, claimedBy[jid])
		}
	}
}

func TestReturnJobsToQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, _ := quotesAndBooks(t, st)
	jids := queueJobs(t, st, p.PID, 3, quotes)
	launches, err := st.ClaimQueuedJobs(ctx, 3)
	if err != nil || len(launches) != 3 {
		t.Fatalf("claim = %d jobs, %v; want 3", len(launches), err)
	}
	if _, err := st.UpdateJob(ctx, jids[2], store.JobUpdate{FromStatus: store.JobWaiting, Status: ptr(store.JobStopped)}); err != nil {
		t.Fatal(err)
	}

	// A failed launch: the attempt counts and the job waits an hour. The stopped job stays.
	n, err := st.ReturnJobsToQueue(ctx, jids, time.Hour, false)
	if err != nil || n != 2 {
		t.Fatalf("return = %d, %v; want the 2 waiting jobs", n, err)
	}
	// The engine may run the job already, with this token, and keeps it at the next launch.
	for i, l := range launches[:2] {
		if _, err := st.Authenticate(ctx, l.Token); err != nil {
			t.Errorf("token of job %d no longer authenticates after the job went back to the queue: %v", jids[i], err)
		}
	}
	for _, jid := range jids[:2] {
		j, err := st.JobByID(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != store.JobInQueue || j.DispatchAttempts != 1 || j.DispatchAfter == nil || time.Until(*j.DispatchAfter) < 50*time.Minute {
			t.Errorf("returned job %d: %s, %d attempts, after %v; want IN_QUEUE, 1, an hour from now", jid, j.Status, j.DispatchAttempts, j.DispatchAfter)
		}
	}
	if early, err := st.ClaimQueuedJobs(ctx, 10); err != nil || len(early) != 0 {
		t.Errorf("claim before the retry time = %v, %v; want nothing", launchedIDs(early), err)
	}

	// An unavailable engine: claimed again at once, the attempt is given back.
	if _, err := st.ClaimJobForLaunch(ctx, jids[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := st.ReturnJobsToQueue(ctx, jids[:1], 0, true); err != nil || n != 1 {
		t.Fatalf("return with refund = %d, %v; want 1", n, err)
	}
	again, err := st.ClaimQueuedJobs(ctx, 10)
	if err != nil || len(again) != 1 || again[0].Job.JID != jids[0] || again[0].Job.DispatchAttempts != 2 {
		t.Errorf("claim after the refund = %v, %v; want job %d on its second attempt", launchedIDs(again), err, jids[0])
	}
}
