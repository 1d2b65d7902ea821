package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestJobFinalStates(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	tests := []struct {
		name     string
		script   string
		state    engine.JobState
		reason   string
		exitCode int32
	}{
		{"succeeds", "exit 0", engine.JobSucceeded, "exited with code 0", 0},
		{"fails", "exit 3", engine.JobFailed, "exited with code 3", 3},
		{"killed", "kill -9 $$", engine.JobFailed, "killed by signal 9", 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			created, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellJob("job-"+tt.name, t.TempDir(), tt.script, nil)})
			if err != nil {
				t.Fatalf("CreateJob: %v", err)
			}
			if !created.Created || created.Job.StartedAt.IsZero() {
				t.Errorf("CreateJob = %+v, want a new started job", created)
			}
			got := waitFinal(t, e, "job-"+tt.name)
			if got.State != tt.state || got.Reason != tt.reason || got.ExitCode != tt.exitCode {
				t.Errorf("job = %s %q code %d, want %s %q code %d", got.State, got.Reason, got.ExitCode, tt.state, tt.reason, tt.exitCode)
			}
			if got.FinishedAt.Before(got.StartedAt) {
				t.Errorf("finished at %v, before its start at %v", got.FinishedAt, got.StartedAt)
			}
		})
	}
}

func TestJobMaxRuntime(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	spec := shellJob("slow", t.TempDir(), "sleep 30", nil)
	spec.MaxRuntime = 300 * time.Millisecond
	if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec}); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	got := waitFinal(t, e, "slow")
	if got.State != engine.JobFailed || got.Reason != "ran longer than its maximum runtime of 300ms" {
		t.Errorf("job = %s %q, want FAILED for running too long", got.State, got.Reason)
	}
}

func TestStopJob(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	tests := []struct {
		name   string
		script string
	}{
		{"exits on SIGTERM", "sleep 30"},
		// Ignored signals stay ignored across exec, so sleep ignores SIGTERM too.
		{"needs SIGKILL", `trap "" TERM; sleep 30`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := strings.ReplaceAll(tt.name, " ", "-")
			if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellJob(name, t.TempDir(), tt.script, nil)}); err != nil {
				t.Fatalf("CreateJob: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // lets sh install its trap
			start := time.Now()
			resp, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: name, Grace: 300 * time.Millisecond})
			if err != nil {
				t.Fatalf("StopJob: %v", err)
			}
			if resp.Job.State != engine.JobStopped {
				t.Errorf("state = %s (%s), want STOPPED", resp.Job.State, resp.Job.Reason)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("stop took %v", took)
			}
			again, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: name})
			if err != nil {
				t.Fatalf("second StopJob: %v", err)
			}
			if diff := cmp.Diff(resp.Job, again.Job); diff != "" {
				t.Errorf("second stop changed the job (-first +second):\n%s", diff)
			}
		})
	}
}

func TestCreateJobIdempotent(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	spec := shellJob("same", t.TempDir(), "sleep 30", map[string]string{"a": "1"})
	first, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("first CreateJob: %v", err)
	}
	spec.Command = []string{"sh", "-c", "exit 1"}
	second, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("second CreateJob: %v", err)
	}
	if second.Created {
		t.Error("second CreateJob reports Created = true")
	}
	if diff := cmp.Diff(first.Job, second.Job); diff != "" {
		t.Errorf("second CreateJob returned another job (-first +second):\n%s", diff)
	}
}

func TestListJobsByLabels(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	labels := map[string]map[string]string{
		"a": {"project": "p1", "spider": "s1"},
		"b": {"project": "p1", "spider": "s2"},
		"c": {"project": "p2"},
	}
	for name, l := range labels {
		if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellJob(name, dir, "exit 0", l)}); err != nil {
			t.Fatalf("CreateJob %s: %v", name, err)
		}
	}
	tests := []struct {
		name     string
		selector map[string]string
		want     []string
	}{
		{"empty selects all", nil, []string{"a", "b", "c"}},
		{"one label", map[string]string{"project": "p1"}, []string{"a", "b"}},
		{"two labels", map[string]string{"project": "p1", "spider": "s2"}, []string{"b"}},
		{"no match", map[string]string{"project": "p3"}, []string{}},
		{"value differs", map[string]string{"spider": "s3"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: tt.selector})
			if err != nil {
				t.Fatalf("ListJobs: %v", err)
			}
			names := []string{}
			for _, j := range resp.Jobs {
				names = append(names, j.Name)
				if diff := cmp.Diff(labels[j.Name], j.Labels); diff != "" {
					t.Errorf("labels of %s (-want +got):\n%s", j.Name, diff)
				}
			}
			slices.Sort(names)
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("jobs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobSideScriptAndEnvironment(t *testing.T) {
	t.Parallel()
	e, dataDir := newTestEngine(t)
	spec := engine.JobSpec{
		Name:        "crawl",
		ArtifactRef: t.TempDir(),
		Command:     []string{"estela-crawl", "spider1", "-a", "x=1"},
		Env:         map[string]string{"JOB_INFO": `{"spider":"spider1"}`},
	}
	if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec}); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if got := waitFinal(t, e, "crawl"); got.State != engine.JobSucceeded {
		t.Fatalf("job = %s %q, want SUCCEEDED", got.State, got.Reason)
	}
	log, err := os.ReadFile(filepath.Join(dataDir, "jobs", "crawl.log"))
	if err != nil {
		t.Fatalf("read job log: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 3 {
		t.Fatalf("log has %d lines, want 3:\n%s", len(lines), log)
	}
	if lines[0] != "crawl spider1 -a x=1" {
		t.Errorf("arguments line = %q", lines[0])
	}
	allowed := []string{"HOME", "JOB_INFO", "LANG", "LC_CTYPE", "PATH", "TMPDIR"}
	for _, key := range strings.Split(strings.TrimPrefix(lines[1], "env "), ",") {
		if !slices.Contains(allowed, key) {
			t.Errorf("job environment contains %s, beyond the base set and the spec", key)
		}
	}
	if lines[2] != `JOB_INFO={"spider":"spider1"}` {
		t.Errorf("JOB_INFO line = %q", lines[2])
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	e, dataDir := newTestEngine(t)
	if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellJob("doomed", t.TempDir(), "echo hi; sleep 30", nil)}); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "doomed"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "doomed"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
	for _, file := range []string{"doomed.json", "doomed.log"} {
		if _, err := os.Stat(filepath.Join(dataDir, "jobs", file)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", file, err)
		}
	}
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "doomed"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second DeleteJob: error = %v, want ErrNotFound", err)
	}
}

func TestUnknownJobNotFound(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "nope"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob: error = %v, want ErrNotFound", err)
	}
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "nope"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("StopJob: error = %v, want ErrNotFound", err)
	}
}

func TestCreateJobRejects(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		spec    engine.JobSpec
		wantErr string
	}{
		{"bad name", shellJob("../x", dir, "true", nil), "invalid job name"},
		{"empty name", shellJob("", dir, "true", nil), "invalid job name"},
		{"no command", engine.JobSpec{Name: "j1", ArtifactRef: dir}, "has no command"},
		{"missing artifact", shellJob("j2", filepath.Join(dir, "missing"), "true", nil), "is not a directory"},
		{"unknown program", engine.JobSpec{Name: "j3", ArtifactRef: dir, Command: []string{"no-such-program-estela"}}, "cannot start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: tt.spec})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err.Error(), tt.wantErr)
			}
		})
	}
}

func TestCallsBeforeConfigureAreUnavailable(t *testing.T) {
	t.Parallel()
	e := newEngine(hclog.NewNullLogger())
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "x"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetJob: error = %v, want ErrUnavailable", err)
	}
	if _, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellJob("x", t.TempDir(), "true", nil)}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("CreateJob: error = %v, want ErrUnavailable", err)
	}
	if _, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("ListJobs: error = %v, want ErrUnavailable", err)
	}
}
