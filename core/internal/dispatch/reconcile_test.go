package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
	"github.com/estela-go/estela-go/sdk/engine"
)

// listingEngine is a test double of an engine with a fixed job list; it records what the
// reconcile stops and deletes.
type listingEngine struct {
	engine.Engine
	jobs             []engine.JobStatus
	lists            int
	stopped, deleted []string
}

func (e *listingEngine) ListJobs(context.Context, *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	e.lists++
	return &engine.ListJobsResponse{Jobs: e.jobs}, nil
}

func (e *listingEngine) StopJob(_ context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	e.stopped = append(e.stopped, req.Name)
	return &engine.StopJobResponse{}, nil
}

func (e *listingEngine) DeleteJob(_ context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	e.deleted = append(e.deleted, req.Name)
	return &engine.DeleteJobResponse{}, nil
}

func endJob(t *testing.T, st *store.Store, j *store.Job, status string) {
	t.Helper()
	if err := st.Transition(context.Background(), j.JID, store.JobInQueue, status); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileStopsAndCleansEngineJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	running := queuedJob(t, st) // ended in Postgres, still running on the engine
	old := queuedJob(t, st)     // ended long ago on both sides
	recent := queuedJob(t, st)  // ended a minute ago on both sides
	for _, j := range []*store.Job{running, old, recent} {
		endJob(t, st, j, store.JobCompleted)
	}
	status := func(j *store.Job, state engine.JobState, finished time.Time) engine.JobStatus {
		return engine.JobStatus{Name: j.Name(), State: state, FinishedAt: finished,
			Labels: map[string]string{dispatch.LabelJob: strconv.FormatInt(j.JID, 10)}}
	}
	eng := &listingEngine{jobs: []engine.JobStatus{
		status(running, engine.JobRunning, time.Time{}),
		status(old, engine.JobSucceeded, time.Now().Add(-2*time.Hour)),
		status(recent, engine.JobSucceeded, time.Now().Add(-time.Minute)),
	}}
	// With a grace of a nanosecond, every ended job has had its time to exit.
	svc := newServiceWith(t, st, eng, dispatch.Settings{StopGrace: time.Nanosecond})

	if err := svc.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if eng.lists != 1 {
		t.Errorf("reconcile listed engine jobs %d times, want 1", eng.lists)
	}
	sort.Strings(eng.stopped)
	if diff := cmp.Diff([]string{running.Name()}, eng.stopped); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{old.Name()}, eng.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

// A job that ended in Postgres a moment ago keeps its engine process until the stop grace has
// passed twice, so that the process can exit by itself after its last report.
func TestReconcileLetsEndedJobsExit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	endJob(t, st, j, store.JobCompleted)
	eng := &listingEngine{jobs: []engine.JobStatus{{Name: j.Name(), State: engine.JobRunning,
		Labels: map[string]string{dispatch.LabelJob: strconv.FormatInt(j.JID, 10)}}}}

	if err := newServiceWith(t, st, eng, dispatch.Settings{StopGrace: time.Hour}).Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if len(eng.stopped) != 0 {
		t.Errorf("reconcile within the grace stopped %v, want nothing", eng.stopped)
	}
	if err := newServiceWith(t, st, eng, dispatch.Settings{StopGrace: time.Nanosecond}).Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if diff := cmp.Diff([]string{j.Name()}, eng.stopped); diff != "" {
		t.Errorf("stopped after the grace (-want +got):\n%s", diff)
	}
}

func TestReconcileEndsLostJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	lost := queuedJob(t, st)
	failed := queuedJob(t, st)
	for _, j := range []*store.Job{lost, failed} {
		endJob(t, st, j, store.JobWaiting)
		if err := st.Transition(ctx, j.JID, store.JobWaiting, store.JobRunning); err != nil {
			t.Fatal(err)
		}
	}
	eng := &listingEngine{jobs: []engine.JobStatus{{Name: failed.Name(), State: engine.JobFailed, Reason: "the job used more memory than its limit (OOMKilled)",
		Labels: map[string]string{dispatch.LabelJob: strconv.FormatInt(failed.JID, 10)}}}}
	svc := newService(t, st, eng, dispatch.ImageSettings{})

	if err := svc.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, tt := range []struct {
		job    *store.Job
		reason string
	}{
		{lost, "the engine has no record of the job process; it was lost, for example when the engine restarted"},
		{failed, "the job process failed: the job used more memory than its limit (OOMKilled)"},
	} {
		got, _ := st.JobByID(ctx, tt.job.JID)
		if got.Status != store.JobError || got.ErrorReason != tt.reason {
			t.Errorf("job %d after reconcile: %s (%q), want ERROR (%q)", tt.job.JID, got.Status, got.ErrorReason, tt.reason)
		}
	}
}

// A stopped job whose process was killed at the end of its grace period, before its last
// report, gets the counters and stats of the live stats it wrote after the stop began. Its
// item count is at least the number of items it stored.
func TestReconcileSavesStatsOfKilledStoppedJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	endJob(t, st, j, store.JobStopped)
	eng := &listingEngine{jobs: []engine.JobStatus{{Name: j.Name(), State: engine.JobFailed, FinishedAt: time.Now().Add(-time.Minute),
		Labels: map[string]string{dispatch.LabelJob: strconv.FormatInt(j.JID, 10), dispatch.LabelSpider: strconv.FormatInt(j.SpiderID, 10), dispatch.LabelProject: j.ProjectID}}}}

	svc, stats, pool := newServiceWithStats(t, st, eng, dispatch.Settings{})
	conn := pool.Get()
	defer conn.Close()
	if _, err := conn.Do("HSET", stats.Key(j.Key()), "item_scraped_count", "12", "downloader/request_count", "20"); err != nil {
		t.Fatal(err)
	}

	// The job stored 15 items, 3 of them after its last live stats.
	records := make([]json.RawMessage, 15)
	for i := range records {
		records[i] = json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))
	}
	if _, err := st.IngestBatch(ctx, j.JID, store.DataItems, "items-1", records); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := svc.Reconcile(ctx); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
	}
	got, err := st.JobByID(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobStopped || got.ItemCount != 15 || got.RequestCount != 20 {
		t.Errorf("stopped job after the reconcile: %s with %d items and %d requests, want STOPPED with the 15 stored and 20", got.Status, got.ItemCount, got.RequestCount)
	}
	if n, err := redis.Int(conn.Do("EXISTS", stats.Key(j.Key()))); err != nil || n != 0 {
		t.Errorf("live stats of the stopped job still exist (%d, %v), want them deleted", n, err)
	}
	if len(eng.stopped) != 0 || len(eng.deleted) != 0 {
		t.Errorf("reconcile stopped %v and deleted %v, want neither for a job that ended a minute ago", eng.stopped, eng.deleted)
	}
}
