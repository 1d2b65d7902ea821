package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/store"
)

// statsDay is the local day that the stats tests put their jobs on.
var statsDay = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

// jobAt creates a job of a spider created at a given time, moves it to status, sets its
// counters and stores its final Scrapy stats when stats is not empty.
func (f *fixture) jobAt(pid string, sid int64, created time.Time, status string, counters store.JobUpdate, stats string) *store.Job {
	f.t.Helper()
	ctx := context.Background()
	j := &store.Job{ProjectID: pid, SpiderID: sid, DataStatus: "PERSISTENT", ResourceTier: "LARGE", Created: created}
	if err := f.st.CreateJob(ctx, j); err != nil {
		f.t.Fatal(err)
	}
	counters.FromStatus, counters.Status = store.JobInQueue, &status
	if _, err := f.st.UpdateJob(ctx, j.JID, counters); err != nil {
		f.t.Fatal(err)
	}
	if stats != "" {
		if err := f.st.SaveJobStats(ctx, j.JID, json.RawMessage(stats)); err != nil {
			f.t.Fatal(err)
		}
	}
	return j
}

func int64Ptr(n int64) *int64 { return &n }

// decode unmarshals a raw response body into v.
func decode(t *testing.T, r response, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.raw), v); err != nil {
		t.Fatalf("decode %s: %v", r.raw, err)
	}
}

// statsJobs puts two jobs of project P on statsDay, one on the next day at 02:00 UTC (still
// statsDay in UTC-5), and one job of project Q on statsDay.
func (f *fixture) statsJobs() (completed, failed *store.Job) {
	completed = f.jobAt(f.p, f.pSpider, statsDay.Add(9*time.Hour), store.JobCompleted,
		store.JobUpdate{LifespanMicros: int64Ptr(90e6), ItemCount: int64Ptr(12)},
		`{"item_scraped_count": 12, "elapsed_time_seconds": 88.5, "response_received_count": 20,
		  "downloader/response_status_count/200": 15, "downloader/response_status_count/404": 5,
		  "log_count/INFO": 7, "log_count/WARNING": 2, "log_count/ERROR": 1,
		  "coverage": {"total_items": 12, "total_items_coverage": 75.5}}`)
	failed = f.jobAt(f.p, f.pSpider, statsDay.Add(10*time.Hour), store.JobError,
		store.JobUpdate{LifespanMicros: int64Ptr(30e6), ItemCount: int64Ptr(4)},
		`{"item_scraped_count": 4, "response_received_count": 6, "downloader/response_status_count/200": 6,
		  "downloader/response_status_count/500": 3, "log_count/CRITICAL": 1}`)
	f.jobAt(f.p, f.pSpider, statsDay.Add(26*time.Hour), store.JobRunning, store.JobUpdate{}, "")
	f.jobAt(f.q, f.qSpider, statsDay.Add(9*time.Hour), store.JobCompleted, store.JobUpdate{ItemCount: int64Ptr(500)}, `{"item_scraped_count": 500}`)
	return completed, failed
}

type statsDayBody struct {
	Date  string         `json:"date"`
	Stats map[string]any `json:"stats"`
}

func TestProjectStats(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.statsJobs()
	path := "/api/stats/" + f.p + "?start_date=2026-03-10&end_date=2026-03-10"

	r := f.get("viewer", path)
	expectStatus(t, r, http.StatusOK, "project stats")
	var days []statsDayBody
	decode(t, r, &days)
	if len(days) != 1 {
		t.Fatalf("project stats = %s, want one day", r.raw)
	}
	if days[0].Date != "2026-03-10T00:00:00" {
		t.Errorf("date = %q, want 2026-03-10T00:00:00", days[0].Date)
	}
	want := map[string]any{
		"jobs": map[string]any{"total_jobs": 2.0, "waiting_jobs": 0.0, "running_jobs": 0.0, "stopped_jobs": 0.0,
			"completed_jobs": 1.0, "in_queue_jobs": 0.0, "error_jobs": 1.0},
		"pages":        map[string]any{"total_pages": 26.0, "scraped_pages": 21.0, "missed_pages": 5.0},
		"items_count":  16.0,
		"runtime":      "00:02:00",
		"success_rate": 50.0,
		"status_codes": map[string]any{"status_200": 21.0, "status_301": 0.0, "status_302": 0.0, "status_401": 0.0,
			"status_403": 0.0, "status_404": 5.0, "status_429": 0.0, "status_500": 3.0},
		"logs": map[string]any{"total_logs": 11.0, "debug_logs": 0.0, "info_logs": 7.0, "warning_logs": 2.0,
			"error_logs": 1.0, "critical_logs": 1.0},
		"coverage": map[string]any{"total_items": 12.0, "total_items_coverage": 75.5},
	}
	if diff := cmp.Diff(want, days[0].Stats); diff != "" {
		t.Errorf("stats of 2026-03-10 (-want +got):\n%s", diff)
	}

	r = f.get("viewer", "/api/stats/"+f.p+"?start_date=2026-03-10&end_date=2026-03-11")
	decode(t, r, &days)
	if len(days) != 2 || days[0].Date != "2026-03-11T00:00:00" {
		t.Errorf("two days of stats = %s, want 2026-03-11 first", r.raw)
	}
	r = f.get("viewer", "/api/stats/"+f.p+"?start_date=2026-03-10&end_date=2026-03-10&offset=300")
	decode(t, r, &days)
	if len(days) != 1 || days[0].Stats["jobs"].(map[string]any)["total_jobs"] != 3.0 {
		t.Errorf("stats in UTC-5 = %s, want all three jobs on 2026-03-10", r.raw)
	}
	if r := f.get("viewer", "/api/stats/"+f.p+"?start_date=2026-01-01&end_date=2026-01-31"); r.raw != "[]\n" {
		t.Errorf("stats of a month without jobs = %s, want []", r.raw)
	}
}

func TestStatsQueryValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const dateMessage = "Invalid date format. Please provide dates in the format YYYY-MM-DD."
	tests := []struct {
		name, query, field, message string
	}{
		{"bad start date", "start_date=2026-13-01", "start_date", dateMessage},
		{"datetime end date", "end_date=2026-03-10T00:00:00Z", "end_date", dateMessage},
		{"offset not a number", "offset=five", "offset", "Invalid 'offset' parameter. Must be an integer."},
		{"offset over a day", "offset=1500", "offset", "Invalid 'offset' parameter. Must be between -1440 and 1440 minutes."},
		{"end before start", "start_date=2026-03-10&end_date=2026-03-09", "end_date", "end_date must not be before start_date."},
	}
	for _, path := range []string{"/api/stats/" + f.p, fmt.Sprintf("/api/stats/%s/spider/%d/jobs", f.p, f.pSpider), "/api/stats/" + f.p + "/spiders"} {
		for _, tt := range tests {
			r := f.get("viewer", path+"?"+tt.query)
			expectField(t, r, tt.field, path+": "+tt.name)
			if r.body["error"] != tt.message {
				t.Errorf("%s: %s: error = %v, want %q", path, tt.name, r.body["error"], tt.message)
			}
		}
	}
	expectField(t, f.get("viewer", "/api/stats/"+f.p+"/spiders?page_size=0"), "page_size", "page_size 0")
	expectField(t, f.get("viewer", "/api/stats/"+f.p+"/spiders?page=x"), "page", "page x")
}

func TestStatsPermissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.statsJobs()
	days := "?start_date=2026-03-10&end_date=2026-03-10"
	spider := fmt.Sprintf("/api/stats/%s/spider/%d", f.p, f.pSpider)
	foreign := fmt.Sprintf("/api/stats/%s/spider/%d", f.p, f.qSpider)

	tests := []struct {
		name, user, path string
		want             int
	}{
		{"viewer reads project stats", "viewer", "/api/stats/" + f.p + days, http.StatusOK},
		{"viewer reads spider stats", "viewer", spider + days, http.StatusOK},
		{"viewer reads spider jobs", "viewer", spider + "/jobs" + days, http.StatusOK},
		{"viewer reads spiders", "viewer", "/api/stats/" + f.p + "/spiders" + days, http.StatusOK},
		{"admin reads any project", "admin", "/api/stats/" + f.q + days, http.StatusOK},
		{"outsider reads project stats", "outsider", "/api/stats/" + f.p + days, http.StatusForbidden},
		{"outsider reads spider jobs", "outsider", spider + "/jobs" + days, http.StatusForbidden},
		{"spider of another project", "viewer", foreign + days, http.StatusNotFound},
		{"jobs of a spider of another project", "viewer", foreign + "/jobs" + days, http.StatusNotFound},
		{"admin reads a spider of another project", "admin", foreign + "/jobs" + days, http.StatusNotFound},
		{"unknown project", "admin", "/api/stats/00000000-0000-4000-8000-000000000000" + days, http.StatusNotFound},
		{"no token", "", "/api/stats/" + f.p + days, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		expectStatus(t, f.get(tt.user, tt.path), tt.want, tt.name)
	}
}

func TestStatsSpiderJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	completed, failed := f.statsJobs()
	secret := &store.EnvVar{JobID: &completed.JID, Name: "TOKEN", Value: "job-secret", Masked: true}
	if err := f.st.CreateEnvVar(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/stats/%s/spider/%d/jobs?start_date=2026-03-10&end_date=2026-03-10&page_size=1", f.p, f.pSpider)

	r := f.get("viewer", path)
	expectStatus(t, r, http.StatusOK, "first page")
	var page struct {
		Count   int              `json:"count"`
		Next    *string          `json:"next"`
		Results []map[string]any `json:"results"`
	}
	decode(t, r, &page)
	if page.Count != 2 || page.Next == nil || len(page.Results) != 1 {
		t.Fatalf("first page = %s, want 1 of 2 jobs and a next link", r.raw)
	}
	if strings.Contains(r.raw, "job-secret") {
		t.Errorf("page shows a masked value: %s", r.raw)
	}
	newest := page.Results[0]
	if newest["jid"] != float64(failed.JID) || newest["job_status"] != "ERROR" || newest["name"] == nil {
		t.Errorf("newest job = %v, want the failed job %d with the job fields", newest, failed.JID)
	}
	wantStats := map[string]any{
		"items_count": 4.0, "runtime": "00:00:30", "success_rate": 0.0,
		"pages": map[string]any{"total_pages": 6.0, "scraped_pages": 6.0, "missed_pages": 0.0},
		"status_codes": map[string]any{"status_200": 6.0, "status_301": 0.0, "status_302": 0.0, "status_401": 0.0,
			"status_403": 0.0, "status_404": 0.0, "status_429": 0.0, "status_500": 3.0},
		"logs": map[string]any{"total_logs": 1.0, "debug_logs": 0.0, "info_logs": 0.0, "warning_logs": 0.0,
			"error_logs": 0.0, "critical_logs": 1.0},
	}
	if diff := cmp.Diff(wantStats, newest["stats"]); diff != "" {
		t.Errorf("stats of the failed job (-want +got):\n%s", diff)
	}

	r = f.get("viewer", strings.TrimPrefix(*page.Next, f.srv.URL))
	decode(t, r, &page)
	if len(page.Results) != 1 || page.Results[0]["jid"] != float64(completed.JID) {
		t.Fatalf("second page = %s, want the completed job", r.raw)
	}
	stats := page.Results[0]["stats"].(map[string]any)
	if stats["runtime"] != "00:01:28.500000" || stats["success_rate"] != 100.0 || stats["items_count"] != 12.0 {
		t.Errorf("stats of the completed job = %v, want Scrapy's elapsed time, 100 and 12 items", stats)
	}

	r = f.get("viewer", strings.Replace(path, "page_size=1", "page_size=1000", 1))
	decode(t, r, &page)
	if r.status != http.StatusOK || len(page.Results) != 2 || page.Next != nil {
		t.Errorf("page_size above the max: %d %s, want both jobs on one page", r.status, r.raw)
	}
	r = f.get("viewer", path+"&page=3")
	if r.status != http.StatusNotFound || r.body["detail"] != "Invalid page." {
		t.Errorf("page past the end: %d %s, want 404 Invalid page.", r.status, r.raw)
	}
}

func TestStatsSpiders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.statsJobs()

	r := f.get("viewer", "/api/stats/"+f.p+"/spiders?start_date=2026-03-10&end_date=2026-03-10")
	expectStatus(t, r, http.StatusOK, "spiders with jobs")
	var page struct {
		Count   int              `json:"count"`
		Results []map[string]any `json:"results"`
	}
	decode(t, r, &page)
	if page.Count != 1 || len(page.Results) != 1 || page.Results[0]["sid"] != float64(f.pSpider) || page.Results[0]["name"] != "quotes" {
		t.Errorf("spiders with jobs = %s, want spider %d of project P only", r.raw, f.pSpider)
	}
	r = f.get("viewer", "/api/stats/"+f.p+"/spiders?start_date=2026-03-12&end_date=2026-03-20")
	decode(t, r, &page)
	if page.Count != 0 || page.Results == nil {
		t.Errorf("spiders without jobs = %s, want count 0 and an empty list", r.raw)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	ended := f.jobAt(f.p, f.pSpider, time.Now().Add(-time.Hour), store.JobCompleted, store.JobUpdate{LifespanMicros: int64Ptr(2_500_000),
		TotalResponseBytes: int64Ptr(4096), ItemCount: int64Ptr(2), RequestCount: int64Ptr(3)}, "")
	f.jobAt(f.p, f.pSpider, time.Now(), store.JobRunning, store.JobUpdate{RequestCount: int64Ptr(1)}, "")
	f.jobAt(f.q, f.qSpider, time.Now(), store.JobCompleted, store.JobUpdate{ItemCount: int64Ptr(1000)}, "")
	item := json.RawMessage(`{"title": "a title long enough to be measured"}`)
	if _, err := f.st.IngestBatch(ctx, ended.JID, store.DataItems, "b1", []json.RawMessage{item, item}); err != nil {
		t.Fatal(err)
	}

	r := f.get("viewer", "/api/projects/"+f.p+"/current_usage")
	expectStatus(t, r, http.StatusOK, "current usage")
	want := map[string]any{"pid": f.p, "name": "shop", "network_usage": 4096.0, "processing_time": 2.5, "item_count": 2.0,
		"request_count": 4.0, "requests_data_size": 0.0, "logs_data_size": 0.0}
	got := map[string]any{}
	for k, v := range r.body {
		if k != "items_data_size" {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("current usage (-want +got):\n%s", diff)
	}
	if size, _ := r.body["items_data_size"].(float64); size < float64(2*len(item)) {
		t.Errorf("items_data_size = %v, want at least the %d bytes of the two items", r.body["items_data_size"], 2*len(item))
	}

	r = f.get("viewer", "/api/projects/"+f.p+"/usage")
	expectStatus(t, r, http.StatusOK, "usage of this month")
	var records []map[string]any
	decode(t, r, &records)
	if len(records) != 1 || records[0]["processing_time"] != "00:00:02.500000" || records[0]["request_count"] != 3.0 {
		t.Errorf("usage of this month = %s, want one snapshot of the ended job", r.raw)
	}
	r = f.get("viewer", "/api/projects/"+f.p+"/usage?start_date=2020-01-01&end_date=2020-01-31")
	if r.status != http.StatusOK || r.raw != "[]\n" {
		t.Errorf("usage of a month without jobs: %d %s, want []", r.status, r.raw)
	}
	expectField(t, f.get("viewer", "/api/projects/"+f.p+"/usage?start_date=yesterday"), "start_date", "usage with a bad start")
	expectField(t, f.get("viewer", "/api/projects/"+f.p+"/usage?start_date=2026-03-10&end_date=2026-03-01"), "end_date", "usage ending before it starts")
	expectStatus(t, f.get("outsider", "/api/projects/"+f.p+"/current_usage"), http.StatusForbidden, "outsider reads usage")
	expectStatus(t, f.get("outsider", "/api/projects/"+f.p+"/usage"), http.StatusForbidden, "outsider reads usage history")
}

func TestResourceStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	owner := &store.User{Username: "quota-owner", PasswordHash: "x", IsActive: true, MemoryQuota: 6144}
	if err := f.st.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	key, err := f.st.CreateUserToken(ctx, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.tokens["quota-owner"] = key
	first, firstSpider := f.project("first", owner.ID)
	second, secondSpider := f.project("second", owner.ID)
	f.jobAt(first, firstSpider, time.Now(), store.JobRunning, store.JobUpdate{}, "")   // LARGE: 1152 MiB
	f.jobAt(second, secondSpider, time.Now(), store.JobWaiting, store.JobUpdate{}, "") // LARGE: 1152 MiB
	f.jobAt(second, secondSpider, time.Now(), store.JobCompleted, store.JobUpdate{}, "")
	f.jobAt(f.p, f.pSpider, time.Now(), store.JobRunning, store.JobUpdate{}, "")

	r := f.get("quota-owner", "/api/projects/"+first+"/resource_status")
	expectStatus(t, r, http.StatusOK, "resource status")
	want := map[string]any{"memory_used": 2304.0, "memory_quota": 6144.0, "used_pct": 37.5}
	if diff := cmp.Diff(want, r.body); diff != "" {
		t.Errorf("resource status (-want +got):\n%s", diff)
	}
	expectStatus(t, f.get("viewer", "/api/projects/"+first+"/resource_status"), http.StatusForbidden, "non-member reads resource status")
	r = f.get("viewer", "/api/projects/"+f.p+"/resource_status")
	if r.status != http.StatusOK || r.body["memory_used"] != 1152.0 || r.body["used_pct"] != 0.0 {
		t.Errorf("resource status of an owner without quota: %d %s, want 1152 MiB used and 0 %%", r.status, r.raw)
	}
}
