package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-pg/pg/v10"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// jobNumbers returns the numbers of a spider's queued jobs in ascending order. It reads
// them through a filtered list, which counts rows and does not rely on the numbers.
func jobNumbers(t *testing.T, st *store.Store, pid string, sid int64) []int64 {
	t.Helper()
	jobs, count, err := st.ListJobs(context.Background(), pid, sid, store.JobFilter{Status: store.JobInQueue}, store.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	if len(jobs) != count {
		t.Fatalf("listed %d of %d jobs", len(jobs), count)
	}
	seqs := make([]int64, len(jobs))
	for i, j := range jobs {
		seqs[len(jobs)-1-i] = j.Seq
	}
	return seqs
}

func oneToN(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func TestConcurrentJobsNumberedWithoutGaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, books := quotesAndBooks(t, st)

	const senders, perSender = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, senders*perSender)
	for i := range senders {
		wg.Go(func() {
			for k := range perSender {
				sid := quotes
				if (i+k)%3 == 0 {
					sid = books
				}
				errs <- st.CreateJob(ctx, &store.Job{ProjectID: p.PID, SpiderID: sid, DataStatus: "PERSISTENT", ResourceTier: "LARGE"})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("create job: %v", err)
		}
	}
	total := 0
	for _, sid := range []int64{quotes, books} {
		got := jobNumbers(t, st, p.PID, sid)
		total += len(got)
		if diff := cmp.Diff(oneToN(len(got)), got); diff != "" {
			t.Errorf("numbers of spider %d's jobs (-want +got):\n%s", sid, diff)
		}
	}
	if total != senders*perSender {
		t.Errorf("%d jobs numbered, want %d", total, senders*perSender)
	}
}

// The job list scans its rows itself; each field must come out as go-pg's reflection gives it,
// NULLs and empty JSON included.
func TestListJobsScansAsReflectionDoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, _ := quotesAndBooks(t, st)
	days := 7
	jobs := []*store.Job{
		{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PERSISTENT", ResourceTier: "LARGE"},
		{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PENDING", DataExpiryDays: &days, ResourceTier: "SMALL",
			Args:           []store.Arg{{Name: "page", Value: "2"}, {Name: "q", Value: `a "quoted" \ value`}},
			Tags:           []string{"nightly", "with space", `quo"te`},
			ProxyUsageData: map[string]any{"bytes": 12.5, "nested": map[string]any{"a": []any{"x"}}},
			EnvVars:        []store.EnvVar{{Name: "B", Value: "2"}, {Name: "SECRET", Value: "s", Masked: true}}},
	}
	for _, j := range jobs {
		if err := st.CreateJob(ctx, j); err != nil {
			t.Fatalf("create job: %v", err)
		}
	}
	if err := st.Exec(ctx, `UPDATE jobs SET status = 'ERROR', error_reason = 'Traceback: x', dispatched_at = now(),
		dispatch_after = now(), dispatch_attempts = 2, peak_memory_bytes = 1048576, lifespan_us = 5000000,
		item_count = 3, request_count = 4, total_response_bytes = 5, storage_bytes = 6,
		deploy_id = (SELECT min(did) FROM deploys) WHERE jid = ?`, jobs[1].JID); err != nil {
		t.Fatal(err)
	}
	for offset := range 3 {
		page := store.Page{Offset: offset, Limit: 2}
		got, gotCount, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, page)
		if err != nil {
			t.Fatalf("list jobs at offset %d: %v", offset, err)
		}
		want, wantCount, err := st.ListJobsWithReflection(ctx, p.PID, quotes, page)
		if err != nil {
			t.Fatalf("list jobs with reflection at offset %d: %v", offset, err)
		}
		if gotCount != wantCount || len(got) != 2-offset {
			t.Errorf("offset %d: %d jobs of %d, want %d jobs of %d", offset, len(got), gotCount, 2-offset, wantCount)
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(store.Job{}, store.EnvVar{})); diff != "" {
			t.Errorf("offset %d (-reflection +scanners):\n%s", offset, diff)
		}
		if offset == 0 && (got[0].Args == nil || got[0].EnvVars == nil || got[1].Args == nil || got[1].ProxyUsageData == nil) {
			t.Errorf("empty args or proxy data scanned as nil: %+v", got)
		}
	}

	// The list reads only the fields it shows. A field added to Job shows up here until the
	// list reads it or this test leaves it out.
	listed, _, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range listed {
		want, err := st.JobByID(ctx, got.JID)
		if err != nil {
			t.Fatal(err)
		}
		want.DeployID, want.DispatchAttempts, want.DispatchedAt, want.DispatchAfter = nil, 0, nil, nil
		want.StatusChanged, want.HasEnvVars, want.EnvVars = time.Time{}, false, got.EnvVars
		if diff := cmp.Diff(*want, got, cmpopts.IgnoreUnexported(store.Job{}, store.EnvVar{})); diff != "" {
			t.Errorf("job %d (-stored +listed):\n%s", got.JID, diff)
		}
	}
}

// The job list reads the environment variables of the jobs marked as having some. Every way a
// job gets variables marks it: its creation, a cron job's run, and a variable inserted later.
func TestListJobsReadsEnvVarsOfMarkedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, _ := quotesAndBooks(t, st)

	plain := &store.Job{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	withVars := &store.Job{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PERSISTENT", ResourceTier: "LARGE",
		EnvVars: []store.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2", Masked: true}}}
	later := &store.Job{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	for _, j := range []*store.Job{plain, withVars, later} {
		if err := st.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	cron := newCronJob(p.PID, quotes)
	bareCron := newCronJob(p.PID, quotes)
	bareCron.EnvVars = nil
	var cronRun, bareCronRun int64
	for _, c := range []struct {
		cron *store.CronJob
		run  *int64
	}{{cron, &cronRun}, {bareCron, &bareCronRun}} {
		if err := st.CreateCronJob(ctx, c.cron); err != nil {
			t.Fatal(err)
		}
		jid, err := st.CreateCronJobRun(ctx, c.cron.CJID)
		if err != nil {
			t.Fatal(err)
		}
		*c.run = jid
	}
	if err := st.Exec(ctx, "INSERT INTO env_vars (job_id, name, value) VALUES (?, 'LATE', 'yes')", later.JID); err != nil {
		t.Fatal(err)
	}

	want := map[int64][]string{plain.JID: nil, withVars.JID: {"A", "B"}, later.JID: {"LATE"}, cronRun: {"KEY"}, bareCronRun: nil}
	for jid, names := range want {
		j, err := st.JobByID(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		if j.HasEnvVars != (len(names) > 0) {
			t.Errorf("job %d has_env_vars = %t, want %t", jid, j.HasEnvVars, len(names) > 0)
		}
	}
	listed, _, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64][]string{}
	for _, j := range listed {
		got[j.JID] = nil
		for _, v := range j.EnvVars {
			got[j.JID] = append(got[j.JID], v.Name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed env vars (-want +got):\n%s", diff)
	}

	// A variable deleted leaves the mark, and the job lists no variables.
	if err := st.Exec(ctx, "DELETE FROM env_vars WHERE job_id = ?", later.JID); err != nil {
		t.Fatal(err)
	}
	listed, _, err = st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, store.Page{Limit: 1, Offset: 2})
	if err != nil || len(listed) != 1 || listed[0].JID != later.JID || len(listed[0].EnvVars) != 0 {
		t.Errorf("job without its variable lists as %+v, %v; want job %d with none", listed, err, later.JID)
	}
}

func TestListJobsPagesByNumber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, books := quotesAndBooks(t, st)
	var created []int64
	for i := range 23 {
		j := &store.Job{ProjectID: p.PID, SpiderID: quotes, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
		if i%2 == 0 {
			j.Tags = []string{"even"}
		}
		if err := st.CreateJob(ctx, j); err != nil {
			t.Fatalf("create job: %v", err)
		}
		created = append(created, j.JID)
		// A job of another spider between them must not show in quotes' list.
		if err := st.CreateJob(ctx, &store.Job{ProjectID: p.PID, SpiderID: books, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}); err != nil {
			t.Fatalf("create job: %v", err)
		}
	}

	var listed []int64
	for offset := 0; offset < 30; offset += 5 {
		jobs, count, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, store.Page{Offset: offset, Limit: 5})
		if err != nil {
			t.Fatalf("list jobs at offset %d: %v", offset, err)
		}
		if count != 23 {
			t.Errorf("count at offset %d = %d, want 23", offset, count)
		}
		for _, j := range jobs {
			if j.SpiderName != "quotes" {
				t.Errorf("job %d listed with spider %q, want quotes", j.JID, j.SpiderName)
			}
			listed = append(listed, j.JID)
		}
	}
	var newestFirst []int64
	for i := len(created) - 1; i >= 0; i-- {
		newestFirst = append(newestFirst, created[i])
	}
	if diff := cmp.Diff(newestFirst, listed); diff != "" {
		t.Errorf("jobs over every page (-want +got):\n%s", diff)
	}

	// A filtered list counts and skips rows, in the same order.
	jobs, count, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{Tag: "even"}, store.Page{Offset: 2, Limit: 3})
	if err != nil {
		t.Fatalf("list jobs by tag: %v", err)
	}
	var got []int64
	for _, j := range jobs {
		got = append(got, j.JID)
	}
	if want := []int64{created[18], created[16], created[14]}; count != 12 || !cmp.Equal(want, got) {
		t.Errorf("third to fifth jobs tagged even = %v of %d, want %v of 12", got, count, want)
	}

	news := &store.Deploy{ProjectID: p.PID}
	if err := st.CreateDeploy(ctx, news); err != nil {
		t.Fatal(err)
	}
	if err := st.SucceedDeploy(ctx, news.DID, "/artifacts/2", []string{"quotes", "books", "news"}); err != nil {
		t.Fatal(err)
	}
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	for _, f := range []store.JobFilter{{}, {Tag: "even"}} {
		empty, count, err := st.ListJobs(ctx, p.PID, spiders[2].SID, f, store.Page{Limit: 5})
		if err != nil || count != 0 || len(empty) != 0 {
			t.Errorf("list %+v of a spider without jobs = %v, %d, %v; want nothing", f, empty, count, err)
		}
		jobs, count, err := st.ListJobs(ctx, p.PID, quotes, f, store.Page{Offset: 100, Limit: 5})
		if err != nil || count == 0 || len(jobs) != 0 {
			t.Errorf("list %+v past the last page = %v, %d, %v; want no jobs and the count", f, jobs, count, err)
		}
		if _, _, err := st.ListJobs(ctx, store.NewUUID(), quotes, f, store.Page{Limit: 5}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("list %+v under another project: err = %v, want ErrNotFound", f, err)
		}
	}
}

// Concurrent cron firings insert jobs of several spiders each; the jobs are numbered under
// a lock per spider, so the firings must not deadlock.
func TestConcurrentCronFiringsAcrossSpiders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes", "books", "news")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	const cronJobs = 90
	for i := range cronJobs {
		if err := st.CreateCronJob(ctx, newCronJob(p.PID, spiders[i%len(spiders)].SID)); err != nil {
			t.Fatalf("create cron job: %v", err)
		}
	}
	due := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	later := due.Add(365 * 24 * time.Hour)
	next := func(string) (time.Time, bool) { return later, true }

	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				got, err := st.FireDueCronJobs(ctx, due, 7, next)
				if err != nil {
					errs <- err
					return
				}
				if got.Claimed == 0 {
					return
				}
				mu.Lock()
				fired += len(got.Runs)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("fire due cron jobs: %v", err)
	}
	if fired != cronJobs {
		t.Errorf("%d runs created, want %d", fired, cronJobs)
	}
	for _, s := range spiders {
		if got := jobNumbers(t, st, p.PID, s.SID); !cmp.Equal(oneToN(cronJobs/len(spiders)), got) {
			t.Errorf("numbers of spider %s's jobs = %v, want 1 to %d", s.Name, got, cronJobs/len(spiders))
		}
	}
}

func TestCreateJobWithActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	owner, p, _ := fixture(t, st, "quotes")
	bob := &store.User{Username: "bob", Email: "bob@example.com", PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if err := st.AddMember(ctx, p.PID, bob.ID, "DEVELOPER"); err != nil {
		t.Fatal(err)
	}
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, SpiderName: "quotes", DataStatus: "PERSISTENT",
		ResourceTier: "LARGE", Args: []store.Arg{{Name: "page", Value: "2"}}, Tags: []string{"daily"},
		EnvVars: []store.EnvVar{{Name: "B", Value: "2", Masked: true}, {Name: "A", Value: "1"}}}
	err := st.CreateJobWithActivity(ctx, j, store.JobActivity{UserID: owner.ID, Before: "run Job-", After: " for spider quotes."})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	if j.JID == 0 || j.Seq != 1 || j.Status != store.JobInQueue || j.SpiderName != "quotes" || j.Created.IsZero() {
		t.Errorf("created job = %+v; want an id, number 1, IN_QUEUE, spider quotes and a creation time", j)
	}
	stored, err := st.JobEnvVars(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored, j.EnvVars, cmp.AllowUnexported(store.EnvVar{})); diff != "" {
		t.Errorf("env vars returned (+) against stored (-):\n%s", diff)
	}
	if len(stored) != 2 || stored[0].Name != "B" || !stored[0].Masked || stored[1].Name != "A" {
		t.Errorf("stored env vars = %+v, want B (masked) then A", stored)
	}

	acts, _, err := st.ListActivities(ctx, p.PID, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("run Job-%d for spider quotes.", j.JID)
	if len(acts) == 0 || acts[0].Description != want || acts[0].UserID == nil || *acts[0].UserID != owner.ID {
		t.Errorf("newest activity = %+v, want %q by the owner", acts, want)
	}
	for _, u := range []struct {
		user *store.User
		want int
	}{{bob, 1}, {owner, 0}} {
		notes, _, err := st.ListNotifications(ctx, u.user.ID, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != u.want {
			t.Errorf("%s has %d notifications, want %d", u.user.Username, len(notes), u.want)
		}
	}
}

func TestJobStorageAndPeakMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.StorageBytes != 0 || j.PeakMemoryBytes != nil {
		t.Errorf("new job: storage %d, peak memory %v; want 0 and none", j.StorageBytes, j.PeakMemoryBytes)
	}
	// Stored compact: {"a":"x y"} is 11 bytes, {"b":2} 7, {"line":1} 10.
	if _, _, err := st.IngestArray(ctx, j.JID, store.DataItems, "i-1", []byte(`[{"a": "x y"}, {"b": 2}]`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.IngestArray(ctx, j.JID, store.DataLogs, "l-1", []byte(`[{"line": 1}]`)); err != nil {
		t.Fatal(err)
	}
	storage := func() int64 {
		t.Helper()
		got, err := st.JobByID(ctx, j.JID)
		if err != nil {
			t.Fatal(err)
		}
		return got.StorageBytes
	}
	if got := storage(); got != 28 {
		t.Errorf("storage after items and logs = %d, want 28", got)
	}
	if _, err := st.DeleteJobData(ctx, j.JID, store.DataItems); err != nil {
		t.Fatal(err)
	}
	if got := storage(); got != 10 {
		t.Errorf("storage after deleting the items = %d, want 10", got)
	}
	listed, _, err := st.ListJobs(ctx, p.PID, spiders[0].SID, store.JobFilter{}, store.Page{Limit: 10})
	if err != nil || len(listed) != 1 || listed[0].StorageBytes != 10 {
		t.Errorf("listed job = %+v, %v; want storage 10", listed, err)
	}

	for _, tt := range []struct {
		stats string
		want  int64
	}{
		{`{"memusage/max": 71303168, "item_scraped_count": 2}`, 71303168},
		{`{"memusage/max": 1, "resources/peak_memory_bytes": 90000000}`, 90000000},
		{`{"item_scraped_count": 3}`, 90000000}, // no figure keeps the last one
	} {
		if err := st.SaveJobStats(ctx, j.JID, json.RawMessage(tt.stats)); err != nil {
			t.Fatal(err)
		}
		got, err := st.JobByID(ctx, j.JID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PeakMemoryBytes == nil || *got.PeakMemoryBytes != tt.want {
			t.Errorf("peak memory after stats %s = %v, want %d", tt.stats, got.PeakMemoryBytes, tt.want)
		}
	}
}

// Migration 0006 numbers the jobs a database already has, in the order they were created,
// and new jobs continue from there.
// migratedBefore returns a new database with the migrations before version applied, and a
// connection to it.
func migratedBefore(t *testing.T, version int) (string, *pg.DB) {
	t.Helper()
	url := testenv.EmptyDatabaseURL(t)
	opts, err := pg.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := pg.Connect(opts)
	t.Cleanup(func() { db.Close() })
	migrations, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations {
		if m.Version >= version {
			break
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("apply %s: %v", m.Name, err)
		}
		if _, err := db.Exec("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return url, db
}

// migrateAll opens a store on the database at url and applies the migrations not yet applied.
func migrateAll(t *testing.T, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// Jobs that had environment variables before migration 0011 are marked as having some.
func TestEnvVarsMigrationMarksJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, db := migratedBefore(t, 11)
	const pid = "11111111-1111-4111-8111-111111111111"
	if _, err := db.Exec(`INSERT INTO projects (pid, name) VALUES (?, 'shop');
		INSERT INTO spiders (project_id, name) VALUES (?, 'quotes');
		INSERT INTO jobs (project_id, spider_id, status) SELECT ?, 1, 'COMPLETED' FROM generate_series(1, 3);
		INSERT INTO env_vars (job_id, name, value) VALUES (2, 'A', '1'), (2, 'B', '2');
		INSERT INTO env_vars (spider_id, name, value) VALUES (1, 'C', '3')`, pid, pid, pid); err != nil {
		t.Fatal(err)
	}

	st := migrateAll(t, url)

	jobs, _, err := st.ListJobs(ctx, pid, 1, store.JobFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		stored, err := st.JobByID(ctx, j.JID)
		if err != nil {
			t.Fatal(err)
		}
		want, wantVars := false, 0
		if j.JID == 2 {
			want, wantVars = true, 2
		}
		if stored.HasEnvVars != want {
			t.Errorf("job %d: has_env_vars = %t, want %t", j.JID, stored.HasEnvVars, want)
		}
		if len(j.EnvVars) != wantVars {
			t.Errorf("job %d: %d listed variables, want %d", j.JID, len(j.EnvVars), wantVars)
		}
	}
}

func TestJobNumbersMigrationKeepsOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, db := migratedBefore(t, 6)
	const pid = "11111111-1111-4111-8111-111111111111"
	if _, err := db.Exec(`INSERT INTO projects (pid, name) VALUES (?, 'shop');
		INSERT INTO spiders (project_id, name) VALUES (?, 'quotes'), (?, 'books');
		INSERT INTO jobs (project_id, spider_id, status) SELECT ?, 1 + g % 2, 'COMPLETED' FROM generate_series(1, 7) g`,
		pid, pid, pid, pid); err != nil {
		t.Fatal(err)
	}

	st := migrateAll(t, url)
	if err := st.CreateJob(ctx, &store.Job{ProjectID: pid, SpiderID: 1, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}); err != nil {
		t.Fatal(err)
	}
	// Spider 1 had jobs 2, 4 and 6, spider 2 jobs 1, 3, 5 and 7; job 8 is new.
	for sid, want := range map[int64][]int64{1: {2, 4, 6, 8}, 2: {1, 3, 5, 7}} {
		jobs, count, err := st.ListJobs(ctx, pid, sid, store.JobFilter{}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for i := len(jobs) - 1; i >= 0; i-- {
			got = append(got, jobs[i].JID)
			if jobs[i].Seq != int64(len(jobs)-i) {
				t.Errorf("spider %d: job %d has number %d, want %d", sid, jobs[i].JID, jobs[i].Seq, len(jobs)-i)
			}
		}
		if count != len(want) || !cmp.Equal(want, got) {
			t.Errorf("spider %d lists %v of %d, want %v oldest first", sid, got, count, want)
		}
	}
}

// Numbering a job reads one entry of the spider's job number index, even when the statistics
// show no jobs for the spider. A plan that aggregated the spider's entries read every earlier
// job for each new one, so a large insert into a new spider took quadratic time.
func TestJobNumberingWithStaleStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, err := pg.ParseURL(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	db := pg.Connect(opts)
	defer db.Close()
	// The test uses one connection, so that its statistics can be flushed before they are read.
	conn := db.Conn()
	defer conn.Close()

	const pid = "11111111-1111-4111-8111-111111111111"
	if _, err := conn.ExecContext(ctx, `ALTER TABLE jobs SET (autovacuum_enabled = false);
		INSERT INTO projects (pid, name) VALUES (?, 'shop');
		INSERT INTO spiders (project_id, name) VALUES (?, 'quotes'), (?, 'books');
		INSERT INTO jobs (project_id, spider_id, status) SELECT ?, 1, 'COMPLETED' FROM generate_series(1, 2000);
		ANALYZE jobs`, pid, pid, pid, pid); err != nil {
		t.Fatal(err)
	}
	entriesRead := func() int64 {
		t.Helper()
		if _, err := conn.ExecContext(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		var n int64
		if _, err := conn.QueryOneContext(ctx, pg.Scan(&n), `SELECT pg_stat_clear_snapshot();
			SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'jobs_spider_seq_idx'`); err != nil {
			t.Fatal(err)
		}
		return n
	}

	const n = 3000
	before := entriesRead()
	if _, err := conn.ExecContext(ctx, `INSERT INTO jobs (project_id, spider_id, status)
		SELECT ?, 2, 'COMPLETED' FROM generate_series(1, ?)`, pid, n); err != nil {
		t.Fatal(err)
	}
	if read := entriesRead() - before; read > 2*n {
		t.Errorf("inserting %d jobs into a new spider read %d entries of its job number index, want at most %d", n, read, 2*n)
	}
	var count, distinct int64
	if _, err := conn.QueryOneContext(ctx, pg.Scan(&count, &distinct),
		"SELECT spider_job_count(2), count(DISTINCT seq) FROM jobs WHERE spider_id = 2"); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("spider_job_count(2) = %d, want %d", count, n)
	}
	if distinct != n {
		t.Errorf("spider 2 has %d distinct job numbers, want %d", distinct, n)
	}
}

// A page of the job list reads the spider's job count once, then only the page's entries of
// the job number index, even when the statistics show no jobs. A plan made from such
// statistics read and sorted all 500 jobs, computing the count for each: 550 entries.
func TestListJobsReadsOnlyThePage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One connection, so that the test can flush the statistics of the list's session.
	st, err := store.Open(ctx, testenv.DatabaseURL(t), store.Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, quotes, _ := quotesAndBooks(t, st)
	if err := st.Exec(ctx, `INSERT INTO jobs (project_id, spider_id, status)
		SELECT ?, ?, 'COMPLETED' FROM generate_series(1, 500)`, p.PID, quotes); err != nil {
		t.Fatal(err)
	}
	entriesRead := func() int64 {
		t.Helper()
		if err := st.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		n, err := st.QueryInt64(ctx, `SELECT pg_stat_clear_snapshot();
			SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'jobs_spider_seq_idx'`)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The first call also prepares the statement on the connection; both are checked.
	for range 2 {
		before := entriesRead()
		jobs, total, err := st.ListJobs(ctx, p.PID, quotes, store.JobFilter{}, store.Page{Offset: 100, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 50 || total != 500 || jobs[0].Seq != 400 {
			t.Fatalf("page 3 = %d jobs of %d, first number %d; want 50 of 500 from 400", len(jobs), total, jobs[0].Seq)
		}
		if read := entriesRead() - before; read > 60 {
			t.Errorf("a page of 50 jobs read %d entries of the job number index, want at most 60", read)
		}
	}
}

// The job list's statement is planned once per connection. Its plan must read only the
// page's entries of the job number index, also with statistics taken before the spider's jobs
// were inserted. The cases take them with an empty table, with another spider's jobs, and
// with many spiders of a few jobs each.
func TestListJobsWithStaleStatistics(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, before string }{
		{"empty table", ""},
		{"another spider's jobs", `INSERT INTO jobs (project_id, spider_id, status)
			SELECT ?0, ?2, 'COMPLETED' FROM generate_series(1, 2000)`},
		{"many small spiders", `INSERT INTO spiders (project_id, name) SELECT ?0, 's' || g FROM generate_series(1, 500) g;
			INSERT INTO jobs (project_id, spider_id, status) SELECT ?0, s.sid, 'COMPLETED'
			FROM spiders s, generate_series(1, 2) WHERE s.name LIKE 's%'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			// One connection, which prepares the statements and whose statistics are flushed.
			st, err := store.Open(ctx, testenv.DatabaseURL(t), store.Options{PoolSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			owner, p, _ := fixture(t, st, "quotes", "books")
			spiders, _, err := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			quotes, books := spiders[0].SID, spiders[1].SID
			if err := st.Exec(ctx, "ALTER TABLE jobs SET (autovacuum_enabled = false)"); err != nil {
				t.Fatal(err)
			}
			if tt.before != "" {
				if err := st.Exec(ctx, tt.before, p.PID, quotes, books); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Exec(ctx, `ANALYZE jobs; INSERT INTO jobs (project_id, spider_id, status)
				SELECT ?, ?, 'COMPLETED' FROM generate_series(1, 2000)`, p.PID, quotes); err != nil {
				t.Fatal(err)
			}
			key, err := st.CreateUserToken(ctx, owner.ID)
			if err != nil {
				t.Fatal(err)
			}
			rowsRead := func() int64 {
				t.Helper()
				if err := st.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
					t.Fatal(err)
				}
				n, err := st.QueryInt64(ctx, `SELECT pg_stat_clear_snapshot();
					SELECT coalesce(t.seq_tup_read, 0) + (SELECT coalesce(sum(i.idx_tup_read), 0) FROM pg_stat_user_indexes i
						WHERE i.relid = t.relid)::bigint
					FROM pg_stat_user_tables t WHERE t.relname = 'jobs'`)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			// The first call of each statement also prepares it; both calls are checked.
			for _, byToken := range []bool{false, true, false, true} {
				before := rowsRead()
				var list *store.JobList
				if byToken {
					list, err = st.ListJobsForToken(ctx, p.PID, quotes, key, store.JobFilter{}, store.Page{Offset: 1000, Limit: 50})
				} else {
					list, err = st.ListJobsFor(ctx, p.PID, quotes, owner.ID, store.JobFilter{}, store.Page{Offset: 1000, Limit: 50})
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(list.Jobs) != 50 || list.Count != 2000 || list.Jobs[0].Seq != 1000 {
					t.Fatalf("page 21 = %d jobs of %d, first number %d; want 50 of 2,000 from 1,000", len(list.Jobs), list.Count, list.Jobs[0].Seq)
				}
				if read := rowsRead() - before; read > 60 {
					t.Errorf("by token %t: a page of 50 jobs read %d rows and index entries of jobs, want at most 60", byToken, read)
				}
			}
		})
	}
}

// ownedSpiderWithJob makes a project of the spider quotes with one queued job, and returns the
// owner, the project, the spider's id and the job.
func ownedSpiderWithJob(t *testing.T, st *store.Store) (*store.User, *store.Project, int64, *store.Job) {
	t.Helper()
	ctx := context.Background()
	owner, p, _ := fixture(t, st, "quotes")
	spiders, _, err := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	job := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	return owner, p, spiders[0].SID, job
}

func TestListJobsForReadsTheCallersRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	owner, p, sid, _ := ownedSpiderWithJob(t, st)
	outsider := &store.User{Username: "eve", Email: "eve@example.com", PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, outsider); err != nil {
		t.Fatal(err)
	}

	for _, f := range []store.JobFilter{{}, {Status: store.JobInQueue}} {
		list, err := st.ListJobsFor(ctx, p.PID, sid, owner.ID, f, store.Page{Limit: 10})
		if err != nil || list.CallerRole != store.RoleOwner || list.Count != 1 || len(list.Jobs) != 1 {
			t.Errorf("filter %+v: the owner's list = %+v, %v; want role OWNER and 1 job", f, list, err)
		}
		list, err = st.ListJobsFor(ctx, p.PID, sid, outsider.ID, f, store.Page{Limit: 10})
		if err != nil || list.CallerRole != "" {
			t.Errorf("filter %+v: an outsider's list = %+v, %v; want no role", f, list, err)
		}
	}
	if err := st.DeleteProject(ctx, p.PID); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.JobFilter{{}, {Status: store.JobInQueue}} {
		if _, err := st.ListJobsFor(ctx, p.PID, sid, owner.ID, f, store.Page{Limit: 10}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("filter %+v: list of a deleted project's spider = %v, want ErrNotFound", f, err)
		}
	}
}

// ListJobsForToken finds the caller by the token's key, and only an active user's token finds
// one.
func TestListJobsForTokenReadsItsUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	owner, p, sid, job := ownedSpiderWithJob(t, st)
	admin := &store.User{Username: "root", Email: "root@example.com", PasswordHash: "x", IsActive: true, IsSuperuser: true}
	inactive := &store.User{Username: "gone", Email: "gone@example.com", PasswordHash: "x"}
	keys := map[string]string{}
	var err error
	for name, u := range map[string]*store.User{"admin": admin, "inactive": inactive} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if keys[name], err = st.CreateUserToken(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddMember(ctx, p.PID, inactive.ID, store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if keys["owner"], err = st.CreateUserToken(ctx, owner.ID); err != nil {
		t.Fatal(err)
	}
	if keys["job"], err = st.CreateJobToken(ctx, job.JID); err != nil {
		t.Fatal(err)
	}
	keys["unknown"] = "0123456789abcdef"

	for _, f := range []store.JobFilter{{}, {Status: store.JobInQueue}} {
		for name, want := range map[string]struct {
			caller *store.User
			role   string
		}{
			"owner":    {&store.User{ID: owner.ID}, store.RoleOwner},
			"admin":    {&store.User{ID: admin.ID, IsSuperuser: true}, ""},
			"inactive": {nil, ""},
			"job":      {nil, ""},
			"unknown":  {nil, ""},
		} {
			list, err := st.ListJobsForToken(ctx, p.PID, sid, keys[name], f, store.Page{Limit: 10})
			if err != nil || list.Count != 1 || len(list.Jobs) != 1 {
				t.Fatalf("filter %+v, %s: %+v, %v; want the spider's job", f, name, list, err)
			}
			if diff := cmp.Diff(want.caller, list.Caller, cmpopts.IgnoreUnexported(store.User{})); diff != "" || list.CallerRole != want.role {
				t.Errorf("filter %+v, %s: role %q, caller (-want +got):\n%s", f, name, list.CallerRole, diff)
			}
		}
	}
	if _, err := st.ListJobsForToken(ctx, p.PID, 999999, keys["owner"], store.JobFilter{}, store.Page{Limit: 10}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("list of an unknown spider = %v, want ErrNotFound", err)
	}
}
