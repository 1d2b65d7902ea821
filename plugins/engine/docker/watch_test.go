package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// watchEvents runs WatchJobs until the test ends and returns its events as
// "name STATE" or "name deleted" lines.
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

func nextLines(t *testing.T, lines <-chan string, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case line := <-lines:
			got = append(got, line)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out after events %v, want %d", got, n)
		}
	}
	return got
}

// linesUntil reads events up to and including last.
func linesUntil(t *testing.T, lines <-chan string, last string) []string {
	t.Helper()
	var got []string
	for len(got) == 0 || got[len(got)-1] != last {
		got = append(got, nextLines(t, lines, 1)...)
	}
	return got
}

func TestWatchJobs(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	selected := map[string]string{"project": "p1"}
	createJob(t, e, shellSpec("job-old", "exit 0", selected))

	lines, _ := watchEvents(t, e, selected)
	initial := nextLines(t, lines, 1)
	waitFor(t, "the event subscription", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.subs) == 1
	})
	createJob(t, e, shellSpec("job-other", "exit 0", map[string]string{"project": "p2"}))
	createJob(t, e, shellSpec("job-new", "sleep 60", selected))
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "job-new"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	changes := linesUntil(t, lines, "job-new STOPPED")
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "job-new"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	changes = append(changes, linesUntil(t, lines, "job-new deleted")...)

	if diff := cmp.Diff([]string{"job-old SUCCEEDED"}, initial); diff != "" {
		t.Errorf("initial events mismatch (-want +got):\n%s", diff)
	}
	want := []string{"job-new PENDING", "job-new RUNNING", "job-new STOPPED", "job-new deleted"}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("change events mismatch (-want +got):\n%s", diff)
	}
}

func TestWatchJobsStreamEnds(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	e := newTestEngine(t, d, nil)
	_, done := watchEvents(t, e, nil)
	waitFor(t, "the event subscription", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.subs) == 1
	})

	d.srv.CloseClientConnections()

	select {
	case err := <-done:
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("WatchJobs error = %v, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchJobs did not return after the stream closed")
	}
}

func TestDieStatusOfRemovedContainer(t *testing.T) {
	t.Parallel()
	finishedAt := time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
	msg := events.Message{
		Type: events.ContainerEventType, Action: events.ActionDie, TimeNano: finishedAt.UnixNano(),
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{labelJobName: "job-x", labelJobLabels: `{"k":"v"}`, "exitCode": "3", "name": "job-x"}},
	}

	got := dieStatus(msg, engine.JobStatus{})

	want := engine.JobStatus{Name: "job-x", State: engine.JobFailed, Reason: "exited with code 3", ExitCode: 3,
		Labels: map[string]string{"k": "v"}, FinishedAt: finishedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status mismatch (-want +got):\n%s", diff)
	}
}
