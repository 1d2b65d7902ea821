package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// failingEngine is a test double of an engine whose CreateJob fails with a chosen error, as a
// real engine does when its cluster is unreachable or rejects a job.
type failingEngine struct {
	engine.Engine
	err   error
	calls atomic.Int64
}

func (e *failingEngine) CreateJob(context.Context, *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	e.calls.Add(1)
	return nil, e.err
}

// queuedJob creates a job of a spider that a successful deploy contains.
func queuedJob(t *testing.T, st *store.Store) *store.Job {
	t.Helper()
	ctx := context.Background()
	d := newDeploy(t, st)
	if err := st.SucceedDeploy(ctx, d.DID, "/artifact", []string{"quotes"}); err != nil {
		t.Fatal(err)
	}
	spiders, _, err := st.ListSpiders(ctx, d.ProjectID, "", store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	j := &store.Job{ProjectID: d.ProjectID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestDispatchWaitsForUnavailableEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	eng := &failingEngine{err: errdefs.Unavailable("the engine plugin is restarting")}
	svc := newService(t, st, eng, dispatch.ImageSettings{})

	for i := 0; i < 5; i++ {
		if err := svc.DispatchJob(ctx, j.JID); !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("dispatch %d = %v, want an unavailable error so the queue retries", i+1, err)
		}
	}
	got, err := st.JobByID(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobInQueue || got.DispatchAttempts != 0 || eng.calls.Load() != 5 {
		t.Errorf("job after 5 launches on an unavailable engine: %s, %d attempts, %d calls; want IN_QUEUE, 0 attempts, 5 calls",
			got.Status, got.DispatchAttempts, eng.calls.Load())
	}
}

func TestDispatchGivesUpOnFailingEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	svc := newService(t, st, &failingEngine{err: errors.New("disk full")}, dispatch.ImageSettings{})

	for i := 0; i < 3; i++ {
		_ = svc.DispatchJob(ctx, j.JID)
	}
	got, _ := st.JobByID(ctx, j.JID)
	if got.Status != store.JobError || got.ErrorReason == "" {
		t.Errorf("job after 3 failed launches: %s (%q), want ERROR with the reason", got.Status, got.ErrorReason)
	}
}

func TestDispatchRejectedJobFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	svc := newService(t, st, &failingEngine{err: errdefs.Invalid("image name is invalid")}, dispatch.ImageSettings{})

	if err := svc.DispatchJob(ctx, j.JID); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	got, _ := st.JobByID(ctx, j.JID)
	if got.Status != store.JobError || got.ErrorReason != "the engine rejected the job: image name is invalid" {
		t.Errorf("rejected job: %s (%q)", got.Status, got.ErrorReason)
	}
}

// recordingEngine is a test double of an engine that accepts every job and keeps its spec.
type recordingEngine struct {
	engine.Engine
	mu    sync.Mutex
	specs []engine.JobSpec
}

func (e *recordingEngine) CreateJob(_ context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.specs = append(e.specs, req.Spec)
	return &engine.CreateJobResponse{Job: engine.JobStatus{Name: req.Spec.Name, State: engine.JobRunning}, Created: true}, nil
}

func TestDispatchAddsProxyCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	provider := &store.ProxyProvider{Name: "residential", Username: "u", Password: "p4ss", Host: "proxy.example", Port: "8080"}
	if err := st.CreateProxyProvider(ctx, provider); err != nil {
		t.Fatal(err)
	}
	j := queuedJob(t, st)
	if err := st.CreateEnvVar(ctx, &store.EnvVar{JobID: &j.JID, Name: "ESTELA_PROXY_NAME", Value: "residential"}); err != nil {
		t.Fatal(err)
	}
	eng := &recordingEngine{}
	svc := newService(t, st, eng, dispatch.ImageSettings{})

	if err := svc.DispatchJob(ctx, j.JID); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	if len(eng.specs) != 1 {
		t.Fatalf("engine got %d jobs, want 1", len(eng.specs))
	}
	env := eng.specs[0].Env
	want := map[string]string{"ESTELA_PROXIES_ENABLED": "True", "ESTELA_PROXY_USER": "u", "ESTELA_PROXY_PASS": "p4ss",
		"ESTELA_PROXY_URL": "proxy.example", "ESTELA_PROXY_PORT": "8080", "ESTELA_PROXY_NAME": "residential"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("job env %s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.Contains(env["JOB_INFO"], `"ESTELA_PROXIES_ENABLED":"True"`) {
		t.Errorf("JOB_INFO env_vars lack the proxy settings: %s", env["JOB_INFO"])
	}
}

func TestDispatchWithoutDeployFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	deploy, err := st.LatestArtifact(ctx, j.SpiderID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteDeploy(ctx, deploy.DID); err != nil {
		t.Fatal(err)
	}
	eng := &recordingEngine{}
	svc := newService(t, st, eng, dispatch.ImageSettings{})

	if err := svc.DispatchJob(ctx, j.JID); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	got, _ := st.JobByID(ctx, j.JID)
	if got.Status != store.JobError || !strings.Contains(got.ErrorReason, "no successful deploy contains spider") {
		t.Errorf("job without a deploy: %s (%q), want ERROR naming the missing deploy", got.Status, got.ErrorReason)
	}
	if len(eng.specs) != 0 {
		t.Errorf("engine got %d jobs, want none", len(eng.specs))
	}
}

func TestDispatchSharedCollectionJobInfo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	next := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cron := &store.CronJob{ProjectID: j.ProjectID, SpiderID: j.SpiderID, Schedule: "0 0 * * *", Status: store.CronActive,
		DataStatus: "PERSISTENT", ResourceTier: "LARGE", UniqueCollection: true, NextRun: &next,
		Args:    []store.Arg{{Name: "category", Value: "books"}},
		EnvVars: []store.EnvVar{{Name: "API_KEY", Value: "k1", Masked: true}, {Name: "MODE", Value: "fast"}}}
	if err := st.CreateCronJob(ctx, cron); err != nil {
		t.Fatal(err)
	}
	jid, err := st.CreateCronJobRun(ctx, cron.CJID)
	if err != nil {
		t.Fatal(err)
	}
	eng := &recordingEngine{}
	svc := newService(t, st, eng, dispatch.ImageSettings{})

	if err := svc.DispatchJob(ctx, jid); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	if len(eng.specs) != 1 {
		t.Fatalf("engine got %d jobs, want 1", len(eng.specs))
	}
	var info struct {
		Spider     string            `json:"spider"`
		AuthToken  string            `json:"auth_token"`
		Key        string            `json:"key"`
		Collection string            `json:"collection"`
		Unique     string            `json:"unique"`
		Args       map[string]string `json:"args"`
		EnvVars    map[string]string `json:"env_vars"`
	}
	if err := json.Unmarshal([]byte(eng.specs[0].Env["JOB_INFO"]), &info); err != nil {
		t.Fatalf("decode JOB_INFO: %v", err)
	}
	wantCollection := fmt.Sprintf("scj%d.%d.%s", cron.CJID, j.SpiderID, j.ProjectID)
	if info.Spider != "quotes" || info.Key != fmt.Sprintf("%d.%d.%s", jid, j.SpiderID, j.ProjectID) ||
		info.Collection != wantCollection || info.Unique != "True" {
		t.Errorf("JOB_INFO = %+v; want spider quotes, key %d.%d.%s, collection %s, unique True",
			info, jid, j.SpiderID, j.ProjectID, wantCollection)
	}
	if !cmp.Equal(map[string]string{"category": "books"}, info.Args) ||
		!cmp.Equal(map[string]string{"API_KEY": "k1", "MODE": "fast"}, info.EnvVars) {
		t.Errorf("JOB_INFO args %v and env vars %v, want the cron job's", info.Args, info.EnvVars)
	}
	if eng.specs[0].Env["MODE"] != "fast" {
		t.Errorf("job env MODE = %q, want fast", eng.specs[0].Env["MODE"])
	}
	principal, err := st.Authenticate(ctx, info.AuthToken)
	if err != nil || principal.JobID != jid {
		t.Errorf("JOB_INFO auth_token authenticates as %+v, %v; want job %d", principal, err, jid)
	}
}

// queuedJobs creates n jobs of one deployed spider and returns their ids.
func queuedJobs(t *testing.T, st *store.Store, n int) []int64 {
	t.Helper()
	first := queuedJob(t, st)
	jids := []int64{first.JID}
	for len(jids) < n {
		j := &store.Job{ProjectID: first.ProjectID, SpiderID: first.SpiderID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
		if err := st.CreateJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		jids = append(jids, j.JID)
	}
	return jids
}

// jobStatuses counts the jobs by status.
func jobStatuses(t *testing.T, st *store.Store, jids []int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, jid := range jids {
		j, err := st.JobByID(context.Background(), jid)
		if err != nil {
			t.Fatal(err)
		}
		out[j.Status]++
	}
	return out
}

// Jobs are claimed in batches of 100, so 250 jobs take three claims.
func TestDispatchQueuedLaunchesEveryJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	jids := queuedJobs(t, st, 250)
	eng := &recordingEngine{}
	svc := newServiceWith(t, st, eng, dispatch.Settings{Launchers: 4})

	claimed, err := svc.DispatchQueued(ctx)
	if err != nil || claimed != len(jids) {
		t.Fatalf("dispatch queued = %d jobs claimed, error %v; want %d, no error", claimed, err, len(jids))
	}
	if claimed, err := svc.DispatchQueued(ctx); err != nil || claimed != 0 {
		t.Errorf("dispatch with nothing queued = %d jobs claimed, error %v; want 0, no error", claimed, err)
	}
	names := map[string]int{}
	for _, spec := range eng.specs {
		names[spec.Name]++
	}
	for _, jid := range jids {
		j, err := st.JobByID(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if n := names[j.Name()]; n != 1 || j.Status != store.JobWaiting {
			t.Errorf("job %d: %s, launched %d times; want WAITING, launched once", jid, j.Status, n)
		}
	}
}

// While the engine is unavailable, a call tries only the launches already under way, and every
// job stays queued without using an attempt.
func TestDispatchQueuedWaitsForUnavailableEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	jids := queuedJobs(t, st, 40)
	eng := &failingEngine{err: errdefs.Unavailable("the engine plugin is restarting")}
	svc := newServiceWith(t, st, eng, dispatch.Settings{Launchers: 4})

	if _, err := svc.DispatchQueued(ctx); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("dispatch queued = %v, want an unavailable error", err)
	}
	if calls := eng.calls.Load(); calls < 1 || calls > 4 {
		t.Errorf("engine got %d launches, want 1 to 4 (one per launcher at most)", calls)
	}
	if got := jobStatuses(t, st, jids); got[store.JobInQueue] != len(jids) {
		t.Errorf("job statuses after the failed call: %v, want all %d IN_QUEUE", got, len(jids))
	}
	for _, jid := range jids {
		if j, _ := st.JobByID(ctx, jid); j.DispatchAttempts != 0 || j.DispatchAfter == nil {
			t.Errorf("job %d: %d attempts, retry time %v; want 0 attempts and a retry time", jid, j.DispatchAttempts, j.DispatchAfter)
		}
	}
	// The jobs wait before their next claim, so a call at once finds none and calls no engine.
	before := eng.calls.Load()
	if _, err := svc.DispatchQueued(ctx); err != nil {
		t.Errorf("dispatch queued at once after = %v, want nothing to do", err)
	}
	if eng.calls.Load() != before {
		t.Errorf("engine got %d more launches before the retry time", eng.calls.Load()-before)
	}
}

// A failed launch puts the job back with a back-off, and the last allowed attempt ends it.
func TestDispatchQueuedRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	jids := queuedJobs(t, st, 3)
	eng := &failingEngine{err: errors.New("disk full")}
	svc := newServiceWith(t, st, eng, dispatch.Settings{})

	if _, err := svc.DispatchQueued(ctx); err != nil {
		t.Fatalf("dispatch queued: %v", err)
	}
	for _, jid := range jids {
		j, err := st.JobByID(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != store.JobInQueue || j.DispatchAttempts != 1 || j.DispatchAfter == nil || time.Until(*j.DispatchAfter) <= 0 {
			t.Errorf("job %d after a failed launch: %s, %d attempts, retry time %v; want IN_QUEUE, 1, in the future",
				jid, j.Status, j.DispatchAttempts, j.DispatchAfter)
		}
	}
	// Launching again at once ignores the back-off; the third attempt is the last of 3.
	for range 2 {
		for _, jid := range jids {
			_ = svc.DispatchJob(ctx, jid)
		}
	}
	if got := jobStatuses(t, st, jids); got[store.JobError] != len(jids) {
		t.Errorf("job statuses after 3 failed attempts: %v, want all ERROR", got)
	}
}

// blockingEngine is a test double of an engine whose CreateJob waits until its call is
// cancelled, as a launch does when the worker shuts down during a slow engine call.
type blockingEngine struct {
	engine.Engine
	started chan struct{}
}

func (e *blockingEngine) CreateJob(ctx context.Context, _ *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	select {
	case e.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// Jobs claimed when the worker shuts down go back to the queue at once, without using an
// attempt, where they stayed WAITING until the reconcile found them missing from the engine.
func TestDispatchQueuedShutdownReturnsJobs(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	jids := queuedJobs(t, st, 10)
	eng := &blockingEngine{started: make(chan struct{}, 1)}
	svc := newServiceWith(t, st, eng, dispatch.Settings{Launchers: 2})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-eng.started
		cancel()
	}()
	if _, err := svc.DispatchQueued(ctx); err == nil {
		t.Error("dispatch queued during a shutdown returned no error")
	}
	waiting := 0
	for _, jid := range jids {
		j, err := st.JobByID(context.Background(), jid)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != store.JobInQueue || j.DispatchAttempts != 0 {
			t.Errorf("job %d after the shutdown: %s, %d attempts; want IN_QUEUE, 0", jid, j.Status, j.DispatchAttempts)
		}
		if j.DispatchAfter != nil && time.Until(*j.DispatchAfter) > 0 {
			waiting++
		}
	}
	// Only the launches under way (one per launcher) wait before their next claim.
	if waiting > 2 {
		t.Errorf("%d jobs wait before their next claim, want at most the 2 whose launch was interrupted", waiting)
	}
}

// cappedEngine is a test double of an engine that runs at most limit jobs, as the local
// engine does with max_running_jobs.
type cappedEngine struct {
	engine.Engine
	mu       sync.Mutex
	limit    int
	created  map[string]bool
	order    []string
	rejected int
}

func (e *cappedEngine) CreateJob(_ context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.created) >= e.limit {
		e.rejected++
		return nil, errdefs.AtCapacity("%d jobs run, the most the engine allows", len(e.created))
	}
	e.created[req.Spec.Name] = true
	e.order = append(e.order, req.Spec.Name)
	return &engine.CreateJobResponse{Job: engine.JobStatus{Name: req.Spec.Name, State: engine.JobRunning}, Created: true}, nil
}

func (e *cappedEngine) setLimit(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.limit = n
}

// An engine at capacity leaves the remaining jobs queued without using an attempt, gets
// launches again only after a second, and then gets the jobs in the order they were queued.
func TestDispatchQueuedWaitsForEngineCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	jids := queuedJobs(t, st, 40)
	eng := &cappedEngine{limit: 10, created: map[string]bool{}}
	svc := newServiceWith(t, st, eng, dispatch.Settings{Launchers: 4})

	if _, err := svc.DispatchQueued(ctx); err != nil {
		t.Fatalf("dispatch queued on a full engine = %v, want no error", err)
	}
	got := jobStatuses(t, st, jids)
	if got[store.JobWaiting] != 10 || got[store.JobInQueue] != 30 {
		t.Errorf("job statuses with room for 10: %v, want 10 WAITING and 30 IN_QUEUE", got)
	}
	if eng.rejected < 1 || eng.rejected > 4 {
		t.Errorf("engine rejected %d launches, want 1 to 4 (one per launcher at most)", eng.rejected)
	}
	for _, jid := range jids {
		if j, _ := st.JobByID(ctx, jid); j.DispatchAttempts > 1 || (j.Status == store.JobInQueue && j.DispatchAttempts != 0) {
			t.Errorf("job %d: %s with %d attempts; a queued job must not have used one", jid, j.Status, j.DispatchAttempts)
		}
	}

	rejected := eng.rejected
	if _, err := svc.DispatchQueued(ctx); err != nil {
		t.Errorf("dispatch queued at once after = %v, want nothing to do", err)
	}
	if eng.rejected != rejected || len(eng.created) != 10 {
		t.Errorf("engine got launches again within a second: %d more rejections, %d jobs", eng.rejected-rejected, len(eng.created))
	}

	var queued []string
	for _, jid := range jids {
		if j, _ := st.JobByID(ctx, jid); j.Status == store.JobInQueue {
			queued = append(queued, j.Name())
		}
	}
	for _, limit := range []int{13, 40} {
		eng.setLimit(limit)
		time.Sleep(1100 * time.Millisecond)
		if _, err := svc.DispatchQueued(ctx); err != nil {
			t.Fatalf("dispatch queued with room for %d = %v", limit, err)
		}
	}
	if got := jobStatuses(t, st, jids); got[store.JobWaiting] != 40 {
		t.Errorf("job statuses once the engine has room: %v, want all 40 WAITING", got)
	}
	if diff := cmp.Diff(queued, eng.order[10:]); diff != "" {
		t.Errorf("jobs launched after the engine was at capacity, out of queue order (-want +got):\n%s", diff)
	}
}
