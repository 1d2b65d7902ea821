package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

func items(t *testing.T, st *store.Store, jid int64) []string {
	t.Helper()
	page, err := st.JobDataPage(context.Background(), jid, store.DataItems, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range page {
		out = append(out, string(r.Data))
	}
	return out
}

// Runs of a cron job with a unique collection share their items, each stored once; their logs
// stay their own, and deleting one run's items leaves the others'.
func TestSharedCollectionItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	cron := &store.CronJob{ProjectID: p.PID, SpiderID: spiders[0].SID, Schedule: "0 3 * * *", Status: "ACTIVE", UniqueCollection: true, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := st.CreateCronJob(ctx, cron); err != nil {
		t.Fatalf("create cron job: %v", err)
	}
	first, err := st.CreateCronJobRun(ctx, cron.CJID)
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.CreateCronJobRun(ctx, cron.CJID)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(s string) json.RawMessage { return json.RawMessage(s) }

	if _, err := st.IngestBatch(ctx, first, store.DataItems, "a", []json.RawMessage{rec(`{"n": 1}`), rec(`{"n": 2}`), rec(`{"n": 1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IngestBatch(ctx, second, store.DataItems, "b", []json.RawMessage{rec(`{"n": 2}`), rec(`{"n": 3}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IngestBatch(ctx, second, store.DataLogs, "c", []json.RawMessage{rec(`{"log": "x"}`)}); err != nil {
		t.Fatal(err)
	}
	want := `[{"n":1} {"n":2} {"n":3}]`
	for _, jid := range []int64{first, second} {
		if got := items(t, st, jid); len(got) != 3 || want != "["+got[0]+" "+got[1]+" "+got[2]+"]" {
			t.Errorf("items seen from run %d = %v, want %s", jid, got, want)
		}
		if n, _ := st.CountJobData(ctx, jid, store.DataItems); n != 3 {
			t.Errorf("item count seen from run %d = %d, want 3", jid, n)
		}
	}
	var out bytes.Buffer
	if err := st.ExportJobData(ctx, first, store.DataItems, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n" {
		t.Errorf("export of the collection = %q", got)
	}
	// Storage counts what each run stored: {"n":1} and {"n":2} for the first (7 bytes each),
	// {"n":3} and the log line {"log":"x"} (11 bytes) for the second.
	for jid, want := range map[int64]int64{first: 14, second: 7 + 11} {
		if j, err := st.JobByID(ctx, jid); err != nil || j.StorageBytes != want {
			t.Errorf("storage of run %d = %d, %v; want %d", jid, j.StorageBytes, err, want)
		}
	}
	if n, _ := st.CountJobData(ctx, first, store.DataLogs); n != 0 {
		t.Errorf("run %d sees %d log lines of another run, want 0", first, n)
	}
	// The reply counts what was stored: {"n":3} is in the collection already, and the second
	// {"n":4} repeats the first.
	if stored, _, err := st.IngestArray(ctx, second, store.DataItems, "d", []byte(`[{"n": 3}, {"n": 4}, {"n": 4}]`)); err != nil || stored != 1 {
		t.Errorf("batch with one new item: stored %d, %v; want 1", stored, err)
	}
	if _, err := st.DeleteJobData(ctx, first, store.DataItems); err != nil {
		t.Fatal(err)
	}
	if got := items(t, st, second); len(got) != 2 || got[0] != `{"n":3}` || got[1] != `{"n":4}` {
		t.Errorf("items after deleting run %d's = %v, want the other run's {\"n\":3} and {\"n\":4}", first, got)
	}
}
