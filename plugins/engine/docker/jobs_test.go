package main

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestCreateJobIdempotent(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)

	first := createJob(t, e, shellSpec("job-once", "sleep 60", nil))
	second := createJob(t, e, shellSpec("job-once", "exit 1", nil))

	if !first.Created || first.Job.State != engine.JobRunning {
		t.Errorf("first CreateJob = %+v, want a created RUNNING job", first)
	}
	if second.Created || second.Job.State != engine.JobRunning {
		t.Errorf("second CreateJob = %+v, want the existing RUNNING job with Created = false", second)
	}
	if n := len(d.containers); n != 1 {
		t.Errorf("daemon has %d containers, want 1", n)
	}
}

func TestCreateJobStartsLeftoverContainer(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	d.addContainer("job-left", map[string]string{labelJobName: "job-left"}, container.State{Status: container.StateCreated})

	got := createJob(t, e, shellSpec("job-left", "sleep 60", nil))

	if got.Created || got.Job.State != engine.JobRunning {
		t.Errorf("CreateJob = %+v, want the leftover container started, Created = false", got)
	}
}

func TestCreateJobNameTakenByOtherContainer(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	d.addContainer("postgres", nil, container.State{Status: container.StateRunning})

	_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("postgres", "sleep 60", nil)})

	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("CreateJob error = %v, want ErrConflict", err)
	}
}

func TestCreateJobStartFailure(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)

	got := createJob(t, e, engine.JobSpec{Name: "job-bad", ArtifactRef: testImage, Command: []string{"missing-cmd"}})

	if got.Job.State != engine.JobFailed || !strings.Contains(got.Job.Reason, "executable file not found") {
		t.Errorf("CreateJob = %+v, want FAILED with the start error", got.Job)
	}
	if again := getJob(t, e, "job-bad"); again.State != engine.JobFailed {
		t.Errorf("GetJob state = %s, want FAILED", again.State)
	}
}

func TestCreateJobPullPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pull      string
		onDaemon  bool
		wantPulls int
		wantErr   error
	}{
		{pull: "missing", onDaemon: true, wantPulls: 0},
		{pull: "missing", onDaemon: false, wantPulls: 1},
		{pull: "always", onDaemon: true, wantPulls: 1},
		{pull: "never", onDaemon: false, wantErr: errdefs.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.pull, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			if c.onDaemon {
				d.addImage(testImage)
			}
			e := newTestEngine(t, d, map[string]any{"pull": c.pull})

			_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("job-pull", "sleep 60", nil)})

			if !errors.Is(err, c.wantErr) && (err != nil || c.wantErr != nil) {
				t.Fatalf("CreateJob error = %v, want %v", err, c.wantErr)
			}
			if len(d.pulls) != c.wantPulls {
				t.Errorf("pulls = %d, want %d", len(d.pulls), c.wantPulls)
			}
		})
	}
}

func TestCreateJobPullNotFound(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.pullable = map[string]bool{}
	e := newTestEngine(t, d, nil)

	_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("job-pull", "sleep 60", nil)})

	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("CreateJob error = %v, want ErrInvalid for an image the registry does not have", err)
	}
}

func TestJobStates(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	cases := []struct {
		name, script string
		want         engine.JobState
		wantCode     int32
		wantReason   string
	}{
		{"job-ok", "exit 0", engine.JobSucceeded, 0, ""},
		{"job-fail", "exit 3", engine.JobFailed, 3, "exited with code 3"},
		{"job-oom", "oom", engine.JobFailed, 137, reasonOOM},
		{"job-run", "sleep 60", engine.JobRunning, 0, ""},
	}
	for _, c := range cases {
		createJob(t, e, shellSpec(c.name, c.script, nil))
		got := getJob(t, e, c.name)
		if got.State != c.want || got.ExitCode != c.wantCode || got.Reason != c.wantReason {
			t.Errorf("%s: GetJob = %s code %d %q, want %s code %d %q", c.name, got.State, got.ExitCode, got.Reason, c.want, c.wantCode, c.wantReason)
		}
		if got.State.Final() && got.FinishedAt.IsZero() {
			t.Errorf("%s: finished job has no FinishedAt", c.name)
		}
	}
}

func TestUnknownJob(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	e := newTestEngine(t, d, nil)
	// A container the plugin did not create, and one whose ID starts with
	// the name looked up: neither is a job.
	d.addContainer("postgres", nil, container.State{Status: container.StateRunning})
	prefixOf := d.addContainer("job-x", map[string]string{labelJobName: "job-x"}, container.State{Status: container.StateRunning})
	ctx := t.Context()

	for _, name := range []string{"job-none", "postgres", prefixOf.ID[:12], "../bad"} {
		if _, err := e.GetJob(ctx, &engine.GetJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.StopJob(ctx, &engine.StopJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("StopJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("DeleteJob %s: error = %v, want ErrNotFound", name, err)
		}
		if err := e.JobLogs(ctx, &engine.JobLogsRequest{Name: name}, &bytes.Buffer{}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("JobLogs %s: error = %v, want ErrNotFound", name, err)
		}
	}
	if c := d.container("postgres"); c == nil || c.State.Status != container.StateRunning {
		t.Error("the foreign container was stopped or removed")
	}
}

func TestStopJob(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	createJob(t, e, shellSpec("job-stop", "sleep 60", nil))
	createJob(t, e, shellSpec("job-done", "exit 0", nil))
	ctx := t.Context()

	stopped, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-stop", Grace: 1500 * time.Millisecond})
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	again, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-stop"})
	if err != nil {
		t.Fatalf("second StopJob: %v", err)
	}
	done, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-done"})
	if err != nil {
		t.Fatalf("StopJob of a finished job: %v", err)
	}

	if stopped.Job.State != engine.JobStopped || stopped.Job.Reason != reasonStopped {
		t.Errorf("StopJob = %s %q, want STOPPED %q", stopped.Job.State, stopped.Job.Reason, reasonStopped)
	}
	if again.Job.State != engine.JobStopped {
		t.Errorf("second StopJob state = %s, want STOPPED", again.Job.State)
	}
	if done.Job.State != engine.JobSucceeded {
		t.Errorf("StopJob of a finished job = %s, want SUCCEEDED unchanged", done.Job.State)
	}
	if len(d.stops) != 1 || d.stops[0].Get("t") != "2" {
		t.Errorf("stop requests = %v, want one with t=2 (1.5s rounded up)", d.stops)
	}
	if got := getJob(t, e, "job-stop"); got.State != engine.JobStopped {
		t.Errorf("GetJob after stop = %s, want STOPPED", got.State)
	}
	// A second plugin process reads the stop too, because the record is on the daemon.
	other := newTestEngine(t, d, nil)
	if got := getJob(t, other, "job-stop"); got.State != engine.JobStopped {
		t.Errorf("GetJob from another plugin = %s, want STOPPED", got.State)
	}
}

func TestStopJobDefaultGrace(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, map[string]any{"stop_grace": "7s"})
	createJob(t, e, shellSpec("job-stop", "sleep 60", nil))

	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "job-stop"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}

	if len(d.stops) != 1 || d.stops[0].Get("t") != "7" {
		t.Errorf("stop requests = %v, want one with t=7 from stop_grace", d.stops)
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	createJob(t, e, shellSpec("job-del", "sleep 60", nil))
	ctx := t.Context()
	if _, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "job-del"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}

	if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "job-del"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}

	if _, err := e.GetJob(ctx, &engine.GetJobRequest{Name: "job-del"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
	if len(d.volumes) != 0 {
		t.Errorf("volumes after delete = %v, want the stop record removed", d.volumes)
	}
	if len(d.removes) != 1 || d.removes[0].Get("force") != "1" {
		t.Errorf("remove requests = %v, want one with force=1", d.removes)
	}
	recreated := createJob(t, e, shellSpec("job-del", "sleep 60", nil))
	if !recreated.Created || recreated.Job.State != engine.JobRunning {
		t.Errorf("CreateJob after delete = %+v, want a new RUNNING job", recreated)
	}
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	createJob(t, e, shellSpec("job-a", "exit 0", map[string]string{"project": "p1", "spider": "s1"}))
	createJob(t, e, shellSpec("job-b", "sleep 60", map[string]string{"project": "p1", "spider": "s2"}))
	createJob(t, e, shellSpec("job-c", "exit 2", map[string]string{"project": "p2"}))
	d.addContainer("postgres", map[string]string{"project": "p1"}, container.State{Status: container.StateRunning})
	cases := []struct {
		selector map[string]string
		want     []string
	}{
		{map[string]string{"project": "p1"}, []string{"job-a SUCCEEDED", "job-b RUNNING"}},
		{map[string]string{"project": "p1", "spider": "s2"}, []string{"job-b RUNNING"}},
		{map[string]string{"project": "p3"}, []string{}},
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

func TestListJobsQuery(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	e := newTestEngine(t, d, nil)
	before := len(d.lists) // the search for jobs with a maximum runtime

	if _, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: map[string]string{"estela/project": "p1"}}); err != nil {
		t.Fatalf("ListJobs: %v", err)
	}

	if len(d.lists) != before+1 {
		t.Fatalf("container lists = %d, want 1", len(d.lists)-before)
	}
	q := d.lists[before]
	if q.Get("all") != "1" {
		t.Errorf("all = %q, want 1", q.Get("all"))
	}
	args, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		t.Fatalf("decode filters %q: %v", q.Get("filters"), err)
	}
	got := args.Get("label")
	slices.Sort(got)
	if diff := cmp.Diff([]string{"estela/project=p1", "io.estela-go.job-name"}, got); diff != "" {
		t.Errorf("label filters mismatch (-want +got):\n%s", diff)
	}
}

func TestListJobsInspectsOnlyChanges(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	createJob(t, e, shellSpec("job-a", "exit 0", nil))
	createJob(t, e, shellSpec("job-b", "sleep 60", nil))
	list := func() []string {
		before := len(d.callLog())
		if _, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{}); err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		return d.callLog()[before:]
	}

	first := list()
	second := list()
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "job-b"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	third := list()

	if n := countPrefix(first, "GET /containers/0"); n != 2 {
		t.Errorf("first ListJobs inspected %d containers, want 2: %v", n, first)
	}
	wantSecond := []string{"GET /containers/json", "GET /volumes"}
	if diff := cmp.Diff(wantSecond, second); diff != "" {
		t.Errorf("second ListJobs calls mismatch (-want +got):\n%s", diff)
	}
	if n := countPrefix(third, "GET /containers/0"); n != 1 {
		t.Errorf("ListJobs after a stop inspected %d containers, want 1: %v", n, third)
	}
}

func countPrefix(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func TestJobLogs(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	createJob(t, e, shellSpec("job-logs", "exit 0", nil))
	cases := []struct {
		tail int64
		want string
	}{
		{0, "out: job-logs\nerr: job-logs\n"},
		{1, "err: job-logs\n"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "job-logs", TailLines: c.tail}, &out); err != nil {
			t.Fatalf("JobLogs tail %d: %v", c.tail, err)
		}
		if diff := cmp.Diff(c.want, out.String()); diff != "" {
			t.Errorf("JobLogs tail %d mismatch (-want +got):\n%s", c.tail, diff)
		}
	}
}

func TestDaemonUnreachable(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	e := newEngine(nullLogger())
	resp, err := e.Configure(t.Context(), configureRequest(t, map[string]any{"host": "tcp://" + addr}))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}

	_, createErr := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: shellSpec("job-x", "exit 0", nil)})
	_, listErr := e.ListJobs(t.Context(), &engine.ListJobsRequest{})

	if resp.HasErrors() || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Path != "host" {
		t.Errorf("diagnostics = %+v, want one warning on host", resp.Diagnostics)
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
	d := newFakeDaemon(t)
	e := newTestEngine(t, d, nil)

	_, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})

	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "BuildImage") {
		t.Errorf("PrepareArtifact error = %v, want ErrInvalid naming BuildImage", err)
	}
}

func TestMaxRuntime(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	spec := shellSpec("job-slow", "sleep 60", nil)
	spec.MaxRuntime = 100 * time.Millisecond

	createJob(t, e, spec)

	var got engine.JobStatus
	waitFor(t, "the job to be stopped at its maximum runtime", func() bool {
		got = getJob(t, e, "job-slow")
		return got.State.Final()
	})
	if got.State != engine.JobFailed || got.Reason != "ran longer than its maximum runtime of 100ms" {
		t.Errorf("GetJob = %s %q, want FAILED for the maximum runtime", got.State, got.Reason)
	}
	if c := d.container("job-slow"); c.Create.Labels[labelMaxRuntime] != "100ms" {
		t.Errorf("labels = %v, want %s=100ms", c.Create.Labels, labelMaxRuntime)
	}
}

func TestMaxRuntimeAfterRestart(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	started := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	d.addContainer("job-old", map[string]string{labelJobName: "job-old", labelMaxRuntime: "500ms"},
		container.State{Status: container.StateRunning, Running: true, StartedAt: started})
	d.addContainer("job-free", map[string]string{labelJobName: "job-free"},
		container.State{Status: container.StateRunning, Running: true, StartedAt: started})

	e := newTestEngine(t, d, nil)

	waitFor(t, "the adopted job to be stopped", func() bool { return getJob(t, e, "job-old").State.Final() })
	if got := getJob(t, e, "job-old"); got.State != engine.JobFailed || !strings.Contains(got.Reason, "maximum runtime of 500ms") {
		t.Errorf("GetJob job-old = %s %q, want FAILED for the maximum runtime", got.State, got.Reason)
	}
	if got := getJob(t, e, "job-free"); got.State != engine.JobRunning {
		t.Errorf("GetJob job-free = %s, want RUNNING: it has no maximum runtime", got.State)
	}
}

func TestDeleteJobCancelsDeadline(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)
	spec := shellSpec("job-del", "sleep 60", nil)
	spec.MaxRuntime = time.Hour
	createJob(t, e, spec)

	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "job-del"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}

	e.deadlines.mu.Lock()
	defer e.deadlines.mu.Unlock()
	if len(e.deadlines.timers) != 0 {
		t.Errorf("timers after delete = %d, want 0", len(e.deadlines.timers))
	}
}
