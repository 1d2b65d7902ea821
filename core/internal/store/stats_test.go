package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// statsJob creates a job of a spider created at a given time, moves it to status and stores
// its counters and final stats when stats is not empty.
func statsJob(t *testing.T, st *store.Store, pid string, sid int64, created time.Time, status string, counters store.JobUpdate, stats string) *store.Job {
	t.Helper()
	ctx := context.Background()
	j := &store.Job{ProjectID: pid, SpiderID: sid, DataStatus: "PERSISTENT", ResourceTier: "SMALL", Created: created}
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatalf("create job: %v", err)
	}
	counters.FromStatus = store.JobInQueue
	counters.Status = &status
	if _, err := st.UpdateJob(ctx, j.JID, counters); err != nil {
		t.Fatalf("update job %d: %v", j.JID, err)
	}
	if stats != "" {
		if err := st.SaveJobStats(ctx, j.JID, json.RawMessage(stats)); err != nil {
			t.Fatalf("save stats of job %d: %v", j.JID, err)
		}
	}
	return j
}

func ptr[T any](v T) *T { return &v }

func TestDailyStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, books := quotesAndBooks(t, st)
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

	// Two jobs on 10 March UTC, one at 02:00 UTC on 11 March, which is 10 March in UTC-5.
	statsJob(t, st, p.PID, quotes, day.Add(9*time.Hour), store.JobCompleted, store.JobUpdate{LifespanMicros: ptr[int64](90e6), ItemCount: ptr[int64](99)},
		`{"item_scraped_count": 12, "response_received_count": 20, "downloader/response_status_count/200": 15,
		  "downloader/response_status_count/404": 5, "log_count/INFO": 7, "log_count/ERROR": 1,
		  "coverage": {"total_items": 12, "total_items_coverage": 80.0}}`)
	statsJob(t, st, p.PID, books, day.Add(10*time.Hour), store.JobError, store.JobUpdate{LifespanMicros: ptr[int64](30e6), ItemCount: ptr[int64](3)},
		`{"item_scraped_count": "4", "response_received_count": 6, "downloader/response_status_count/200": 6, "log_count/INFO": "not a number"}`)
	statsJob(t, st, p.PID, quotes, day.Add(26*time.Hour), store.JobRunning, store.JobUpdate{ItemCount: ptr[int64](2)}, "")
	statsJob(t, st, p.PID, quotes, day.Add(-time.Hour), store.JobCompleted, store.JobUpdate{}, `{"item_scraped_count": 1000}`)

	window := store.StatsWindow{ProjectID: p.PID, From: day, To: day.AddDate(0, 0, 2)}
	days, err := st.DailyStats(ctx, window)
	if err != nil {
		t.Fatalf("daily stats: %v", err)
	}
	want := []store.DayStats{
		{Day: "2026-03-11", JobCounts: store.JobCounts{TotalJobs: 1, RunningJobs: 1}, ScrapyCounters: store.ScrapyCounters{Items: 2}},
		{Day: "2026-03-10", JobCounts: store.JobCounts{TotalJobs: 2, CompletedJobs: 1, ErrorJobs: 1},
			ScrapyCounters: store.ScrapyCounters{Items: 16, RuntimeMicros: 120e6, TotalPages: 26, ScrapedPages: 21,
				Status200: 21, Status404: 5, InfoLogs: 7, ErrorLogs: 1, CoverageItems: 12, CoveragePercent: 80}},
	}
	if diff := cmp.Diff(want, days); diff != "" {
		t.Errorf("daily stats (-want +got):\n%s", diff)
	}

	window.OffsetMinutes = 300
	window.From, window.To = day.Add(5*time.Hour), day.Add(29*time.Hour)
	days, err = st.DailyStats(ctx, window)
	if err != nil {
		t.Fatalf("daily stats in UTC-5: %v", err)
	}
	if len(days) != 1 || days[0].Day != "2026-03-10" || days[0].TotalJobs != 3 {
		t.Errorf("daily stats in UTC-5 = %+v, want the three jobs on 2026-03-10", days)
	}

	window.SpiderID = books
	days, err = st.DailyStats(ctx, window)
	if err != nil || len(days) != 1 || days[0].TotalJobs != 1 || days[0].ErrorJobs != 1 {
		t.Errorf("daily stats of books = %+v, %v; want its one failed job", days, err)
	}
}

func TestJobsAndSpidersInWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	p, quotes, _ := quotesAndBooks(t, st)
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	first := statsJob(t, st, p.PID, quotes, day.Add(time.Hour), store.JobCompleted, store.JobUpdate{LifespanMicros: ptr[int64](5e6)},
		`{"elapsed_time_seconds": 61.5, "item_scraped_count": 3, "log_count/DEBUG": 4}`)
	second := statsJob(t, st, p.PID, quotes, day.Add(2*time.Hour), store.JobStopped, store.JobUpdate{LifespanMicros: ptr[int64](7e6)}, "")
	statsJob(t, st, p.PID, quotes, day.AddDate(0, 0, 3), store.JobCompleted, store.JobUpdate{}, "")
	window := store.StatsWindow{ProjectID: p.PID, From: day, To: day.AddDate(0, 0, 1)}

	found, count, err := st.SpidersWithJobs(ctx, window, store.Page{Limit: 10})
	if err != nil || count != 1 || len(found) != 1 || found[0].Name != "quotes" {
		t.Errorf("spiders with jobs = %+v, %d, %v; want quotes only", found, count, err)
	}
	window.SpiderID = quotes
	jobs, count, err := st.JobsInWindow(ctx, window, store.Page{Limit: 1})
	if err != nil || count != 2 || len(jobs) != 1 || jobs[0].JID != second.JID {
		t.Errorf("first page of jobs = %+v, %d, %v; want job %d of 2", jobs, count, err, second.JID)
	}

	counters, err := st.JobScrapyCounters(ctx, []int64{first.JID, second.JID})
	if err != nil {
		t.Fatalf("job counters: %v", err)
	}
	want := map[int64]store.ScrapyCounters{
		first.JID:  {Items: 3, RuntimeMicros: 61.5e6, DebugLogs: 4},
		second.JID: {RuntimeMicros: 7e6},
	}
	if diff := cmp.Diff(want, counters); diff != "" {
		t.Errorf("job counters (-want +got):\n%s", diff)
	}
	if _, err := st.SpiderOfProject(ctx, store.NewUUID(), quotes); err == nil {
		t.Error("spider found under another project")
	}
}

func TestProjectUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	sid := spiders[0].SID
	ended := statsJob(t, st, p.PID, sid, time.Now(), store.JobCompleted, store.JobUpdate{LifespanMicros: ptr[int64](2e6),
		TotalResponseBytes: ptr[int64](4096), ItemCount: ptr[int64](2), RequestCount: ptr[int64](3)}, "")
	running := statsJob(t, st, p.PID, sid, time.Now(), store.JobRunning, store.JobUpdate{RequestCount: ptr[int64](1)}, "")
	item := json.RawMessage(`{"title": "a book with a title long enough to be measured"}`)
	if _, err := st.IngestBatch(ctx, ended.JID, store.DataItems, "b1", []json.RawMessage{item, item}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.IngestBatch(ctx, running.JID, store.DataLogs, "b1", []json.RawMessage{json.RawMessage(`{"log": "x"}`)}); err != nil {
		t.Fatal(err)
	}

	total, err := st.ProjectUsage(ctx, p.PID)
	if err != nil {
		t.Fatalf("project usage: %v", err)
	}
	if total.NetworkBytes != 4096 || total.ItemCount != 2 || total.RequestCount != 4 || total.LifespanMicros != 2e6 {
		t.Errorf("usage counters = %+v, want both jobs' counters", total)
	}
	if total.ItemsDataSize < 2*int64(len(item)) || total.LogsDataSize == 0 || total.RequestsDataSize != 0 {
		t.Errorf("data sizes = %+v, want the two items (at least %d bytes) and the log line", total, 2*len(item))
	}

	today := time.Now().UTC().Truncate(24 * time.Hour)
	history, err := st.UsageHistory(ctx, p.PID, today, today.AddDate(0, 0, 1))
	if err != nil {
		t.Fatalf("usage history: %v", err)
	}
	if len(history) != 1 || history[0].RequestCount != 3 || history[0].ItemsDataSize != total.ItemsDataSize || history[0].LogsDataSize != 0 {
		t.Errorf("usage history = %+v, want one snapshot of the ended job only", history)
	}
	if history, _ := st.UsageHistory(ctx, p.PID, today.AddDate(0, 0, -3), today); len(history) != 0 {
		t.Errorf("usage history before any job ended = %+v, want none", history)
	}
}

func TestOwnerQuotaOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	alice, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	second := &store.Project{Name: "second", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT"}
	if err := st.CreateProject(ctx, second, alice.ID); err != nil {
		t.Fatal(err)
	}
	olga := &store.User{Username: "olga", PasswordHash: "x", IsActive: true, MemoryQuota: 2048}
	if err := st.CreateUser(ctx, olga); err != nil {
		t.Fatal(err)
	}
	third := &store.Project{Name: "third", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT"}
	if err := st.CreateProject(ctx, third, olga.ID); err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{store.JobWaiting, store.JobRunning, store.JobCompleted} {
		statsJob(t, st, p.PID, spiders[0].SID, time.Now(), status, store.JobUpdate{}, "")
	}

	tests := []struct {
		name string
		pid  string
		want *store.OwnerQuota
	}{
		{"project with active jobs", p.PID, &store.OwnerQuota{OwnerID: alice.ID, ActiveJobsByTier: map[string]int{"SMALL": 2}}},
		{"other project of the same owner", second.PID, &store.OwnerQuota{OwnerID: alice.ID, ActiveJobsByTier: map[string]int{"SMALL": 2}}},
		{"owner with a quota and no jobs", third.PID, &store.OwnerQuota{OwnerID: olga.ID, QuotaMi: 2048, ActiveJobsByTier: map[string]int{}}},
		{"project without owner", store.NewUUID(), &store.OwnerQuota{ActiveJobsByTier: map[string]int{}}},
	}
	for _, tt := range tests {
		got, err := st.OwnerQuotaOf(ctx, tt.pid)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
