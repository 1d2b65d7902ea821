package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		settings  string
		wantPaths []string
	}{
		{"empty body", ``, nil},
		{"every setting", `{"job_duration":"1.5s","cpu_millis":4000,"memory_bytes":1024}`, nil},
		{"invalid duration", `{"job_duration":"soon"}`, []string{"job_duration"}},
		{"negative duration", `{"job_duration":"-1s"}`, []string{"job_duration"}},
		{"negative resources", `{"cpu_millis":-1,"memory_bytes":-1}`, []string{"cpu_millis", "memory_bytes"}},
		{"unknown setting", `{"job_durations":"1s"}`, []string{""}},
		{"not an object", `[1]`, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newConfigured(t, `{"job_duration":"1h"}`)
			resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(tt.settings)})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			var paths []string
			for _, d := range resp.Diagnostics {
				paths = append(paths, d.Path)
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("diagnostic paths mismatch (-want +got):\n%s", diff)
			}
			if resp.HasErrors() && e.settings.JobDuration != time.Hour {
				t.Errorf("rejected settings replaced job_duration: %s", e.settings.JobDuration)
			}
		})
	}
}

func TestPrepareArtifactRejectsNonScrapyZip(t *testing.T) {
	t.Parallel()
	e := newConfigured(t, `{}`)
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	if _, err := w.Create("README.md"); err != nil {
		t.Fatalf("create zip entry: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	_, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "p", DeployID: 1, Archive: &buf})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "scrapy.cfg") {
		t.Errorf("error = %v, want ErrInvalid naming scrapy.cfg", err)
	}
}

func TestJobDurationRunsJobByTimer(t *testing.T) {
	t.Parallel()
	e := newConfigured(t, `{"job_duration":"200ms"}`)
	created := createJob(t, e, engine.JobSpec{Name: "timed", Command: []string{"estela-crawl", "spider"}})
	if created.State != engine.JobRunning {
		t.Errorf("state after CreateJob = %s, want RUNNING", created.State)
	}
	got := waitFinal(t, e, "timed")
	if got.State != engine.JobSucceeded || got.ExitCode != 0 {
		t.Errorf("final state = %s code %d, want SUCCEEDED code 0", got.State, got.ExitCode)
	}
	if ran := got.FinishedAt.Sub(got.StartedAt); ran < 200*time.Millisecond {
		t.Errorf("job ran %s, want at least 200ms", ran)
	}
}

func TestCommandsSetOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		command    []string
		maxRuntime time.Duration
		wantState  engine.JobState
		wantCode   int32
		wantReason string
	}{
		{"any command", []string{"estela-crawl"}, 0, engine.JobSucceeded, 0, "exited with code 0"},
		{"no command", nil, 0, engine.JobSucceeded, 0, "exited with code 0"},
		{"exit code", []string{"noop-exit", "4"}, 0, engine.JobFailed, 4, "exited with code 4"},
		{"exit after duration", []string{"noop-exit", "0", "50ms"}, 0, engine.JobSucceeded, 0, "exited with code 0"},
		{"sleep with duration", []string{"noop-sleep", "50ms"}, 0, engine.JobSucceeded, 0, "exited with code 0"},
		{"sleep past max runtime", []string{"noop-sleep"}, 50 * time.Millisecond, engine.JobFailed, 0, "max runtime 50ms exceeded"},
		{"max runtime longer than job", []string{"noop-sleep", "10ms"}, time.Minute, engine.JobSucceeded, 0, "exited with code 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newConfigured(t, `{}`)
			createJob(t, e, engine.JobSpec{Name: "j", Command: tt.command, MaxRuntime: tt.maxRuntime})
			got := waitFinal(t, e, "j")
			if got.State != tt.wantState {
				t.Errorf("state = %s, want %s", got.State, tt.wantState)
			}
			if got.ExitCode != tt.wantCode {
				t.Errorf("exit code = %d, want %d", got.ExitCode, tt.wantCode)
			}
			if got.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", got.Reason, tt.wantReason)
			}
		})
	}
}

func TestInvalidCommandsRejected(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"noop-exit"},
		{"noop-exit", "three"},
		{"noop-exit", "1", "soon"},
		{"noop-exit", "1", "1s", "extra"},
		{"noop-sleep", "-1s"},
		{"noop-sleep", "1s", "2s"},
	}
	e := newConfigured(t, `{}`)
	for _, command := range commands {
		_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: engine.JobSpec{Name: "bad", Command: command}})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("CreateJob with %q: error = %v, want ErrInvalid", command, err)
		}
	}
	if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("CreateJob without a name: error = %v, want ErrInvalid", err)
	}
}

func TestCapacityCountsRunningJobs(t *testing.T) {
	t.Parallel()
	e := newConfigured(t, `{"cpu_millis":8000,"memory_bytes":4096}`)
	resources := engine.Resources{CPURequestMillis: 500, MemoryRequestBytes: 1024}
	createJob(t, e, engine.JobSpec{Name: "a", Command: []string{"noop-sleep"}, Resources: resources})
	createJob(t, e, engine.JobSpec{Name: "b", Command: []string{"noop-sleep"}, Resources: resources})
	createJob(t, e, engine.JobSpec{Name: "done", Resources: resources})
	check := func(wantCPU, wantMemory int64) {
		t.Helper()
		got, err := e.Capacity(t.Context(), &engine.CapacityRequest{})
		if err != nil {
			t.Fatalf("Capacity: %v", err)
		}
		want := &engine.CapacityResponse{Nodes: 1, AllocatableCPUMillis: 8000, AllocatableMemoryBytes: 4096, RequestedCPUMillis: wantCPU, RequestedMemoryBytes: wantMemory}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Capacity mismatch (-want +got):\n%s", diff)
		}
	}
	check(1000, 2048)
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "a"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	check(500, 1024)
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "b"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	check(0, 0)
}

func TestStoppedJobIgnoresItsTimer(t *testing.T) {
	t.Parallel()
	e := newConfigured(t, `{"job_duration":"30ms"}`)
	createJob(t, e, engine.JobSpec{Name: "j"})
	stopped, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "j"})
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	time.Sleep(60 * time.Millisecond)
	if diff := cmp.Diff(stopped.Job, getJob(t, e, "j")); diff != "" {
		t.Errorf("job changed after its stop (-stopped +now):\n%s", diff)
	}
}

func TestWatchSendsEveryChangeInOrder(t *testing.T) {
	t.Parallel()
	e := newConfigured(t, `{}`)
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- e.WatchJobs(ctx, &engine.WatchJobsRequest{}, func(ev engine.JobEvent) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %s %t", ev.Job.Name, ev.Job.State, ev.Deleted))
			return nil
		})
	}()
	waitWatchers(t, e, 1)
	createJob(t, e, engine.JobSpec{Name: "a", Command: []string{"noop-sleep"}})
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "a"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "a"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	want := []string{"a RUNNING false", "a STOPPED false", "a STOPPED true"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchJobs after cancel: error = %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	waitWatchers(t, e, 0)
}

// waitWatchers waits until e has n watches registered, for at most 5 seconds.
func waitWatchers(t *testing.T, e *noopEngine, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.mu.Lock()
		got := len(e.watchers)
		e.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watches registered after 5s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// createMany creates n jobs named job-0 to job-<n-1> on e, with a label
// "parity" of "even" or "odd"; every tenth job runs until stopped.
func createMany(t testing.TB, e engine.Engine, n int) {
	t.Helper()
	for i := range n {
		spec := engine.JobSpec{
			Name:   fmt.Sprintf("job-%d", i),
			Labels: map[string]string{"project": "bench", "parity": []string{"even", "odd"}[i%2]},
		}
		if i%10 == 0 {
			spec.Command = []string{"noop-sleep"}
		}
		createJob(t, e, spec)
	}
}

func TestListJobsTenThousand(t *testing.T) {
	t.Parallel()
	impl := newConfigured(t, `{}`)
	createMany(t, impl, 10_000)
	eng := enginetest.Connect(t, impl)

	start := time.Now()
	all, err := eng.ListJobs(t.Context(), &engine.ListJobsRequest{})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	t.Logf("ListJobs of 10,000 jobs over in-process gRPC took %s", time.Since(start))
	if len(all.Jobs) != 10_000 {
		t.Errorf("ListJobs returned %d jobs, want 10000", len(all.Jobs))
	}
	even, err := eng.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: map[string]string{"parity": "even"}})
	if err != nil {
		t.Fatalf("ListJobs by label: %v", err)
	}
	if len(even.Jobs) != 5_000 {
		t.Errorf("ListJobs parity=even returned %d jobs, want 5000", len(even.Jobs))
	}
	running := 0
	for _, j := range all.Jobs {
		if j.State == engine.JobRunning {
			running++
		}
	}
	if running != 1_000 {
		t.Errorf("%d running jobs, want 1000", running)
	}
}

func BenchmarkCreateJob(b *testing.B) {
	e := newConfigured(b, `{}`)
	labels := map[string]string{"project": "bench"}
	i := 0
	for b.Loop() {
		spec := engine.JobSpec{Name: fmt.Sprintf("job-%d", i), Labels: labels}
		if _, err := e.CreateJob(b.Context(), &engine.CreateJobRequest{Spec: spec}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkListJobs10000(b *testing.B) {
	impl := newConfigured(b, `{}`)
	createMany(b, impl, 10_000)
	engines := map[string]engine.Engine{"in memory": impl, "over gRPC": enginetest.Connect(b, impl)}
	for name, eng := range engines {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := eng.ListJobs(b.Context(), &engine.ListJobsRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
