package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
)

// userID returns the id of a fixture user.
func (f *fixture) userID(name string) int64 {
	f.t.Helper()
	u, err := f.st.UserByUsername(context.Background(), name)
	if err != nil {
		f.t.Fatal(err)
	}
	return u.ID
}

// staffUser adds a staff user, who is not a superuser, and returns its name.
func (f *fixture) staffUser() string {
	f.t.Helper()
	ctx := context.Background()
	u := &store.User{Username: "staff", Email: "staff@example.com", PasswordHash: "x", IsActive: true, IsStaff: true}
	if err := f.st.CreateUser(ctx, u); err != nil {
		f.t.Fatal(err)
	}
	key, err := f.st.CreateUserToken(ctx, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.tokens[u.Username] = key
	return u.Username
}

func (f *fixture) activity(user, description string) {
	f.t.Helper()
	if _, err := f.st.RecordActivity(context.Background(), f.userID(user), f.p, description); err != nil {
		f.t.Fatal(err)
	}
}

func TestActivities(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	staff := f.staffUser()
	for i := 1; i <= 3; i++ {
		f.activity("owner", fmt.Sprintf("run Job-%d for spider quotes.", i))
	}
	f.activity(staff, "renamed project shop ("+f.p+") to shop.")
	path := "/api/projects/" + f.p + "/activities"

	r := f.get("viewer", path+"?page_size=2")
	expectStatus(t, r, http.StatusOK, "first page")
	var page struct {
		Results []map[string]any `json:"results"`
		Count   int              `json:"count"`
	}
	decode(t, r, &page)
	if page.Count != 4 || len(page.Results) != 2 {
		t.Fatalf("first page = %s, want 2 of 4 activities", r.raw)
	}
	newest := page.Results[0]
	if user := newest["user"].(map[string]any); user["username"] != "staff (admin)" || user["email"] != "staff@example.com" {
		t.Errorf("newest activity by %v, want staff (admin)", user)
	}
	if project := newest["project"].(map[string]any); project["pid"] != f.p || project["name"] != "shop" {
		t.Errorf("newest activity on %v, want project shop", project)
	}
	if created, _ := newest["created"].(string); len(created) != len("2006-01-02T15:04:05.000000Z") || !strings.HasSuffix(created, "Z") {
		t.Errorf("created = %q, want a time with 6 fractional digits and Z", created)
	}
	if page.Results[1]["description"] != "run Job-3 for spider quotes." {
		t.Errorf("second activity = %v, want the last run", page.Results[1])
	}
	if _, has := newest["next"]; has {
		t.Errorf("activity list has next: %s", r.raw)
	}

	r = f.get("viewer", path+"?page=9")
	decode(t, r, &page)
	if r.status != http.StatusOK || page.Count != 4 || len(page.Results) != 0 || page.Results == nil {
		t.Errorf("page past the end: %d %s, want 200 with no results and count 4", r.status, r.raw)
	}
	for _, query := range []string{"page_size=0", "page_size=101", "page_size=ten", "page=0", "page=-1", "page=9223372036854775807"} {
		r := f.get("viewer", path+"?"+query)
		if r.status != http.StatusBadRequest || r.body["error"] != "Invalid page size parameter." {
			t.Errorf("%s: %d %s, want 400 Invalid page size parameter.", query, r.status, r.raw)
		}
	}
	expectStatus(t, f.get("outsider", path), http.StatusForbidden, "outsider reads activities")
	expectStatus(t, f.get(staff, path), http.StatusOK, "staff reads activities")
	expectStatus(t, f.get("admin", "/api/projects/00000000-0000-4000-8000-000000000000/activities"), http.StatusNotFound, "activities of an unknown project")
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.activity("owner", "made a new Deploy #1.")
	f.activity("developer", "run Job-1 for spider quotes.")

	r := f.get("viewer", "/api/notifications")
	expectStatus(t, r, http.StatusOK, "viewer lists notifications")
	var page struct {
		Count   int              `json:"count"`
		Next    *string          `json:"next"`
		Results []map[string]any `json:"results"`
	}
	decode(t, r, &page)
	if page.Count != 2 || len(page.Results) != 2 || page.Results[0]["seen"] != false {
		t.Fatalf("viewer's notifications = %s, want 2 unseen", r.raw)
	}
	activity := page.Results[0]["activity"].(map[string]any)
	if activity["description"] != "run Job-1 for spider quotes." || activity["user"].(map[string]any)["username"] != "developer" {
		t.Errorf("newest notification = %v, want the developer's run", activity)
	}
	r = f.get("owner", "/api/notifications")
	decode(t, r, &page)
	if page.Count != 1 || page.Results[0]["activity"].(map[string]any)["description"] != "run Job-1 for spider quotes." {
		t.Errorf("owner's notifications = %s, want only the developer's run", r.raw)
	}
	expectField(t, f.get("viewer", "/api/notifications?page_size=x"), "page_size", "bad page size")

	nid := int64(page.Results[0]["nid"].(float64))
	own := fmt.Sprintf("/api/notifications/%d", nid)
	if r := f.get("owner", own); r.status != http.StatusOK || r.body["nid"] != float64(nid) {
		t.Errorf("owner reads own notification: %d %s", r.status, r.raw)
	}
	expectStatus(t, f.get("viewer", own), http.StatusNotFound, "viewer reads the owner's notification")
	expectStatus(t, f.json("viewer", http.MethodPatch, own, map[string]any{"seen": true}), http.StatusNotFound, "viewer marks the owner's notification")
	expectStatus(t, f.do("viewer", http.MethodDelete, own, "", nil), http.StatusNotFound, "viewer deletes the owner's notification")

	r = f.json("owner", http.MethodPut, own, map[string]any{"seen": true})
	if r.status != http.StatusOK || r.body["seen"] != true || r.body["nid"] != float64(nid) {
		t.Errorf("mark seen: %d %s, want 200 seen true", r.status, r.raw)
	}
	r = f.form("owner", http.MethodPatch, own, url.Values{"seen": {"false"}})
	if r.status != http.StatusOK || r.body["seen"] != false {
		t.Errorf("mark unseen with a form: %d %s, want 200 seen false", r.status, r.raw)
	}
	expectField(t, f.json("owner", http.MethodPatch, own, map[string]any{"seen": "maybe"}), "seen", "seen not a boolean")
	expectStatus(t, f.do("owner", http.MethodDelete, own, "", nil), http.StatusNoContent, "owner deletes own notification")
	expectStatus(t, f.get("owner", own), http.StatusNotFound, "deleted notification")

	r = f.json("owner", http.MethodPost, "/api/notifications", map[string]any{"activity": map[string]any{}})
	expectStatus(t, r, http.StatusMethodNotAllowed, "create a notification")
	if allow := r.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("create a notification: Allow %q, want \"GET, HEAD\"", allow)
	}
	expectStatus(t, f.get("", "/api/notifications"), http.StatusUnauthorized, "no token")
	jobToken, err := f.st.CreateJobToken(context.Background(), f.job().JID)
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, f.get(jobToken, "/api/notifications"), http.StatusForbidden, "job token lists notifications")
}

// proxyProvider creates a provider as the superuser and returns its path.
func (f *fixture) proxyProvider() string {
	f.t.Helper()
	r := f.json("admin", http.MethodPost, "/api/proxy_provider", map[string]any{
		"name": "residential_proxy", "description": "rotating", "username": "proxy-user", "password": "proxy-secret",
		"host": "proxy.example", "port": 8080,
	})
	if r.status != http.StatusCreated {
		f.t.Fatalf("create proxy provider: %d %s", r.status, r.raw)
	}
	return fmt.Sprintf("/api/proxy_provider/%d", int64(r.body["proxyid"].(float64)))
}

func TestProxyProviderManagement(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	staff := f.staffUser()
	body := map[string]any{"name": "datacenter_proxy", "password": "pw"}

	for _, user := range []string{"owner", staff} {
		expectStatus(t, f.json(user, http.MethodPost, "/api/proxy_provider", body), http.StatusForbidden, user+" creates a provider")
	}
	expectField(t, f.json("admin", http.MethodPost, "/api/proxy_provider", map[string]any{"description": "x"}), "name", "provider without name")
	expectField(t, f.json("admin", http.MethodPost, "/api/proxy_provider", map[string]any{"name": "p", "port": "99999"}), "port", "port out of range")
	path := f.proxyProvider()

	for _, user := range []string{"viewer", "outsider"} {
		list := f.get(user, "/api/proxy_provider")
		if list.status != http.StatusOK || list.body["count"] != 1.0 {
			t.Errorf("%s lists providers: %d %s, want 1", user, list.status, list.raw)
		}
		detail := f.get(user, path)
		expectStatus(t, detail, http.StatusOK, user+" reads a provider")
		for _, r := range []response{list, detail} {
			for _, secret := range []string{"proxy-secret", "proxy-user", "proxy.example", "password"} {
				if strings.Contains(r.raw, secret) {
					t.Errorf("%s sees %q in %s", user, secret, r.raw)
				}
			}
		}
	}

	expectField(t, f.json("owner", http.MethodPatch, path, map[string]any{"description": "mine"}), "level", "owner edits a provider")
	r := f.json("admin", http.MethodPatch, path, map[string]any{"description": "static", "port": "3128"})
	if r.status != http.StatusOK || r.body["description"] != "static" || r.body["name"] != "residential_proxy" {
		t.Errorf("superuser edits a provider: %d %s, want the new description and the old name", r.status, r.raw)
	}
	expectField(t, f.json("admin", http.MethodPut, path, map[string]any{"name": " "}), "name", "blank name")
	expectStatus(t, f.do("developer", http.MethodDelete, path, "", nil), http.StatusForbidden, "developer deletes a provider")
	expectStatus(t, f.do("admin", http.MethodDelete, path, "", nil), http.StatusNoContent, "superuser deletes a provider")
	expectStatus(t, f.get("viewer", path), http.StatusNotFound, "deleted provider")
	expectStatus(t, f.do("admin", http.MethodDelete, path, "", nil), http.StatusNotFound, "delete twice")
}

func TestProxyProviderApply(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := f.proxyProvider()
	project := func(pid string) map[string]any {
		return map[string]any{"level": "project", "project_or_spider_id": pid}
	}
	spider := func(sid any) map[string]any { return map[string]any{"level": "spider", "project_or_spider_id": sid} }

	tests := []struct {
		name string
		user string
		body map[string]any
		want int
	}{
		{"viewer applies to own project", "viewer", project(f.p), http.StatusForbidden},
		{"outsider applies to another project", "outsider", project(f.p), http.StatusForbidden},
		{"developer applies to another project", "developer", project(f.q), http.StatusForbidden},
		{"developer applies to a spider of another project", "developer", spider(fmt.Sprint(f.qSpider)), http.StatusForbidden},
		{"viewer applies to a spider", "viewer", spider(f.pSpider), http.StatusForbidden},
		{"unknown project", "developer", project("00000000-0000-4000-8000-000000000000"), http.StatusNotFound},
		{"unknown spider", "developer", spider("999999"), http.StatusNotFound},
		{"unknown provider", "developer", project(f.p), http.StatusNotFound},
	}
	for _, tt := range tests {
		target := path
		if tt.name == "unknown provider" {
			target = "/api/proxy_provider/999999"
		}
		expectStatus(t, f.json(tt.user, http.MethodPut, target, tt.body), tt.want, tt.name)
	}
	expectField(t, f.json("developer", http.MethodPut, path, map[string]any{"level": "job", "project_or_spider_id": "1"}), "level", "level job")
	expectField(t, f.json("developer", http.MethodPut, path, map[string]any{"project_or_spider_id": f.p}), "level", "no level")
	expectField(t, f.json("developer", http.MethodPut, path, map[string]any{"level": "project"}), "project_or_spider_id", "no target")
	expectField(t, f.json("developer", http.MethodPut, path, project("shop")), "project_or_spider_id", "project id not a UUID")
	expectField(t, f.json("developer", http.MethodPut, path, spider("quotes")), "project_or_spider_id", "spider id not a number")

	r := f.json("developer", http.MethodPut, path, project(f.p))
	expectStatus(t, r, http.StatusOK, "developer applies to own project")
	if r.body["success"] != true || strings.Contains(r.raw, "proxy-secret") {
		t.Errorf("apply answer %s, want success without the password", r.raw)
	}
	vars, err := f.st.ProjectEnvVars(context.Background(), f.p)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]store.EnvVar{}
	for _, v := range vars {
		stored[v.Name] = v
	}
	if v := stored["ESTELA_PROXY_PASS"]; v.Value != "proxy-secret" || !v.Masked {
		t.Errorf("ESTELA_PROXY_PASS = %+v, want the masked password", v)
	}
	if v := stored["ESTELA_PROXY_NAME"]; v.Value != "residential_proxy" || v.Masked {
		t.Errorf("ESTELA_PROXY_NAME = %+v, want the provider name in clear", v)
	}

	r = f.form("developer", http.MethodPatch, path, url.Values{"level": {"spider"}, "project_or_spider_id": {fmt.Sprint(f.pSpider)}})
	expectStatus(t, r, http.StatusOK, "developer applies to own spider")
	if vars, _ := r.body["env_vars"].([]any); len(vars) != 5 {
		t.Errorf("spider variables after apply = %s, want the five proxy variables", r.raw)
	}
	expectStatus(t, f.json("admin", http.MethodPut, path, project(f.q)), http.StatusOK, "superuser applies to any project")
}

func TestMeteringReport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	report := func(pid, key string) map[string]any {
		return map[string]any{
			"project_id": pid, "resource_kind": "SpiderJob", "resource_id": "42", "idempotency_key": key,
			"interval_start": "2026-03-10T09:00:00Z", "interval_end": "2026-03-10T10:00:00.5+00:00",
			"metrics": map[string]any{"network_bytes": 2048, "request_count": 3}, "reporter": "",
		}
	}
	const url = "/api/v1/metering/report"

	r := f.json("viewer", http.MethodPost, url, report(f.p, "proxy:42:h9"))
	expectStatus(t, r, http.StatusCreated, "member reports")
	id := r.body["id"]
	if r.body["duplicate"] != false || r.body["resource_kind"] != "SpiderJob" || r.body["resource_id"] != "42" || id == nil {
		t.Errorf("first report answer %s", r.raw)
	}
	r = f.json("viewer", http.MethodPost, url, report(f.p, "proxy:42:h9"))
	if r.status != http.StatusOK || r.body["duplicate"] != true || r.body["id"] != id {
		t.Errorf("same report again: %d %s, want 200 duplicate of %v", r.status, r.raw, id)
	}
	rows, err := f.st.MeteredUsageOfProject(ctx, f.p, statsDay, statsDay.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Reporter != "estela" || rows[0].Kind != store.MeterDeltaSlice || rows[0].Metrics["network_bytes"] != 2048.0 {
		t.Errorf("ledger = %+v, want one DELTA_SLICE by estela with network_bytes 2048", rows)
	}

	r = f.json("outsider", http.MethodPost, url, report(f.q, "proxy:42:h9"))
	if r.status != http.StatusConflict || strings.Contains(r.raw, fmt.Sprint(id)) || strings.Contains(r.raw, "SpiderJob") {
		t.Errorf("key of another project: %d %s, want 409 without the other project's record", r.status, r.raw)
	}
	expectStatus(t, f.json("outsider", http.MethodPost, url, report(f.p, "outsider-key")), http.StatusForbidden, "non-member reports")
	expectStatus(t, f.json("developer", http.MethodPost, url, report("00000000-0000-4000-8000-000000000000", "k2")), http.StatusForbidden, "member reports for an unknown project")
	expectField(t, f.json("admin", http.MethodPost, url, report("00000000-0000-4000-8000-000000000000", "k3")), "project_id", "superuser reports for an unknown project")
	expectStatus(t, f.json(f.staffUser(), http.MethodPost, url, report(f.p, "staff-key")), http.StatusCreated, "staff reports")
	expectStatus(t, f.json("", http.MethodPost, url, report(f.p, "k4")), http.StatusUnauthorized, "no token")

	invalid := []struct {
		name, field string
		change      func(map[string]any)
	}{
		{"project id not a UUID", "project_id", func(b map[string]any) { b["project_id"] = "abc" }},
		{"no project id", "project_id", func(b map[string]any) { delete(b, "project_id") }},
		{"no idempotency key", "idempotency_key", func(b map[string]any) { delete(b, "idempotency_key") }},
		{"no resource kind", "resource_kind", func(b map[string]any) { b["resource_kind"] = "" }},
		{"resource kind too long", "resource_kind", func(b map[string]any) { b["resource_kind"] = strings.Repeat("k", 65) }},
		{"bad start", "interval_start", func(b map[string]any) { b["interval_start"] = "10 March" }},
		{"end before start", "interval_end", func(b map[string]any) { b["interval_end"] = "2026-03-10T08:00:00Z" }},
		{"empty metrics", "metrics", func(b map[string]any) { b["metrics"] = map[string]any{} }},
		{"metrics not an object", "metrics", func(b map[string]any) { b["metrics"] = []int{1} }},
		{"unknown kind", "kind", func(b map[string]any) { b["kind"] = "MONTHLY" }},
		{"adjustment without reason", "adjustment_reason", func(b map[string]any) { b["kind"] = "ADJUSTMENT"; b["adjustment_reason"] = "" }},
	}
	for i, tt := range invalid {
		body := report(f.p, fmt.Sprintf("invalid-%d", i))
		tt.change(body)
		expectField(t, f.json("developer", http.MethodPost, url, body), tt.field, tt.name)
	}
	adjustment := report(f.p, "adjust-1")
	adjustment["kind"], adjustment["adjustment_reason"] = "ADJUSTMENT", "MANUAL"
	expectStatus(t, f.json("developer", http.MethodPost, url, adjustment), http.StatusCreated, "adjustment with reason")
}
