// Package enginetest is the conformance suite for engine plugins. A
// plugin's tests fill a Harness and call Run. Harness.New may return the
// implementation itself or, through Connect, the same implementation behind
// a real gRPC connection, as the host calls it.
package enginetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Harness adapts the suite to one engine.
type Harness struct {
	// New returns a configured Engine with no jobs. Run calls it once per
	// subtest; the engine must stop its jobs when the test ends.
	New func(t *testing.T) engine.Engine
	// Archive returns a project archive that PrepareArtifact accepts and the
	// names of the spiders it defines.
	Archive func(t *testing.T) (archive []byte, spiders []string)
	// Exit returns a command that exits with code in the prepared artifact.
	Exit func(code int) []string
	// Sleep is a command that runs for at least a minute and exits on SIGTERM.
	Sleep []string
	// Echo returns a command that writes text and a newline to its output
	// and exits with code 0. Run needs it only when the engine lists
	// capability job_logs.
	Echo func(text string) []string
	// Timeout bounds each wait for a job state; zero means 30 seconds.
	Timeout time.Duration
}

// Connect serves impl over an in-process gRPC connection, closed when the
// test ends, and returns the Engine the host would get.
func Connect(t testing.TB, impl engine.Engine) engine.Engine {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		engine.PluginName: &engine.Plugin{Impl: impl},
	})
	// Close also stops the server, through go-plugin's controller service;
	// stopping it here too would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(engine.PluginName)
	if err != nil {
		t.Fatalf("dispense engine plugin: %v", err)
	}
	return raw.(engine.Engine)
}

// Run checks the job contract of an engine: artifact preparation, final
// states, idempotent creation, label selection, stop, delete and the typed
// errors for unknown jobs. It then checks each optional capability the
// engine lists in GetInfo, and that each one it does not list returns
// errdefs.ErrUnimplemented through gRPC, as the host calls it.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 30 * time.Second
	}
	t.Run("prepare artifact", h.testPrepare)
	t.Run("job succeeds", h.testSucceeds)
	t.Run("job fails", h.testFails)
	t.Run("create is idempotent", h.testIdempotent)
	t.Run("list by labels", h.testList)
	t.Run("stop job", h.testStop)
	t.Run("delete job", h.testDelete)
	t.Run("unknown job", h.testUnknown)
	t.Run("unlisted capabilities", h.testUnlisted)
	t.Run("watch jobs", h.optional(engine.CapabilityWatchJobs, h.testWatchJobs))
	t.Run("job logs", h.optional(engine.CapabilityJobLogs, h.testJobLogs))
	t.Run("capacity", h.optional(engine.CapabilityCapacity, h.testCapacity))
}

// setup returns a new engine and a prepared artifact reference.
func (h Harness) setup(t *testing.T) (engine.Engine, string) {
	t.Helper()
	eng := h.New(t)
	return eng, h.prepare(t, eng)
}

// prepare prepares the harness's archive on eng and returns the artifact
// reference.
func (h Harness) prepare(t *testing.T, eng engine.Engine) string {
	t.Helper()
	archive, _ := h.Archive(t)
	resp, err := eng.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "conformance", DeployID: 1, Archive: bytes.NewReader(archive)})
	if err != nil {
		t.Fatalf("PrepareArtifact: %v", err)
	}
	return resp.ArtifactRef
}

func (h Harness) create(t *testing.T, eng engine.Engine, spec engine.JobSpec) *engine.CreateJobResponse {
	t.Helper()
	resp, err := eng.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", spec.Name, err)
	}
	return resp
}

// waitFinal polls the job until it reaches a final state.
func (h Harness) waitFinal(t *testing.T, eng engine.Engine, name string) engine.JobStatus {
	t.Helper()
	deadline := time.Now().Add(h.Timeout)
	for {
		resp, err := eng.GetJob(t.Context(), &engine.GetJobRequest{Name: name})
		if err != nil {
			t.Fatalf("GetJob %s: %v", name, err)
		}
		if resp.Job.State.Final() {
			return resp.Job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %s", name, resp.Job.State, h.Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h Harness) testPrepare(t *testing.T) {
	eng := h.New(t)
	archive, spiders := h.Archive(t)
	resp, err := eng.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "conformance", DeployID: 1, Archive: bytes.NewReader(archive)})
	if err != nil {
		t.Fatalf("PrepareArtifact: %v", err)
	}
	if resp.ArtifactRef == "" {
		t.Error("PrepareArtifact returned an empty artifact ref")
	}
	got := slices.Sorted(slices.Values(resp.Spiders))
	want := slices.Sorted(slices.Values(spiders))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spiders mismatch (-want +got):\n%s", diff)
	}
	_, err = eng.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "conformance", DeployID: 2, Archive: bytes.NewReader([]byte("not a zip"))})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("PrepareArtifact of a non-zip: error = %v, want ErrInvalid", err)
	}
}

func (h Harness) testSucceeds(t *testing.T) {
	eng, ref := h.setup(t)
	labels := map[string]string{"suite": "conformance"}
	created := h.create(t, eng, engine.JobSpec{Name: "conformance-ok", ArtifactRef: ref, Command: h.Exit(0), Labels: labels})
	if !created.Created {
		t.Error("CreateJob of a new job reports Created = false")
	}
	got := h.waitFinal(t, eng, "conformance-ok")
	if got.State != engine.JobSucceeded {
		t.Errorf("state = %s (%s), want SUCCEEDED", got.State, got.Reason)
	}
	if diff := cmp.Diff(labels, got.Labels); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
	if got.FinishedAt.IsZero() {
		t.Error("finished job has no FinishedAt")
	}
}

func (h Harness) testFails(t *testing.T) {
	eng, ref := h.setup(t)
	h.create(t, eng, engine.JobSpec{Name: "conformance-fail", ArtifactRef: ref, Command: h.Exit(3)})
	got := h.waitFinal(t, eng, "conformance-fail")
	if got.State != engine.JobFailed {
		t.Errorf("state = %s (%s), want FAILED", got.State, got.Reason)
	}
	if got.ExitCode != 3 {
		t.Errorf("exit code = %d, want 3", got.ExitCode)
	}
	if got.Reason == "" {
		t.Error("failed job has no reason")
	}
}

func (h Harness) testIdempotent(t *testing.T) {
	eng, ref := h.setup(t)
	spec := engine.JobSpec{Name: "conformance-once", ArtifactRef: ref, Command: h.Sleep}
	h.create(t, eng, spec)
	spec.Command = h.Exit(1)
	again := h.create(t, eng, spec)
	if again.Created {
		t.Error("second CreateJob with the same name reports Created = true")
	}
	if again.Job.Name != spec.Name || again.Job.State.Final() {
		t.Errorf("second CreateJob returned %s %s, want the running job", again.Job.Name, again.Job.State)
	}
}

func (h Harness) testList(t *testing.T) {
	eng, ref := h.setup(t)
	h.create(t, eng, engine.JobSpec{Name: "conformance-a", ArtifactRef: ref, Command: h.Exit(0), Labels: map[string]string{"project": "p1", "spider": "s1"}})
	h.create(t, eng, engine.JobSpec{Name: "conformance-b", ArtifactRef: ref, Command: h.Exit(0), Labels: map[string]string{"project": "p1", "spider": "s2"}})
	h.create(t, eng, engine.JobSpec{Name: "conformance-c", ArtifactRef: ref, Command: h.Exit(0), Labels: map[string]string{"project": "p2"}})
	cases := []struct {
		selector map[string]string
		want     []string
	}{
		{map[string]string{"project": "p1"}, []string{"conformance-a", "conformance-b"}},
		{map[string]string{"project": "p1", "spider": "s2"}, []string{"conformance-b"}},
		{map[string]string{"project": "p3"}, []string{}},
	}
	for _, c := range cases {
		resp, err := eng.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: c.selector})
		if err != nil {
			t.Fatalf("ListJobs %v: %v", c.selector, err)
		}
		names := []string{}
		for _, j := range resp.Jobs {
			names = append(names, j.Name)
		}
		slices.Sort(names)
		if diff := cmp.Diff(c.want, names); diff != "" {
			t.Errorf("ListJobs %v mismatch (-want +got):\n%s", c.selector, diff)
		}
	}
}

func (h Harness) testStop(t *testing.T) {
	eng, ref := h.setup(t)
	h.create(t, eng, engine.JobSpec{Name: "conformance-stop", ArtifactRef: ref, Command: h.Sleep})
	if _, err := eng.StopJob(t.Context(), &engine.StopJobRequest{Name: "conformance-stop", Grace: 2 * time.Second}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	got := h.waitFinal(t, eng, "conformance-stop")
	if got.State != engine.JobStopped {
		t.Errorf("state = %s (%s), want STOPPED", got.State, got.Reason)
	}
	again, err := eng.StopJob(t.Context(), &engine.StopJobRequest{Name: "conformance-stop"})
	if err != nil {
		t.Fatalf("StopJob of a stopped job: %v", err)
	}
	if again.Job.State != engine.JobStopped {
		t.Errorf("state after a second stop = %s, want STOPPED", again.Job.State)
	}
}

func (h Harness) testDelete(t *testing.T) {
	eng, ref := h.setup(t)
	h.create(t, eng, engine.JobSpec{Name: "conformance-delete", ArtifactRef: ref, Command: h.Sleep})
	if _, err := eng.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "conformance-delete"}); err != nil {
		t.Fatalf("DeleteJob of a running job: %v", err)
	}
	if _, err := eng.GetJob(t.Context(), &engine.GetJobRequest{Name: "conformance-delete"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
}

func (h Harness) testUnknown(t *testing.T) {
	eng := h.New(t)
	if _, err := eng.GetJob(t.Context(), &engine.GetJobRequest{Name: "conformance-none"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob: error = %v, want ErrNotFound", err)
	}
	if _, err := eng.StopJob(t.Context(), &engine.StopJobRequest{Name: "conformance-none"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("StopJob: error = %v, want ErrNotFound", err)
	}
	if _, err := eng.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "conformance-none"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("DeleteJob: error = %v, want ErrNotFound", err)
	}
}
