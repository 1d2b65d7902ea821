package main

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

// watchEvents runs WatchJobs until the test ends and returns its events as
// "name STATE" or "name deleted" lines, and its result.
func watchEvents(t *testing.T, e engine.JobWatcher, labels map[string]string) (<-chan string, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	lines := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- e.WatchJobs(ctx, &engine.WatchJobsRequest{Labels: labels}, func(ev engine.JobEvent) error {
			line := ev.Job.Name + " " + string(ev.Job.State)
			if ev.Deleted {
				line = ev.Job.Name + " deleted"
			}
			lines <- line
			return nil
		})
	}()
	return lines, done
}

// linesUntil reads events up to and including last.
func linesUntil(t *testing.T, lines <-chan string, last string) []string {
	t.Helper()
	var got []string
	for len(got) == 0 || got[len(got)-1] != last {
		select {
		case line := <-lines:
			got = append(got, line)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out after events %v, want %q", got, last)
		}
	}
	return got
}

func (a *fakeAgent) subscribers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.subs)
}

func TestWatchJobs(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	selected := map[string]string{"estela/project": "p1"}
	createJob(t, e, shellSpec("job-old", "exit 0", selected))

	lines, _ := watchEvents(t, e, selected)
	initial := linesUntil(t, lines, "job-old SUCCEEDED")
	waitFor(t, "the event subscription", func() bool { return a.subscribers() == 1 })
	createJob(t, e, shellSpec("job-other", "exit 0", map[string]string{"estela/project": "p2"}))
	createJob(t, e, shellSpec("job-new", "sleep 60", selected))
	running := linesUntil(t, lines, "job-new RUNNING")
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "job-new"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	stopped := linesUntil(t, lines, "job-new STOPPED")
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "job-new"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	deleted := linesUntil(t, lines, "job-new deleted")

	if diff := cmp.Diff([]string{"job-old SUCCEEDED"}, initial); diff != "" {
		t.Errorf("initial events mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"job-new PENDING", "job-new RUNNING"}, running); diff != "" {
		t.Errorf("events until RUNNING mismatch (-want +got):\n%s", diff)
	}
	// The stop first shows as RUNNING with the reason "stopping", until
	// the allocation ends.
	if diff := cmp.Diff([]string{"job-new RUNNING", "job-new STOPPED"}, stopped); diff != "" {
		t.Errorf("events until STOPPED mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"job-new deleted"}, deleted); diff != "" {
		t.Errorf("events until deletion mismatch (-want +got):\n%s", diff)
	}
}

func TestWatchJobsStreamsFromListIndex(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-old", "exit 3", nil))

	lines, _ := watchEvents(t, e, nil)
	initial := linesUntil(t, lines, "job-old FAILED")
	waitFor(t, "the event subscription", func() bool { return a.subscribers() == 1 })
	createJob(t, e, shellSpec("job-new", "exit 0", nil))
	after := linesUntil(t, lines, "job-new SUCCEEDED")

	// Replayed events of job-old, from before the list, would show up as
	// extra lines here.
	if diff := cmp.Diff([]string{"job-old FAILED"}, initial); diff != "" {
		t.Errorf("initial events mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"job-new PENDING", "job-new RUNNING", "job-new SUCCEEDED"}, after); diff != "" {
		t.Errorf("new job events mismatch (-want +got):\n%s", diff)
	}
}

func TestWatchJobsStreamEnds(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	_, done := watchEvents(t, e, nil)
	waitFor(t, "the event subscription", func() bool { return a.subscribers() == 1 })

	a.srv.CloseClientConnections()

	select {
	case err := <-done:
		if !isUnavailable(err) {
			t.Errorf("WatchJobs error = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchJobs did not return after the stream closed")
	}
}

func TestWatchJobsGarbageCollection(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-gc", "exit 0", nil))
	lines, _ := watchEvents(t, e, nil)
	linesUntil(t, lines, "job-gc SUCCEEDED")
	waitFor(t, "the event subscription", func() bool { return a.subscribers() == 1 })

	a.mu.Lock()
	delete(a.jobs, "job-gc")
	a.index++
	a.publish(api.Event{Topic: api.TopicJob, Type: "JobBatchDeregistered", Key: "job-gc", Payload: map[string]any{}})
	a.mu.Unlock()

	if got := linesUntil(t, lines, "job-gc deleted"); len(got) != 1 {
		t.Errorf("events after garbage collection = %v, want only the deletion", got)
	}
}
