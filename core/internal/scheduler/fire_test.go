package scheduler_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-pg/pg/v10"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/scheduler"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// recorder is a Notifier that counts the notifications it receives.
type recorder struct {
	notified atomic.Int64
}

func (r *recorder) NotifyQueued() error {
	r.notified.Add(1)
	return nil
}

// world is a database with one project and its deployed spiders.
type world struct {
	t       *testing.T
	url     string
	st      *store.Store
	user    *store.User
	project *store.Project
	spiders map[string]int64
}

func newWorld(t *testing.T, spiders ...string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, url: testenv.DatabaseURL(t), spiders: map[string]int64{}}
	w.st = w.open()
	w.user = &store.User{Username: "alice", Email: "alice@example.com", PasswordHash: "x", IsActive: true}
	if err := w.st.CreateUser(ctx, w.user); err != nil {
		t.Fatal(err)
	}
	w.project = &store.Project{Name: "shop", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT", DataExpiryDays: 1}
	if err := w.st.CreateProject(ctx, w.project, w.user.ID); err != nil {
		t.Fatal(err)
	}
	w.deploy(spiders...)
	return w
}

// open returns a store with its own connection pool, as a second worker process has.
func (w *world) open() *store.Store {
	w.t.Helper()
	st, err := store.Open(context.Background(), w.url, store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { st.Close() })
	return st
}

// deploy makes spiders the project's live spiders; the others are soft-deleted.
func (w *world) deploy(spiders ...string) {
	w.t.Helper()
	ctx := context.Background()
	d := &store.Deploy{ProjectID: w.project.PID, UserID: &w.user.ID}
	if err := w.st.CreateDeploy(ctx, d); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.SucceedDeploy(ctx, d.DID, "/artifacts", spiders); err != nil {
		w.t.Fatal(err)
	}
	list, _, err := w.st.ListSpiders(ctx, w.project.PID, "", store.Page{Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range list {
		w.spiders[s.Name] = s.SID
	}
}

// cronJob creates an ACTIVE cron job of a spider that is due at due.
func (w *world) cronJob(spider, schedule string, due time.Time) *store.CronJob {
	w.t.Helper()
	c := &store.CronJob{ProjectID: w.project.PID, SpiderID: w.spiders[spider], Schedule: schedule, Status: store.CronActive,
		DataStatus: "PERSISTENT", ResourceTier: "SMALL", Args: []store.Arg{{Name: "page", Value: "1"}}, Tags: []string{"nightly"},
		NextRun: &due, EnvVars: []store.EnvVar{{Name: "MODE", Value: "slow"}}}
	if err := w.st.CreateCronJob(context.Background(), c); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// runs returns the jobs of a cron job, read from the project's job list so that jobs of
// deleted spiders count too.
func (w *world) runs(c *store.CronJob) []store.Job {
	w.t.Helper()
	all, _, err := w.st.ListProjectJobs(context.Background(), w.project.PID, store.Page{Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	var jobs []store.Job
	for _, j := range all {
		if j.CronjobID != nil && *j.CronjobID == c.CJID {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

func (w *world) reload(c *store.CronJob) *store.CronJob {
	w.t.Helper()
	got, err := w.st.CronJob(context.Background(), w.project.PID, c.SpiderID, c.CJID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func newScheduler(st *store.Store, q scheduler.Notifier, opts scheduler.Options) *scheduler.Scheduler {
	return scheduler.New(st, q, opts, hclog.NewNullLogger())
}

var minute = time.Date(2030, 5, 6, 7, 8, 0, 0, time.UTC)

func TestFireOnceWithTwoWorkers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "quotes")
	const cronJobs = 120
	for range cronJobs {
		w.cronJob("quotes", "* * * * *", minute)
	}
	// Two workers, each with its own connection pool, fire the same minute at once, in small
	// batches so that they interleave.
	q := &recorder{}
	workers := []*scheduler.Scheduler{
		newScheduler(w.st, q, scheduler.Options{BatchSize: 7, Parallel: 3}),
		newScheduler(w.open(), q, scheduler.Options{BatchSize: 7, Parallel: 3}),
	}
	now := minute.Add(400 * time.Millisecond)
	var wg sync.WaitGroup
	counts := make([]int, len(workers))
	for i, s := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.FireAt(context.Background(), now)
			if err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()

	if counts[0]+counts[1] != cronJobs {
		t.Errorf("workers created %d + %d jobs, want %d in all", counts[0], counts[1], cronJobs)
	}
	jobs, total, err := w.st.ListJobs(context.Background(), w.project.PID, w.spiders["quotes"], store.JobFilter{}, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if total != cronJobs {
		t.Errorf("%d jobs stored, want one per cron job (%d)", total, cronJobs)
	}
	perCron := map[int64]int{}
	for _, j := range jobs {
		perCron[*j.CronjobID]++
		if j.Status != store.JobInQueue {
			t.Errorf("job %d is %s, want IN_QUEUE", j.JID, j.Status)
		}
	}
	for cjid, n := range perCron {
		if n != 1 {
			t.Errorf("cron job %d has %d jobs, want 1", cjid, n)
		}
	}
	// Each batch notifies once: 120 runs in batches of 7 make at least 18 batches.
	if n := q.notified.Load(); n < 18 || n > cronJobs {
		t.Errorf("workers notified %d times, want once per batch (18 to %d)", n, cronJobs)
	}
}

func TestFireCreatesJobLikeAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "quotes")
	c := w.cronJob("quotes", "*/5 * * * *", minute)
	q := &recorder{}
	if _, err := newScheduler(w.st, q, scheduler.Options{}).FireAt(context.Background(), minute); err != nil {
		t.Fatal(err)
	}

	runs := w.runs(c)
	if len(runs) != 1 {
		t.Fatalf("cron job has %d jobs, want 1", len(runs))
	}
	j := runs[0]
	want := store.Job{JID: j.JID, ProjectID: w.project.PID, SpiderID: c.SpiderID, SpiderName: "quotes", Seq: 1, CronjobID: &c.CJID,
		Status: store.JobInQueue, DataStatus: "PERSISTENT", ResourceTier: "SMALL", Args: []store.Arg{{Name: "page", Value: "1"}},
		Tags: []string{"nightly"}, ProxyUsageData: map[string]any{}, HasEnvVars: true}
	j.Created, j.StatusChanged = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, j, cmp.AllowUnexported(store.Job{})); diff != "" {
		t.Errorf("fired job (-want +got):\n%s", diff)
	}
	vars, err := w.st.JobEnvVars(context.Background(), j.JID)
	if err != nil || len(vars) != 1 || vars[0].Name != "MODE" || vars[0].Value != "slow" {
		t.Errorf("job env vars = %+v, %v; want MODE=slow", vars, err)
	}
	if n := q.notified.Load(); n != 1 {
		t.Errorf("workers notified %d times, want once", n)
	}
}

func TestFireUsesCurrentValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, "quotes")
	c := w.cronJob("quotes", "* * * * *", minute)

	days, pending, tier, unique := 5, "PENDING", "HUGE", true
	daysRef := &days
	args := []store.Arg{{Name: "page", Value: "7"}, {Name: "lang", Value: "en"}}
	tags := []string{"weekly"}
	vars := []store.EnvVar{{Name: "MODE", Value: "fast", Masked: true}, {Name: "REGION", Value: "eu"}}
	err := w.st.UpdateCronJob(ctx, c.CJID, store.CronJobUpdate{DataStatus: &pending, DataExpiryDays: &daysRef,
		ResourceTier: &tier, UniqueCollection: &unique, Args: &args, Tags: &tags, EnvVars: &vars})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newScheduler(w.st, &recorder{}, scheduler.Options{}).FireAt(ctx, minute); err != nil {
		t.Fatal(err)
	}

	runs := w.runs(c)
	if len(runs) != 1 {
		t.Fatalf("cron job has %d jobs, want 1", len(runs))
	}
	j := runs[0]
	if j.ResourceTier != "HUGE" || j.DataStatus != "PENDING" || j.DataExpiryDays == nil || *j.DataExpiryDays != 5 {
		t.Errorf("job tier %s, data %s for %v days; want HUGE, PENDING for 5 days", j.ResourceTier, j.DataStatus, j.DataExpiryDays)
	}
	if diff := cmp.Diff(args, j.Args); diff != "" {
		t.Errorf("job args (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(tags, j.Tags); diff != "" {
		t.Errorf("job tags (-want +got):\n%s", diff)
	}
	got, err := w.st.JobEnvVars(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, v := range got {
		pairs = append(pairs, fmt.Sprintf("%s=%s masked=%v", v.Name, v.Value, v.Masked))
	}
	if diff := cmp.Diff([]string{"MODE=fast masked=true", "REGION=eu masked=false"}, pairs); diff != "" {
		t.Errorf("job env vars (-want +got):\n%s", diff)
	}
	// The worker reads the shared collection when it claims the job for launch.
	launch, err := w.st.ClaimJobForLaunch(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("scj%d.%d.%s", c.CJID, c.SpiderID, w.project.PID); launch.SharedCollection != want {
		t.Errorf("shared collection = %q, want %q", launch.SharedCollection, want)
	}
}

func TestFireMovesNextRunForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, "quotes")
	// Due an hour ago: twelve runs were missed, for example while no worker ran.
	c := w.cronJob("quotes", "*/5 * * * *", minute.Add(-time.Hour))
	s := newScheduler(w.st, &recorder{}, scheduler.Options{})

	now := minute.Add(90 * time.Second)
	n, err := s.FireAt(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("first fire created %d jobs, %v; want 1: missed runs fire once", n, err)
	}
	want := minute.Add(2 * time.Minute) // 07:10, the first run after 07:09:30
	if got := w.reload(c).NextRun; got == nil || !got.Equal(want) {
		t.Errorf("next_run = %v, want %s", got, want)
	}
	if n, err := s.FireAt(ctx, now); err != nil || n != 0 {
		t.Errorf("firing the same moment again created %d jobs, %v; want 0", n, err)
	}
	if n, err := s.FireAt(ctx, want); err != nil || n != 1 {
		t.Errorf("firing at the next run created %d jobs, %v; want 1", n, err)
	}
	if got := w.reload(c).NextRun; got == nil || !got.Equal(want.Add(5*time.Minute)) {
		t.Errorf("next_run after the second run = %v, want %s", got, want.Add(5*time.Minute))
	}
	if runs := w.runs(c); len(runs) != 2 {
		t.Errorf("cron job has %d jobs, want 2", len(runs))
	}
}

func TestFireSkipsInactiveCronJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, "quotes", "books")
	disabled := w.cronJob("quotes", "* * * * *", minute)
	status := store.CronDisabled
	if err := w.st.UpdateCronJob(ctx, disabled.CJID, store.CronJobUpdate{Status: &status}); err != nil {
		t.Fatal(err)
	}
	deleted := w.cronJob("quotes", "* * * * *", minute)
	if err := w.st.DeleteCronJob(ctx, deleted.CJID); err != nil {
		t.Fatal(err)
	}
	notYet := w.cronJob("quotes", "* * * * *", minute.Add(time.Minute))
	ofRemovedSpider := w.cronJob("books", "* * * * *", minute)
	w.deploy("quotes") // books is soft-deleted
	live := w.cronJob("quotes", "* * * * *", minute)

	n, err := newScheduler(w.st, &recorder{}, scheduler.Options{}).FireAt(ctx, minute)
	if err != nil || n != 1 {
		t.Fatalf("fire created %d jobs, %v; want 1, for the live cron job only", n, err)
	}
	for name, c := range map[string]*store.CronJob{"disabled": disabled, "deleted": deleted, "not due": notYet, "of a removed spider": ofRemovedSpider} {
		if runs := w.runs(c); len(runs) != 0 {
			t.Errorf("%s cron job fired %d jobs, want 0", name, len(runs))
		}
	}
	if runs := w.runs(live); len(runs) != 1 {
		t.Errorf("live cron job fired %d jobs, want 1", len(runs))
	}
	// The run of the removed spider's cron job is skipped, not kept due forever.
	next := w.reload(ofRemovedSpider).NextRun
	if next == nil || !next.Equal(minute.Add(time.Minute)) {
		t.Errorf("next_run of the removed spider's cron job = %v, want %s", next, minute.Add(time.Minute))
	}
}

func TestFireSkipsDeletedProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, "quotes")
	c := w.cronJob("quotes", "* * * * *", minute)
	// The store has no call to delete a project yet, so the test sets the flag itself.
	opts, err := pg.ParseURL(w.url)
	if err != nil {
		t.Fatal(err)
	}
	db := pg.Connect(opts)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE projects SET deleted = true WHERE pid = ?", w.project.PID); err != nil {
		t.Fatal(err)
	}

	if n, err := newScheduler(w.st, &recorder{}, scheduler.Options{}).FireAt(ctx, minute); err != nil || n != 0 {
		t.Errorf("fire created %d jobs, %v; want 0 for a deleted project", n, err)
	}
	if runs := w.runs(c); len(runs) != 0 {
		t.Errorf("cron job of a deleted project fired %d jobs, want 0", len(runs))
	}
}

func TestFireIdlesUnreadableSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, "quotes")
	broken := w.cronJob("quotes", "0 * * * * *", minute)
	good := w.cronJob("quotes", "* * * * *", minute)

	n, err := newScheduler(w.st, &recorder{}, scheduler.Options{}).FireAt(ctx, minute)
	if err != nil || n != 1 {
		t.Fatalf("fire created %d jobs, %v; want 1 for the readable schedule", n, err)
	}
	if runs := w.runs(broken); len(runs) != 0 {
		t.Errorf("cron job with a 6-field schedule fired %d jobs, want 0", len(runs))
	}
	if next := w.reload(broken).NextRun; next != nil {
		t.Errorf("next_run of an unreadable schedule = %s, want NULL", next)
	}
	if runs := w.runs(good); len(runs) != 1 {
		t.Errorf("cron job with a readable schedule fired %d jobs, want 1", len(runs))
	}
}
