package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
)

func TestJobLogFiltersAndDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	j := f.job()
	lines := []json.RawMessage{
		json.RawMessage(`{"log": "[scrapy.core.engine] INFO: Spider opened", "datetime": 1}`),
		json.RawMessage(`{"log": "[quotes] ERROR: Page timed out", "datetime": 2}`),
		json.RawMessage(`{"log": "[quotes] INFO: parsed page 1", "datetime": 3}`),
	}
	if _, err := f.st.IngestBatch(ctx, j.JID, store.DataLogs, "logs-1", lines); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.IngestBatch(ctx, j.JID, store.DataItems, "items-1", []json.RawMessage{json.RawMessage(`{"n": 1}`)}); err != nil {
		t.Fatal(err)
	}
	base := f.jobURL(j) + "/data?type=logs"

	tests := []struct {
		query string
		count float64
	}{
		{"", 3}, {"&level=error", 1}, {"&level=ALL", 3}, {"&search=PAGE", 2}, {"&level=INFO&search=page", 1}, {"&level=WARNING", 0},
	}
	for _, tt := range tests {
		r := f.get("viewer", base+tt.query)
		if r.status != http.StatusOK || r.body["count"] != tt.count {
			t.Errorf("logs%s: %d, count %v, want %v: %s", tt.query, r.status, r.body["count"], tt.count, r.raw)
		}
	}

	// The database would drop a NUL from the search text, so "PA%00GE" matched "PAGE".
	for _, path := range []string{base, "/api/projects", "/api/projects/" + f.p + "/spiders?page=1"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		for _, search := range []string{"PA%00GE", "%FF"} {
			r := f.get("viewer", path+sep+"search="+search)
			expectField(t, r, "search", path+" with search "+search)
		}
	}

	// As in estela, job data takes page sizes of 1 to 100 and rejects others.
	for _, size := range []string{"0", "101", "abc"} {
		r := f.get("viewer", f.jobURL(j)+"/data?type=logs&page_size="+size)
		expectField(t, r, "page_size", "data page size "+size)
		if !strings.Contains(r.raw, "between 1 and 100") {
			t.Errorf("data page size %s: %s, want the range named", size, r.raw)
		}
	}
	if r := f.get("viewer", f.jobURL(j)+"/data?type=logs&page_size=100"); r.status != http.StatusOK {
		t.Errorf("data page size 100: %d %s, want 200", r.status, r.raw)
	}
	bad := f.get("viewer", f.jobURL(j)+"/data?type=pictures&page=0&page_size=101")
	for _, field := range []string{"type", "page", "page_size"} {
		expectField(t, bad, field, "three invalid data parameters")
	}

	del := f.jobURL(j) + "/data/delete?type=logs"
	expectStatus(t, f.do("viewer", http.MethodPost, del, "", nil), http.StatusForbidden, "viewer deletes data")
	r := f.do("developer", http.MethodPost, del, "", nil)
	if r.status != http.StatusOK || r.body["deleted"] != float64(3) {
		t.Errorf("delete logs: %d %s, want 3 deleted", r.status, r.raw)
	}
	expectStatus(t, f.do("developer", http.MethodPost, del, "", nil), http.StatusNotFound, "delete logs again")
	expectField(t, f.do("developer", http.MethodPost, f.jobURL(j)+"/data/delete?type=pictures", "", nil), "type", "unknown type")
	if got := f.get("viewer", f.jobURL(j)); got.body["data_status"] != "PERSISTENT" {
		t.Errorf("job with items left has data_status %v, want PERSISTENT", got.body["data_status"])
	}
	expectStatus(t, f.do("developer", http.MethodPost, f.jobURL(j)+"/data/delete?type=items", "", nil), http.StatusOK, "delete items")
	if got := f.get("viewer", f.jobURL(j)); got.body["data_status"] != "DELETED" {
		t.Errorf("job without data has data_status %v, want DELETED", got.body["data_status"])
	}
}

func TestJobErrorLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	j := f.job()
	r := f.get("viewer", f.jobURL(j)+"/error_logs")
	if r.status != http.StatusOK || r.raw != "{\"logs\":null}\n" {
		t.Errorf("error_logs of a queued job: %d %s, want logs null", r.status, r.raw)
	}
	reason, status := "ValueError: missing category", "ERROR"
	if _, err := f.st.UpdateJob(ctx, j.JID, store.JobUpdate{FromStatus: "IN_QUEUE", Status: &status, ErrorReason: &reason}); err != nil {
		t.Fatal(err)
	}
	r = f.get("viewer", f.jobURL(j)+"/error_logs")
	if r.body["logs"] != reason {
		t.Errorf("error_logs of a failed job: %s, want the reason", r.raw)
	}
}

func TestProjectOrdering(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, name := range []string{"alpha", "zulu"} {
		expectStatus(t, f.json("admin", http.MethodPost, "/api/projects", map[string]string{"name": name}), http.StatusCreated, "create "+name)
	}
	names := func(query string) []string {
		r := f.get("admin", "/api/projects"+query)
		var out []string
		for _, p := range r.body["results"].([]any) {
			out = append(out, p.(map[string]any)["name"].(string))
		}
		return out
	}
	if got := names("?ordering=-name"); got[0] != "zulu" || got[len(got)-1] != "alpha" {
		t.Errorf("ordering=-name gives %v, want zulu first and alpha last", got)
	}
	if got := names("?ordering=name"); got[0] != "alpha" {
		t.Errorf("ordering=name gives %v, want alpha first", got)
	}
	expectField(t, f.get("admin", "/api/projects?ordering=size"), "ordering", "unknown ordering")
}
