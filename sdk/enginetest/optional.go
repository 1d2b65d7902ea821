package enginetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// capabilities lists every optional capability this SDK version defines.
var capabilities = []string{
	engine.CapabilityWatchJobs,
	engine.CapabilityJobLogs,
	engine.CapabilityCapacity,
	engine.CapabilityBuildImage,
}

func info(t *testing.T, eng engine.Engine) *pluginapi.Info {
	t.Helper()
	info, err := eng.GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	return info
}

// optional returns a subtest that runs test on a new engine when the engine
// lists capability, and skips otherwise.
func (h Harness) optional(capability string, test func(*testing.T, engine.Engine)) func(*testing.T) {
	return func(t *testing.T) {
		eng := h.New(t)
		if !engine.Supports(info(t, eng), capability) {
			t.Skipf("engine does not list capability %q", capability)
		}
		test(t, eng)
	}
}

// errServed marks a call to an unlisted capability that the engine served
// anyway, as opposed to one that returned ErrUnimplemented.
var errServed = errors.New("engine served a capability it does not list")

// unlistedCalls calls each optional method of eng, which must implement every
// optional interface, as the gRPC client does.
var unlistedCalls = map[string]func(context.Context, engine.Engine) error{
	engine.CapabilityWatchJobs: func(ctx context.Context, eng engine.Engine) error {
		req := &engine.WatchJobsRequest{Labels: map[string]string{"suite": "conformance-unlisted"}}
		return eng.(engine.JobWatcher).WatchJobs(ctx, req, func(engine.JobEvent) error { return errServed })
	},
	engine.CapabilityJobLogs: func(ctx context.Context, eng engine.Engine) error {
		return eng.(engine.LogStreamer).JobLogs(ctx, &engine.JobLogsRequest{Name: "conformance-none"}, io.Discard)
	},
	engine.CapabilityCapacity: func(ctx context.Context, eng engine.Engine) error {
		_, err := eng.(engine.CapacityReporter).Capacity(ctx, &engine.CapacityRequest{})
		return err
	},
	engine.CapabilityBuildImage: func(ctx context.Context, eng engine.Engine) error {
		_, err := eng.(engine.ImageBuilder).BuildImage(ctx, &engine.BuildImageRequest{
			ProjectID: "conformance", DeployID: 1, Image: "conformance.invalid/none:1",
		})
		return err
	},
}

// testUnlisted checks through gRPC that every capability the engine does not
// list ends with errdefs.ErrUnimplemented, because the host reads that as
// "absent". It also rejects capability names this SDK does not define.
func (h Harness) testUnlisted(t *testing.T) {
	eng := Connect(t, h.New(t))
	listed := info(t, eng).Capabilities
	for _, c := range listed {
		if !slices.Contains(capabilities, c) {
			t.Errorf("GetInfo lists unknown capability %q; known: %s", c, strings.Join(capabilities, ", "))
		}
	}
	for _, c := range capabilities {
		if slices.Contains(listed, c) {
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), h.Timeout)
		err := unlistedCalls[c](ctx, eng)
		cancel()
		if !errors.Is(err, errdefs.ErrUnimplemented) {
			t.Errorf("capability %q is not listed, so its call must return ErrUnimplemented; error = %v", c, err)
		}
	}
}

// watch runs WatchJobs on eng in the background. It returns the events and a
// stop function that cancels the watch and returns the error of WatchJobs.
// The watch also stops when the test ends.
func watch(t *testing.T, eng engine.Engine, labels map[string]string) (stop func() error, events <-chan engine.JobEvent) {
	t.Helper()
	watcher, ok := eng.(engine.JobWatcher)
	if !ok {
		t.Fatalf("engine lists capability %q but does not implement engine.JobWatcher", engine.CapabilityWatchJobs)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan engine.JobEvent, 64)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchJobs(ctx, &engine.WatchJobsRequest{Labels: labels}, func(e engine.JobEvent) error {
			select {
			case ch <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		close(ch)
	}()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return stop, ch
}

// nextEvent returns the first event for job name that match accepts. It fails
// the test on an event whose labels do not contain selector, when the watch
// ends, and after the harness timeout.
func (h Harness) nextEvent(t *testing.T, events <-chan engine.JobEvent, selector map[string]string, name, what string, match func(engine.JobEvent) bool) engine.JobEvent {
	t.Helper()
	timeout := time.After(h.Timeout)
	for {
		select {
		case e, open := <-events:
			if !open {
				t.Fatalf("WatchJobs ended before the event %s of job %s", what, name)
			}
			if !containsLabels(e.Job.Labels, selector) {
				t.Errorf("WatchJobs sent an event for job %s with labels %v, outside the selector %v", e.Job.Name, e.Job.Labels, selector)
			}
			if e.Job.Name == name && match(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no event %s of job %s within %s", what, name, h.Timeout)
		}
	}
}

func containsLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// testWatchJobs checks that a watch first sends the jobs that exist, then
// the creation, stop and deletion of a job, and nothing outside its selector.
func (h Harness) testWatchJobs(t *testing.T, eng engine.Engine) {
	ref := h.prepare(t, eng)
	selector := map[string]string{"suite": "conformance-watch"}
	h.create(t, eng, engine.JobSpec{Name: "conformance-watch-before", ArtifactRef: ref, Command: h.Exit(0), Labels: selector})
	h.create(t, eng, engine.JobSpec{Name: "conformance-watch-other", ArtifactRef: ref, Command: h.Exit(0), Labels: map[string]string{"suite": "other"}})
	stop, events := watch(t, eng, maps.Clone(selector))
	anyEvent := func(engine.JobEvent) bool { return true }
	h.nextEvent(t, events, selector, "conformance-watch-before", "for an existing job", anyEvent)

	name := "conformance-watch"
	h.create(t, eng, engine.JobSpec{Name: name, ArtifactRef: ref, Command: h.Sleep, Labels: selector})
	created := h.nextEvent(t, events, selector, name, "after CreateJob", anyEvent)
	if created.Deleted || created.Job.State.Final() {
		t.Errorf("first event of a new sleeping job: state %s, deleted %t; want a live job", created.Job.State, created.Deleted)
	}

	if _, err := eng.StopJob(t.Context(), &engine.StopJobRequest{Name: name, Grace: 2 * time.Second}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	h.nextEvent(t, events, selector, name, "with state STOPPED", func(e engine.JobEvent) bool { return e.Job.State == engine.JobStopped })

	if _, err := eng.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: name}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	h.nextEvent(t, events, selector, name, "with Deleted set", func(e engine.JobEvent) bool { return e.Deleted })

	err := stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("WatchJobs after cancel: error = %v, want nil or context.Canceled", err)
	}
}

// testJobLogs checks that the output of a finished job can be read, with and
// without Follow, and that unknown jobs give ErrNotFound.
func (h Harness) testJobLogs(t *testing.T, eng engine.Engine) {
	if h.Echo == nil {
		t.Fatalf("Harness.Echo is nil, but the engine lists capability %q: set it to a command that prints its argument", engine.CapabilityJobLogs)
	}
	streamer, ok := eng.(engine.LogStreamer)
	if !ok {
		t.Fatalf("engine lists capability %q but does not implement engine.LogStreamer", engine.CapabilityJobLogs)
	}
	ref := h.prepare(t, eng)
	const text = "conformance output 7f3a"
	h.create(t, eng, engine.JobSpec{Name: "conformance-logs", ArtifactRef: ref, Command: h.Echo(text)})
	if got := h.waitFinal(t, eng, "conformance-logs"); got.State != engine.JobSucceeded {
		t.Fatalf("echo job: state = %s (%s), want SUCCEEDED", got.State, got.Reason)
	}

	for _, follow := range []bool{false, true} {
		// Following a finished job must end by itself, so the timeout
		// only guards against an engine that never ends the stream.
		ctx, cancel := context.WithTimeout(t.Context(), h.Timeout)
		var out bytes.Buffer
		err := streamer.JobLogs(ctx, &engine.JobLogsRequest{Name: "conformance-logs", Follow: follow}, &out)
		cancel()
		if err != nil {
			t.Errorf("JobLogs with Follow %t: %v", follow, err)
		}
		if !strings.Contains(out.String(), text) {
			t.Errorf("JobLogs with Follow %t returned %q, want it to contain %q", follow, out.String(), text)
		}
	}

	err := streamer.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "conformance-none"}, io.Discard)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("JobLogs of an unknown job: error = %v, want ErrNotFound", err)
	}
}

// testCapacity checks that Capacity returns no negative number.
func (h Harness) testCapacity(t *testing.T, eng engine.Engine) {
	reporter, ok := eng.(engine.CapacityReporter)
	if !ok {
		t.Fatalf("engine lists capability %q but does not implement engine.CapacityReporter", engine.CapabilityCapacity)
	}
	resp, err := reporter.Capacity(t.Context(), &engine.CapacityRequest{})
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	numbers := map[string]int64{
		"Nodes":                  int64(resp.Nodes),
		"AllocatableCPUMillis":   resp.AllocatableCPUMillis,
		"AllocatableMemoryBytes": resp.AllocatableMemoryBytes,
		"RequestedCPUMillis":     resp.RequestedCPUMillis,
		"RequestedMemoryBytes":   resp.RequestedMemoryBytes,
	}
	for field, n := range numbers {
		if n < 0 {
			t.Errorf("Capacity %s = %d, want 0 or more", field, n)
		}
	}
}
