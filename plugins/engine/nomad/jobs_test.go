package main

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestCreateJobIdempotent(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)

	first := createJob(t, e, shellSpec("job-once", "sleep 60", nil))
	second := createJob(t, e, shellSpec("job-once", "exit 1", nil))

	if !first.Created || first.Job.State != engine.JobPending {
		t.Errorf("first CreateJob = %+v, want a created PENDING job", first)
	}
	if second.Created || second.Job.State != engine.JobRunning {
		t.Errorf("second CreateJob = %+v, want the existing RUNNING job with Created = false", second)
	}
	if len(a.registers) != 1 {
		t.Errorf("registers = %d, want 1", len(a.registers))
	}
}

func TestCreateJobRegisterRace(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	// Another plugin process registers the job between this one's read and
	// its register, which the enforced index 0 rejects.
	other := newTestEngine(t, a, nil)
	job, err := nomadJob(&settings{Datacenters: []string{"dc1"}, RunAsUser: "1000", MHzPerCore: 2000}, shellSpec("job-race", "sleep 60", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, client, _ := other.current()
	if _, _, err := client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register: %v", err)
	}

	got, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("job-race", "sleep 60", nil)})

	if err != nil || got.Created {
		t.Errorf("CreateJob = %+v, %v; want the existing job", got, err)
	}
}

func TestCreateJobNameTakenByOtherJob(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	_, client, _ := e.current()
	foreign := &api.Job{ID: new("postgres"), Name: new("postgres"), Type: new("service"),
		TaskGroups: []*api.TaskGroup{{Name: new("db"), Tasks: []*api.Task{{Name: "job", Driver: "docker", Config: map[string]any{"image": "postgres"}, Resources: &api.Resources{}}}}}}
	if _, _, err := client.Jobs().Register(foreign, nil); err != nil {
		t.Fatalf("register: %v", err)
	}

	_, createErr := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("postgres", "sleep 60", nil)})
	_, getErr := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "postgres"})
	_, stopErr := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "postgres"})
	_, deleteErr := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "postgres"})

	if !errors.Is(createErr, errdefs.ErrConflict) {
		t.Errorf("CreateJob error = %v, want ErrConflict", createErr)
	}
	for name, err := range map[string]error{"GetJob": getErr, "StopJob": stopErr, "DeleteJob": deleteErr} {
		if !isNotFoundErr(err) || strings.Contains(err.Error(), "registered by this plugin") {
			t.Errorf("%s of a foreign job: error = %v, want a plain ErrNotFound", name, err)
		}
	}
	if len(a.deregisters) != 0 {
		t.Errorf("deregisters = %d, want the foreign job left alone", len(a.deregisters))
	}
}

func TestJobStates(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	missing := shellSpec("job-pull", "exit 0", nil)
	missing.ArtifactRef = "registry.example.com/missing:1"
	cases := []struct {
		spec       engine.JobSpec
		want       engine.JobState
		wantCode   int32
		wantReason string
	}{
		{shellSpec("job-ok", "exit 0", nil), engine.JobSucceeded, 0, ""},
		{shellSpec("job-fail", "exit 3", nil), engine.JobFailed, 3, "exited with code 3"},
		{shellSpec("job-oom", "oom", nil), engine.JobFailed, 137, reasonOOM},
		{shellSpec("job-run", "sleep 60", nil), engine.JobRunning, 0, ""},
		{missing, engine.JobFailed, 0, "cannot pull the image: Failed to pull `registry.example.com/missing:1`: Error response from daemon: manifest unknown"},
	}
	for _, c := range cases {
		createJob(t, e, c.spec)
		got := getJob(t, e, c.spec.Name)
		if got.State != c.want || got.ExitCode != c.wantCode || got.Reason != c.wantReason {
			t.Errorf("%s: GetJob = %s code %d %q, want %s code %d %q", c.spec.Name, got.State, got.ExitCode, got.Reason, c.want, c.wantCode, c.wantReason)
		}
		if got.State.Final() && got.FinishedAt.IsZero() {
			t.Errorf("%s: finished job has no FinishedAt", c.spec.Name)
		}
	}
}

func TestJobPending(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	a.holdPending = true
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-wait", "exit 0", map[string]string{"k": "v"}))

	got := getJob(t, e, "job-wait")

	if got.State != engine.JobPending || got.Labels["k"] != "v" {
		t.Errorf("GetJob = %+v, want PENDING with its labels", got)
	}
}

func TestUnknownJob(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	ctx := t.Context()

	for _, name := range []string{"job-none", "../bad"} {
		if _, err := e.GetJob(ctx, &engine.GetJobRequest{Name: name}); !isNotFoundErr(err) {
			t.Errorf("GetJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.StopJob(ctx, &engine.StopJobRequest{Name: name}); !isNotFoundErr(err) {
			t.Errorf("StopJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: name}); !isNotFoundErr(err) {
			t.Errorf("DeleteJob %s: error = %v, want ErrNotFound", name, err)
		}
		if err := e.JobLogs(ctx, &engine.JobLogsRequest{Name: name}, &bytes.Buffer{}); !isNotFoundErr(err) {
			t.Errorf("JobLogs %s: error = %v, want ErrNotFound", name, err)
		}
	}
}

func TestStopJob(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-stop", "sleep 60", nil))
	createJob(t, e, shellSpec("job-done", "exit 0", nil))
	ctx := t.Context()

	stopped, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-stop"})
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	done, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-done"})
	if err != nil {
		t.Fatalf("StopJob of a finished job: %v", err)
	}

	if stopped.Job.State.Final() && stopped.Job.State != engine.JobStopped {
		t.Errorf("StopJob = %s, want RUNNING (stopping) or STOPPED", stopped.Job.State)
	}
	if got := getJob(t, e, "job-stop"); got.State != engine.JobStopped || got.Reason != reasonStopped {
		t.Errorf("GetJob after stop = %s %q, want STOPPED %q", got.State, got.Reason, reasonStopped)
	}
	if done.Job.State != engine.JobSucceeded {
		t.Errorf("StopJob of a finished job = %s, want SUCCEEDED unchanged", done.Job.State)
	}
	if len(a.deregisters) != 1 || a.deregisters[0].Path != "/v1/job/job-stop" || a.deregisters[0].Query.Get("purge") != "false" {
		t.Errorf("deregisters = %+v, want one of job-stop with purge=false", a.deregisters)
	}
	again, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-stop"})
	if err != nil || again.Job.State != engine.JobStopped || len(a.deregisters) != 1 {
		t.Errorf("second StopJob = %+v, %v with %d deregisters; want STOPPED and no new call", again, err, len(a.deregisters))
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-del", "sleep 60", nil))
	ctx := t.Context()

	if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "job-del"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}

	if _, err := e.GetJob(ctx, &engine.GetJobRequest{Name: "job-del"}); !isNotFoundErr(err) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
	if len(a.deregisters) != 1 || a.deregisters[0].Query.Get("purge") != "true" {
		t.Errorf("deregisters = %+v, want one with purge=true", a.deregisters)
	}
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	createJob(t, e, shellSpec("job-a", "exit 0", map[string]string{"estela/project": "p1", "estela/spider": "s1"}))
	createJob(t, e, shellSpec("job-b", "sleep 60", map[string]string{"estela/project": "p1", "estela/spider": "s2"}))
	createJob(t, e, shellSpec("job-c", "exit 2", map[string]string{"estela/project": "p2"}))
	cases := []struct {
		selector map[string]string
		want     []string
	}{
		{map[string]string{"estela/project": "p1"}, []string{"job-a SUCCEEDED", "job-b RUNNING"}},
		{map[string]string{"estela/project": "p1", "estela/spider": "s2"}, []string{"job-b RUNNING"}},
		{map[string]string{"estela/project": "p3"}, []string{}},
		{nil, []string{"job-a SUCCEEDED", "job-b RUNNING", "job-c FAILED"}},
	}
	for _, c := range cases {
		resp, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: c.selector})
		if err != nil {
			t.Fatalf("ListJobs %v: %v", c.selector, err)
		}
		got := []string{}
		for _, j := range resp.Jobs {
			got = append(got, j.Name+" "+string(j.State))
		}
		slices.Sort(got)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ListJobs %v mismatch (-want +got):\n%s", c.selector, diff)
		}
	}
}

func TestListJobsCalls(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, nil)
	for _, name := range []string{"job-a", "job-b", "job-c"} {
		createJob(t, e, shellSpec(name, "exit 0", map[string]string{"estela/project": "p1"}))
	}
	list := func(selector map[string]string) []string {
		before := len(a.callLog())
		if _, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: selector}); err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		return a.callLog()[before:]
	}

	all := list(map[string]string{"estela/project": "p1"})
	none := list(map[string]string{"estela/project": "p9"})

	if diff := cmp.Diff([]string{"GET /v1/jobs", "GET /v1/allocations"}, all); diff != "" {
		t.Errorf("ListJobs of 3 jobs calls mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GET /v1/jobs"}, none); diff != "" {
		t.Errorf("ListJobs of no job calls mismatch (-want +got):\n%s", diff)
	}
}

func TestAgentUnreachable(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	e := newEngine(nullLogger())
	resp, err := e.Configure(t.Context(), configureRequest(t, map[string]any{"address": "http://" + addr}))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}

	_, createErr := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("job-x", "exit 0", nil)})
	_, listErr := e.ListJobs(t.Context(), &engine.ListJobsRequest{})

	if resp.HasErrors() || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Path != "address" {
		t.Errorf("diagnostics = %+v, want one warning on address", resp.Diagnostics)
	}
	if !errors.Is(createErr, errdefs.ErrUnavailable) {
		t.Errorf("CreateJob error = %v, want ErrUnavailable", createErr)
	}
	if !errors.Is(listErr, errdefs.ErrUnavailable) {
		t.Errorf("ListJobs error = %v, want ErrUnavailable", listErr)
	}
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEngine(nullLogger())

	_, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "job"})

	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetJob before Configure: error = %v, want ErrUnavailable", err)
	}
}

func TestPrepareArtifactUnsupported(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, newFakeAgent(t), nil)

	_, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})

	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("PrepareArtifact error = %v, want ErrInvalid", err)
	}
}
