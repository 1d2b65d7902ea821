package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// fixture creates a user, a project and a successful deploy with the given spiders.
func fixture(t *testing.T, st *store.Store, spiders ...string) (*store.User, *store.Project, *store.Deploy) {
	t.Helper()
	ctx := context.Background()
	u := &store.User{Username: "alice", Email: "alice@example.com", PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	p := &store.Project{Name: "shop", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT", DataExpiryDays: 1}
	if err := st.CreateProject(ctx, p, u.ID); err != nil {
		t.Fatalf("create project: %v", err)
	}
	d := &store.Deploy{ProjectID: p.PID, UserID: &u.ID}
	if err := st.CreateDeploy(ctx, d); err != nil {
		t.Fatalf("create deploy: %v", err)
	}
	if err := st.SucceedDeploy(ctx, d.DID, "/artifacts/1", spiders); err != nil {
		t.Fatalf("succeed deploy: %v", err)
	}
	return u, p, d
}

// quotesAndBooks makes a project with the spiders quotes and books and returns their ids.
func quotesAndBooks(t *testing.T, st *store.Store) (p *store.Project, quotes, books int64) {
	t.Helper()
	_, p, _ = fixture(t, st, "quotes", "books")
	spiders, _, err := st.ListSpiders(context.Background(), p.PID, "", store.Page{Limit: 10})
	if err != nil || len(spiders) != 2 {
		t.Fatalf("list spiders: %d spiders, error %v; want 2", len(spiders), err)
	}
	return p, spiders[0].SID, spiders[1].SID
}

// queuedJob makes a project with the spider quotes and returns a new job of it.
func queuedJob(t *testing.T, st *store.Store) *store.Job {
	t.Helper()
	ctx := context.Background()
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, err := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	if err != nil || len(spiders) != 1 {
		t.Fatalf("list spiders: %d spiders, error %v; want 1", len(spiders), err)
	}
	j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	return j
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	applied, err := st.Migrate(context.Background())
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("migrate on a migrated database applied %v, want nothing", applied)
	}
}

func TestSucceedDeploySyncsSpiders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	u, p, _ := fixture(t, st, "quotes", "books")

	second := &store.Deploy{ProjectID: p.PID, UserID: &u.ID}
	if err := st.CreateDeploy(ctx, second); err != nil {
		t.Fatalf("create deploy: %v", err)
	}
	if err := st.SucceedDeploy(ctx, second.DID, "/artifacts/2", []string{"quotes", "news"}); err != nil {
		t.Fatalf("succeed deploy: %v", err)
	}
	spiders, count, err := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	if err != nil {
		t.Fatalf("list spiders: %v", err)
	}
	var names []string
	for _, s := range spiders {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"quotes", "news"}, names); diff != "" {
		t.Errorf("live spiders (-want +got):\n%s", diff)
	}
	if count != 2 {
		t.Errorf("count = %d, want 2", count)
	}
	if err := st.SucceedDeploy(ctx, second.DID, "/again", nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("finishing a finished deploy: err = %v, want ErrConflict", err)
	}
	got, err := st.Deploy(ctx, p.PID, second.DID)
	if err != nil {
		t.Fatalf("load deploy: %v", err)
	}
	if got.SpidersCount != 2 || got.Username != "alice" || got.ArtifactRef != "/artifacts/2" {
		t.Errorf("deploy = %+v, want 2 spiders by alice at /artifacts/2", got)
	}
}

func TestJobScopedByPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	sid := spiders[0].SID
	j := &store.Job{ProjectID: p.PID, SpiderID: sid, DataStatus: "PERSISTENT", ResourceTier: "LARGE",
		Args: []store.Arg{{Name: "a", Value: "1"}}, Tags: []string{"daily"},
		EnvVars: []store.EnvVar{{Name: "K", Value: "v"}}}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	if _, err := st.Job(ctx, p.PID, sid, j.JID); err != nil {
		t.Fatalf("load job by its path: %v", err)
	}
	if _, err := st.Job(ctx, p.PID, sid+1, j.JID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load job under another spider: err = %v, want ErrNotFound", err)
	}
	if _, err := st.Job(ctx, store.NewUUID(), sid, j.JID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load job under another project: err = %v, want ErrNotFound", err)
	}
	jobs, count, err := st.ListJobs(ctx, p.PID, sid, store.JobFilter{Tag: "daily"}, store.Page{Limit: 10})
	if err != nil || count != 1 || len(jobs) != 1 || jobs[0].SpiderName != "quotes" {
		t.Errorf("list by tag = %v, %d, %v; want the one job of spider quotes", jobs, count, err)
	}
	if _, count, _ := st.ListJobs(ctx, p.PID, sid, store.JobFilter{Tag: "weekly"}, store.Page{Limit: 10}); count != 0 {
		t.Errorf("list by unknown tag counted %d jobs, want 0", count)
	}
}

func TestClaimJobOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	claimed, err := st.ClaimJob(ctx, j.JID)
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if claimed.Status != store.JobWaiting || claimed.DispatchAttempts != 1 {
		t.Errorf("claimed job = %s after %d attempts, want WAITING after 1", claimed.Status, claimed.DispatchAttempts)
	}
	if _, err := st.ClaimJob(ctx, j.JID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second claim: err = %v, want ErrConflict", err)
	}
}

func TestIngestBatchDeduplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	records := []json.RawMessage{
		json.RawMessage(`{"text": "tab\there", "n": 1}`),
		json.RawMessage(`{"text": "back\\slash and \"quote\"\nline", "n": 2}`),
	}
	for i, wantDup := range []bool{false, true} {
		dup, err := st.IngestBatch(ctx, j.JID, store.DataItems, "batch-1", records)
		if err != nil {
			t.Fatalf("ingest #%d: %v", i, err)
		}
		if dup != wantDup {
			t.Errorf("ingest #%d: duplicate = %v, want %v", i, dup, wantDup)
		}
	}
	n, err := st.CountJobData(ctx, j.JID, store.DataItems)
	if err != nil || n != 2 {
		t.Errorf("count = %d, %v; want 2", n, err)
	}
	page, err := st.JobDataPage(ctx, j.JID, store.DataItems, store.Page{Limit: 10})
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	for i, rec := range page {
		var got, want any
		_ = json.Unmarshal(rec.Data, &got)
		_ = json.Unmarshal(records[i], &want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record %d (-want +got):\n%s", i, diff)
		}
	}
	var out bytes.Buffer
	if err := st.ExportJobData(ctx, j.JID, store.DataItems, &out); err != nil {
		t.Fatalf("export: %v", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("export wrote %d lines, want 2: %q", len(lines), out.String())
	}
	for i, line := range lines {
		var got, want any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("export line %d is not JSON: %v: %q", i, err, line)
		}
		_ = json.Unmarshal(records[i], &want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("export line %d (-want +got):\n%s", i, diff)
		}
	}
	if _, err := st.IngestBatch(ctx, j.JID, store.DataItems, "batch-2", []json.RawMessage{json.RawMessage(`{bad`)}); err == nil {
		t.Error("ingest of invalid JSON succeeded, want an error")
	}
}

// A batch that fails after its transaction began must not leave the transaction open on a
// pooled connection, where the next batch would run inside it.
func TestIngestFailuresLeaveNoTransactionOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)

	// Postgres, not the array scan, rejects "tru", so the COPY fails inside the transaction.
	// A missing job fails the ledger statement that opens it.
	for i := range 20 {
		batch := fmt.Sprintf("bad-%d", i)
		if _, _, err := st.IngestArray(ctx, j.JID, store.DataItems, batch, []byte(`[{"ok": 1}, {"a": tru}]`)); !errors.Is(err, store.ErrInvalidRecords) {
			t.Fatalf("batch %s with invalid JSON: err = %v, want ErrInvalidRecords", batch, err)
		}
		if _, _, err := st.IngestArray(ctx, j.JID+1000, store.DataItems, batch, []byte(`[{"ok": 1}]`)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("batch %s of a missing job: err = %v, want ErrNotFound", batch, err)
		}
	}
	open, err := st.QueryInt64(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)
	if err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d connections idle in a transaction after the failed batches, want 0", open)
	}

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup := false
			_, dup, errs[i] = st.IngestArray(ctx, j.JID, store.DataItems, fmt.Sprintf("bad-%d", i), []byte(`[{"ok": 1}]`))
			if errs[i] == nil && dup {
				errs[i] = errors.New("reported as a duplicate: the failed batch was recorded")
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("batch bad-%d sent again with valid records: %v", i, err)
		}
	}
	if n, err := st.CountJobData(ctx, j.JID, store.DataItems); err != nil || n != 20 {
		t.Errorf("items stored = %d, %v; want the 20 of the valid batches", n, err)
	}
}

// Postgres stores \u0000 and lone surrogates in json, but every query that read them as text
// or jsonb failed. They are stored as \ufffd; a surrogate pair, and an escaped backslash
// followed by "u0000", stay.
func TestUnreadableEscapesStoredAsReplacementCharacter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	line := `[{"log": "2026-12-05 [quotes] WARNING: odd title Quote\u0000page caf\udce9 \ud83d\ude00", "k\u0000": "\\u0000 is text"}]`
	if _, _, err := st.IngestArray(ctx, j.JID, store.DataLogs, "logs-1", []byte(line)); err != nil {
		t.Fatalf("ingest log line: %v", err)
	}
	logs, n, err := st.FilteredLogs(ctx, j.JID, store.LogFilter{Level: "WARNING", Search: "title"}, store.Page{Limit: 10})
	if err != nil || n != 1 || len(logs) != 1 {
		t.Fatalf("warning lines = %d, %v; want the one line", n, err)
	}
	want := `{"log":"2026-12-05 [quotes] WARNING: odd title Quote\ufffdpage caf\ufffd \ud83d\ude00","k\ufffd":"\\u0000 is text"}`
	if string(logs[0].Data) != want {
		t.Errorf("stored line = %s, want %s", logs[0].Data, want)
	}

	stats := json.RawMessage(`{"last_title": "Quote\u0000page", "nested": {"v\u0000": ["\ud800"]}, "item_scraped_count": 3}`)
	if dup, err := st.IngestStats(ctx, j.JID, "stats-1", stats); err != nil || dup {
		t.Fatalf("save stats: duplicate %v, %v", dup, err)
	}
	if string(stats) != `{"last_title": "Quote\u0000page", "nested": {"v\u0000": ["\ud800"]}, "item_scraped_count": 3}` {
		t.Errorf("IngestStats changed its argument to %s", stats)
	}
	counters, err := st.JobScrapyCounters(ctx, []int64{j.JID})
	if err != nil {
		t.Fatalf("read stats counters: %v", err)
	}
	if counters[j.JID].Items != 3 {
		t.Errorf("stats counters = %+v, want 3 items", counters[j.JID])
	}
	if got, _ := st.JobStats(ctx, j.JID); !bytes.Contains(got, []byte(`Quote\ufffdpage`)) || bytes.Contains(got, []byte(`\u0000`)) || bytes.Contains(got, []byte(`\ud800`)) {
		t.Errorf("stored stats = %s, want \\u0000 and \\ud800 replaced", got)
	}
}

// A stats batch is recorded with the job's other batches, so a late retry of an older one
// cannot replace newer stats.
func TestIngestStatsDeduplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	if _, _, err := st.IngestArray(ctx, j.JID, store.DataItems, "b-1", []byte(`[{"n": 1}]`)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		batch, stats string
		duplicate    bool
	}{
		{"s-1", `{"n": 1}`, false},
		{"s-2", `{"n": 2}`, false},
		{"s-1", `{"n": 1}`, true},
		{"b-1", `{"n": 3}`, true},
	} {
		dup, err := st.IngestStats(ctx, j.JID, tt.batch, json.RawMessage(tt.stats))
		if err != nil || dup != tt.duplicate {
			t.Errorf("stats batch %s: duplicate %v, %v; want %v", tt.batch, dup, err, tt.duplicate)
		}
	}
	if got, _ := st.JobStats(ctx, j.JID); string(got) != `{"n": 2}` {
		t.Errorf("stats = %s, want those of batch s-2", got)
	}
	if n, err := st.CountJobData(ctx, j.JID, store.DataItems); err != nil || n != 1 {
		t.Errorf("items = %d, %v; want 1: stats batches are not items", n, err)
	}
}

// A job's storage size counts each backslash of its records once, though COPY rows double it.
func TestStorageBytesCountBackslashesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	j := queuedJob(t, st)
	record := `{"v":"` + strings.Repeat(`\\`, 1000) + `"}` // 2,008 bytes
	if _, _, err := st.IngestArray(ctx, j.JID, store.DataItems, "b-1", []byte("["+record+"]")); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	got, err := st.JobByID(ctx, j.JID)
	if err != nil {
		t.Fatal(err)
	}
	if got.StorageBytes != int64(len(record)) {
		t.Errorf("storage = %d bytes, want %d", got.StorageBytes, len(record))
	}
}

func TestClaimJobForLaunch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, d := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	newJob := func(vars ...store.EnvVar) *store.Job {
		j := &store.Job{ProjectID: p.PID, SpiderID: spiders[0].SID, DataStatus: "PERSISTENT", ResourceTier: "LARGE", EnvVars: vars}
		if err := st.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := newJob(store.EnvVar{Name: "B", Value: "2"}, store.EnvVar{Name: "A", Value: ""})

	launch, err := st.ClaimJobForLaunch(ctx, j.JID)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	claimed := launch.Job
	if launch.Artifact != "/artifacts/1" || claimed.Status != store.JobWaiting || claimed.SpiderName != "quotes" ||
		claimed.DeployID == nil || *claimed.DeployID != d.DID || claimed.DispatchAttempts != 1 {
		t.Errorf("claimed %+v with artifact %q; want WAITING, spider quotes, deploy %d, one attempt, /artifacts/1", claimed, launch.Artifact, d.DID)
	}
	if want := []store.LaunchEnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: ""}}; !cmp.Equal(want, launch.EnvVars) {
		t.Errorf("launch env vars = %v, want %v", launch.EnvVars, want)
	}
	if launch.SharedCollection != "" {
		t.Errorf("shared collection = %q, want none", launch.SharedCollection)
	}
	principal, err := st.Authenticate(ctx, launch.Token)
	if err != nil || principal.JobID != j.JID {
		t.Errorf("launch token authenticates as %+v, %v; want job %d", principal, err, j.JID)
	}
	if _, err := st.ClaimJobForLaunch(ctx, j.JID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second claim: err = %v, want ErrConflict", err)
	}

	if err := st.DeleteDeploy(ctx, d.DID); err != nil {
		t.Fatal(err)
	}
	orphan := newJob()
	launch, err = st.ClaimJobForLaunch(ctx, orphan.JID)
	if err != nil || launch.Artifact != "" || launch.Job.Status != store.JobWaiting || len(launch.EnvVars) != 0 {
		t.Errorf("claim without a deploy = %+v, %v; want WAITING, no artifact and no env vars", launch, err)
	}
}
