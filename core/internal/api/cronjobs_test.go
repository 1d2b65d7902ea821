package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
)

// cliCronJob is the body `estela create cronjob` sends.
func cliCronJob(schedule string) map[string]any {
	return map[string]any{
		"schedule": schedule, "cargs": []any{map[string]any{"name": "page", "value": "1"}},
		"cenv_vars": []any{map[string]any{"name": "MODE", "value": "slow"}}, "ctags": []any{map[string]any{"name": "nightly"}},
		"data_status": "PERSISTENT", "data_expiry_days": 1,
	}
}

func (f *fixture) cronJobsURL(pid string, sid int64) string {
	return fmt.Sprintf("/api/projects/%s/spiders/%d/cronjobs", pid, sid)
}

// cronJob creates a cron job on project P's spider through the API and returns its URL and id.
func (f *fixture) cronJob(body map[string]any) (string, int64) {
	f.t.Helper()
	r := f.json("developer", http.MethodPost, f.cronJobsURL(f.p, f.pSpider), body)
	if r.status != http.StatusCreated {
		f.t.Fatalf("create cron job: %d %s", r.status, r.raw)
	}
	cjid := int64(r.body["cjid"].(float64))
	return fmt.Sprintf("%s/%d", f.cronJobsURL(f.p, f.pSpider), cjid), cjid
}

// removeSpider deploys project P again without its spider, which soft-deletes it.
func (f *fixture) removeSpider() {
	f.t.Helper()
	ctx := context.Background()
	members, err := f.st.Members(ctx, f.p)
	if err != nil {
		f.t.Fatal(err)
	}
	d := &store.Deploy{ProjectID: f.p, UserID: &members[0].UserID}
	if err := f.st.CreateDeploy(ctx, d); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SucceedDeploy(ctx, d.DID, "/nowhere", []string{"books"}); err != nil {
		f.t.Fatal(err)
	}
}

func TestCronJobRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cron, cjid := f.cronJob(cliCronJob("0 3 * * *"))
	list := f.cronJobsURL(f.p, f.pSpider)
	update := map[string]any{"status": "DISABLED"}

	tests := []struct {
		name   string
		user   string
		method string
		path   string
		want   int
	}{
		{"viewer lists", "viewer", http.MethodGet, list, http.StatusOK},
		{"viewer lists project", "viewer", http.MethodGet, "/api/projects/" + f.p + "/cronjobs", http.StatusOK},
		{"viewer reads", "viewer", http.MethodGet, cron, http.StatusOK},
		{"viewer cannot create", "viewer", http.MethodPost, list, http.StatusForbidden},
		{"viewer cannot update", "viewer", http.MethodPut, cron, http.StatusForbidden},
		{"viewer cannot patch", "viewer", http.MethodPatch, cron, http.StatusForbidden},
		{"viewer cannot run with GET", "viewer", http.MethodGet, cron + "/run_once", http.StatusForbidden},
		{"viewer cannot run with POST", "viewer", http.MethodPost, cron + "/run_once", http.StatusForbidden},
		{"viewer cannot delete", "viewer", http.MethodDelete, cron, http.StatusForbidden},
		{"developer creates", "developer", http.MethodPost, list, http.StatusCreated},
		{"developer updates", "developer", http.MethodPatch, cron, http.StatusOK},
		{"developer runs with GET", "developer", http.MethodGet, cron + "/run_once", http.StatusOK},
		{"developer runs with POST", "developer", http.MethodPost, cron + "/run_once", http.StatusOK},
		{"developer cannot delete", "developer", http.MethodDelete, cron, http.StatusForbidden},
		{"outsider cannot read", "outsider", http.MethodGet, cron, http.StatusForbidden},
		{"outsider cannot list project", "outsider", http.MethodGet, "/api/projects/" + f.p + "/cronjobs", http.StatusForbidden},
		{"no token", "", http.MethodGet, cron, http.StatusUnauthorized},
		{"under another spider", "admin", http.MethodGet, fmt.Sprintf("%s/%d", f.cronJobsURL(f.p, f.qSpider), cjid), http.StatusNotFound},
		{"under another project", "admin", http.MethodGet, fmt.Sprintf("%s/%d", f.cronJobsURL(f.q, f.pSpider), cjid), http.StatusNotFound},
		{"update under another project", "admin", http.MethodPut, fmt.Sprintf("%s/%d", f.cronJobsURL(f.q, f.pSpider), cjid), http.StatusNotFound},
		{"run under another spider", "admin", http.MethodPost, fmt.Sprintf("%s/%d/run_once", f.cronJobsURL(f.p, f.qSpider), cjid), http.StatusNotFound},
		{"list spider of another project", "admin", http.MethodGet, f.cronJobsURL(f.p, f.qSpider), http.StatusNotFound},
		{"create on spider of another project", "admin", http.MethodPost, f.cronJobsURL(f.p, f.qSpider), http.StatusNotFound},
		{"unknown cron job", "admin", http.MethodGet, fmt.Sprintf("%s/%d", list, cjid+100), http.StatusNotFound},
		{"owner deletes", "owner", http.MethodDelete, cron, http.StatusNoContent},
	}
	for _, tt := range tests {
		body := update
		if tt.method == http.MethodPost && !strings.HasSuffix(tt.path, "run_once") {
			body = cliCronJob("*/5 * * * *")
		}
		if r := f.json(tt.user, tt.method, tt.path, body); r.status != tt.want {
			t.Errorf("%s: status %d, want %d; body %s", tt.name, r.status, tt.want, r.raw)
		}
	}
}

func TestCreateCronJobShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	own := &store.EnvVar{ProjectID: &f.p, Name: "API_KEY", Value: "shop-secret", Masked: true}
	if err := f.st.CreateEnvVar(ctx, own); err != nil {
		t.Fatal(err)
	}
	body := cliCronJob("30 2 * * 1-5")
	body["cenv_vars"] = []any{
		map[string]any{"evid": own.EVID, "name": "API_KEY", "value": "__MASKED__", "masked": true},
		map[string]any{"name": "MODE", "value": "slow"},
	}
	body["resource_tier"] = "SMALL"
	body["unique_collection"] = true

	r := f.json("developer", http.MethodPost, f.cronJobsURL(f.p, f.pSpider), body)
	expectStatus(t, r, http.StatusCreated, "create cron job")
	cjid := int64(r.body["cjid"].(float64))
	if want := fmt.Sprintf("scj-%d-%d-%s", cjid, f.pSpider, f.p); r.body["name"] != want {
		t.Errorf("name = %v, want %s", r.body["name"], want)
	}
	created, _ := r.body["created"].(string)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(created) {
		t.Errorf("created = %q, want six fractional digits and Z", created)
	}
	for field, want := range map[string]any{
		"schedule": "30 2 * * 1-5", "status": "ACTIVE", "unique_collection": true, "data_status": "PERSISTENT",
		"data_expiry_days": nil, "resource_tier": "SMALL",
		"spider": map[string]any{"sid": float64(f.pSpider), "name": "quotes"},
		"cargs":  []any{map[string]any{"name": "page", "value": "1"}}, "ctags": []any{map[string]any{"name": "nightly"}},
	} {
		if got := r.body[field]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	if strings.Contains(r.raw, "shop-secret") {
		t.Errorf("response shows a masked value: %s", r.raw)
	}
	vars, err := f.st.EnvVarsOfCronJobs(ctx, []int64{cjid})
	if err != nil {
		t.Fatal(err)
	}
	if list := vars[cjid]; len(list) != 2 || list[0].Value != "shop-secret" || !list[0].Masked || list[1].Value != "slow" {
		t.Errorf("stored env vars = %+v, want the copied masked API_KEY and MODE", list)
	}
	if next, _ := r.body["next_run"].(string); !strings.HasSuffix(next, ":30:00.000000Z") {
		t.Errorf("next_run = %q, want a run at minute 30", next)
	}
}

func TestCreateCronJobValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	secret := &store.EnvVar{ProjectID: &f.q, Name: "TOKEN", Value: "other-project-secret", Masked: true}
	if err := f.st.CreateEnvVar(ctx, secret); err != nil {
		t.Fatal(err)
	}
	list := f.cronJobsURL(f.p, f.pSpider)
	with := func(key string, value any) map[string]any {
		b := cliCronJob("0 * * * *")
		if value == nil {
			delete(b, key)
		} else {
			b[key] = value
		}
		return b
	}

	r := f.json("developer", http.MethodPost, list, with("schedule", "every day"))
	if want := `{"schedule":["Value is not a valid cron schedule."]}` + "\n"; r.status != http.StatusBadRequest || r.raw != want {
		t.Errorf("invalid schedule: %d %s, want 400 %s", r.status, r.raw, want)
	}
	r = f.json("developer", http.MethodPost, list, with("schedule", "0 0 3 * * *"))
	if want := `{"schedule":["Value is not a valid cron schedule."]}` + "\n"; r.status != http.StatusBadRequest || r.raw != want {
		t.Errorf("6-field schedule: %d %s, want 400 %s", r.status, r.raw, want)
	}
	expectField(t, f.json("developer", http.MethodPost, list, with("schedule", nil)), "schedule", "missing schedule")
	expectField(t, f.json("developer", http.MethodPost, list, with("data_status", nil)), "data_status", "missing data_status")
	expectField(t, f.json("developer", http.MethodPost, list, with("data_status", "DELETED")), "data_status", "data_status DELETED")
	pending := with("data_status", "PENDING")
	pending["data_expiry_days"] = 0
	expectField(t, f.json("developer", http.MethodPost, list, pending), "data_expiry_days", "PENDING for 0 days")
	pending["data_expiry_days"] = "soon"
	expectField(t, f.json("developer", http.MethodPost, list, pending), "data_expiry_days", "non-integer expiry")
	expectField(t, f.json("developer", http.MethodPost, list, with("resource_tier", "GIGANTIC")), "resource_tier", "unknown tier")
	expectField(t, f.json("developer", http.MethodPost, list, with("cargs", []any{map[string]any{"value": "x"}})), "cargs", "arg without name")
	expectField(t, f.json("developer", http.MethodPost, list, with("unique_collection", "perhaps")), "unique_collection", "bad boolean")
	r = f.json("developer", http.MethodPost, list, with("cenv_vars", []any{map[string]any{"evid": secret.EVID, "value": "__MASKED__"}}))
	expectField(t, r, "cenv_vars", "evid of another project")
	if strings.Contains(r.raw, "other-project-secret") {
		t.Errorf("response leaks another project's secret: %s", r.raw)
	}
	if _, count, _ := f.st.ListCronJobs(ctx, store.CronJobFilter{ProjectID: f.p}, store.Page{Limit: 10}); count != 0 {
		t.Errorf("rejected requests stored %d cron jobs, want 0", count)
	}

	pending["data_expiry_days"] = 3
	r = f.json("developer", http.MethodPost, list, pending)
	expectStatus(t, r, http.StatusCreated, "PENDING for 3 days")
	if r.body["data_status"] != "PENDING" || r.body["data_expiry_days"] != float64(3) {
		t.Errorf("created %s, want PENDING for 3 days", r.raw)
	}
}

func TestUpdateCronJobForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cron, _ := f.cronJob(cliCronJob("0 3 * * *"))
	put := func(values url.Values) response { return f.form("developer", http.MethodPut, cron, values) }

	// The bodies estela-cli sends for `estela update cronjob`.
	r := put(url.Values{"status": {"DISABLED"}})
	expectStatus(t, r, http.StatusOK, "disable")
	if r.body["status"] != "DISABLED" || r.body["next_run"] != nil {
		t.Errorf("disabled cron job %s, want DISABLED without next_run", r.raw)
	}
	r = put(url.Values{"schedule": {"*/5 * * * *"}, "status": {"ACTIVE"}})
	expectStatus(t, r, http.StatusOK, "new schedule")
	if r.body["schedule"] != "*/5 * * * *" || r.body["status"] != "ACTIVE" || r.body["next_run"] == nil {
		t.Errorf("rescheduled cron job %s, want */5 * * * *, ACTIVE, with next_run", r.raw)
	}
	r = put(url.Values{"data_status": {"PENDING"}, "data_expiry_days": {"4"}})
	if r.status != http.StatusOK || r.body["data_status"] != "PENDING" || r.body["data_expiry_days"] != float64(4) {
		t.Errorf("PENDING for 4 days: %d %s", r.status, r.raw)
	}
	r = put(url.Values{"data_status": {"PERSISTENT"}})
	if r.status != http.StatusOK || r.body["data_status"] != "PERSISTENT" || r.body["data_expiry_days"] != nil {
		t.Errorf("PERSISTENT: %d %s", r.status, r.raw)
	}
	r = put(url.Values{"resource_tier": {"HUGE"}, "unique_collection": {"True"}})
	if r.status != http.StatusOK || r.body["resource_tier"] != "HUGE" || r.body["unique_collection"] != true {
		t.Errorf("tier and unique collection: %d %s, want HUGE and true", r.status, r.raw)
	}
	r = put(url.Values{"cargs": {`[{"name": "page", "value": "9"}]`}, "ctags": {`[{"name": "weekly"}]`}})
	if r.status != http.StatusOK || fmt.Sprint(r.body["cargs"]) != "[map[name:page value:9]]" || fmt.Sprint(r.body["ctags"]) != "[map[name:weekly]]" {
		t.Errorf("lists as JSON strings in a form: %d %s", r.status, r.raw)
	}

	r = put(url.Values{"schedule": {"61 * * * *"}})
	if want := `{"schedule":["Value is not a valid cron schedule."]}` + "\n"; r.status != http.StatusBadRequest || r.raw != want {
		t.Errorf("invalid schedule: %d %s, want 400 %s", r.status, r.raw, want)
	}
	expectField(t, put(url.Values{"status": {"PAUSED"}}), "status", "unknown status")
	expectField(t, put(url.Values{"data_expiry_days": {"3"}}), "data_expiry_days", "expiry of a persistent cron job")
	expectField(t, put(url.Values{"data_status": {"PENDING"}, "data_expiry_days": {"0"}}), "data_expiry_days", "PENDING for 0 days")
	expectField(t, put(url.Values{"resource_tier": {"GIGANTIC"}}), "resource_tier", "unknown tier")
	if r := f.get("developer", cron); r.body["schedule"] != "*/5 * * * *" || r.body["resource_tier"] != "HUGE" {
		t.Errorf("rejected updates changed the cron job: %s", r.raw)
	}
}

func TestUpdateCronJobEnvVars(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	body := cliCronJob("0 3 * * *")
	body["cenv_vars"] = []any{map[string]any{"name": "TOKEN", "value": "s3cret", "masked": true}, map[string]any{"name": "MODE", "value": "slow"}}
	cron, cjid := f.cronJob(body)
	before := f.get("viewer", cron)
	vars, _ := before.body["cenv_vars"].([]any)
	if len(vars) != 2 || vars[0].(map[string]any)["value"] != nil {
		t.Fatalf("cenv_vars = %v, want TOKEN masked as null and MODE", before.body["cenv_vars"])
	}
	tokenID := vars[0].(map[string]any)["evid"]

	r := f.json("developer", http.MethodPatch, cron, map[string]any{"cenv_vars": []any{
		map[string]any{"evid": tokenID, "name": "TOKEN", "value": "__MASKED__", "masked": true},
		map[string]any{"name": "REGION", "value": "eu"},
	}})
	expectStatus(t, r, http.StatusOK, "replace env vars")
	stored, err := f.st.EnvVarsOfCronJobs(ctx, []int64{cjid})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for _, v := range stored[cjid] {
		pairs = append(pairs, v.Name+"="+v.Value)
	}
	if got := strings.Join(pairs, " "); got != "TOKEN=s3cret REGION=eu" {
		t.Errorf("stored env vars %q, want TOKEN kept and REGION added", got)
	}
	r = f.json("developer", http.MethodPatch, cron, map[string]any{"cenv_vars": []any{map[string]any{"name": "TOKEN", "value": "__MASKED__", "masked": true}}})
	expectStatus(t, r, http.StatusOK, "keep by name")
	stored, _ = f.st.EnvVarsOfCronJobs(ctx, []int64{cjid})
	if list := stored[cjid]; len(list) != 1 || list[0].Value != "s3cret" {
		t.Errorf("stored env vars %+v, want only TOKEN with its value", list)
	}
	expectField(t, f.json("developer", http.MethodPatch, cron, map[string]any{"cenv_vars": []any{map[string]any{"name": "NEW", "value": ""}}}), "cenv_vars", "empty value")
}

func TestCronJobOfRemovedSpider(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cron, _ := f.cronJob(cliCronJob("0 3 * * *"))
	expectStatus(t, f.form("developer", http.MethodPut, cron, url.Values{"status": {"DISABLED"}}), http.StatusOK, "disable")
	f.removeSpider()

	expectStatus(t, f.get("viewer", cron), http.StatusOK, "read")
	r := f.form("developer", http.MethodPut, cron, url.Values{"status": {"ACTIVE"}})
	if r.status != http.StatusBadRequest || r.body["error"] != "Cannot enable: spider no longer exists in the project." {
		t.Errorf("enable: %d %s, want 400 Cannot enable", r.status, r.raw)
	}
	r = f.get("developer", cron+"/run_once")
	if r.status != http.StatusBadRequest || r.body["error"] != "Cannot run: spider no longer exists in the project." {
		t.Errorf("run once: %d %s, want 400 Cannot run", r.status, r.raw)
	}
	expectStatus(t, f.json("developer", http.MethodPost, f.cronJobsURL(f.p, f.pSpider), cliCronJob("0 3 * * *")), http.StatusNotFound, "create")
	if r := f.get("viewer", f.cronJobsURL(f.p, f.pSpider)); r.status != http.StatusOK || r.body["count"] != float64(1) {
		t.Errorf("list: %d %s, want the one cron job", r.status, r.raw)
	}
}

func TestRunCronJobOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cron, cjid := f.cronJob(cliCronJob("0 3 * * *"))
	expectStatus(t, f.json("developer", http.MethodPatch, cron, map[string]any{
		"cargs": []any{map[string]any{"name": "page", "value": "2"}}, "resource_tier": "TINY", "status": "DISABLED"}), http.StatusOK, "update")

	expectStatus(t, f.do("developer", http.MethodHead, cron+"/run_once", "", nil), http.StatusOK, "HEAD run once")
	r := f.get("developer", cron+"/run_once")
	expectStatus(t, r, http.StatusOK, "run once")
	if r.body["cjid"] != float64(cjid) || r.body["status"] != "DISABLED" {
		t.Errorf("run once answered %s, want the cron job", r.raw)
	}
	jobs := f.get("viewer", fmt.Sprintf("/api/projects/%s/spiders/%d/jobs?cronjob=%d", f.p, f.pSpider, cjid))
	results, _ := jobs.body["results"].([]any)
	if len(results) != 1 {
		t.Fatalf("jobs of the cron job: %s, want one", jobs.raw)
	}
	job := results[0].(map[string]any)
	if job["job_status"] != "IN_QUEUE" || job["resource_tier"] != "TINY" || fmt.Sprint(job["args"]) != "[map[name:page value:2]]" {
		t.Errorf("job %v, want IN_QUEUE, TINY and the current args", job)
	}
	if vars := fmt.Sprint(job["env_vars"]); !strings.Contains(vars, "MODE") {
		t.Errorf("job env vars %s, want MODE copied from the cron job", vars)
	}

	activities, _, err := f.st.ListActivities(context.Background(), f.p, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var feed []string
	for _, a := range activities {
		feed = append(feed, a.Username+" "+a.Description)
	}
	label := fmt.Sprintf("Sche-Job-%d", cjid)
	want := []string{
		fmt.Sprintf("developer run Job-%d for spider quotes.", int64(job["jid"].(float64))),
		"developer disabled " + label + ".",
		"developer scheduled a new " + label + " for spider quotes.",
	}
	if got := strings.Join(feed, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("activity feed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestDeleteCronJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cron, _ := f.cronJob(cliCronJob("0 3 * * *"))

	expectStatus(t, f.do("owner", http.MethodDelete, cron, "", nil), http.StatusNoContent, "delete")
	expectStatus(t, f.get("owner", cron), http.StatusNotFound, "read deleted")
	expectStatus(t, f.do("owner", http.MethodDelete, cron, "", nil), http.StatusNotFound, "delete again")
	expectStatus(t, f.get("owner", cron+"/run_once"), http.StatusNotFound, "run deleted")
	if r := f.get("owner", "/api/projects/"+f.p+"/cronjobs"); r.body["count"] != float64(0) {
		t.Errorf("project list after delete: %s, want count 0", r.raw)
	}
}

func TestListCronJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []float64
	for i := range 3 {
		body := cliCronJob("0 3 * * *")
		if i == 1 {
			body["ctags"] = []any{map[string]any{"name": "weekly"}}
		}
		_, cjid := f.cronJob(body)
		ids = append(ids, float64(cjid))
	}
	list := f.cronJobsURL(f.p, f.pSpider)

	r := f.get("viewer", list+"?page_size=2")
	expectStatus(t, r, http.StatusOK, "first page")
	results, _ := r.body["results"].([]any)
	if r.body["count"] != float64(3) || len(results) != 2 || results[0].(map[string]any)["cjid"] != ids[2] || r.body["next"] == nil {
		t.Errorf("first page %s, want count 3 and the newest two with a next link", r.raw)
	}
	r = f.get("viewer", list+"?tag=weekly")
	results, _ = r.body["results"].([]any)
	if len(results) != 1 || results[0].(map[string]any)["cjid"] != ids[1] {
		t.Errorf("tag weekly: %s, want the second cron job only", r.raw)
	}
	expectField(t, f.get("viewer", list+"?page=abc"), "page", "page=abc")
	if r := f.get("viewer", list+"?page=9"); r.status != http.StatusNotFound || r.body["detail"] != "Invalid page." {
		t.Errorf("page past the end: %d %s, want 404 Invalid page.", r.status, r.raw)
	}
}

func TestListProjectCronJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 12 {
		f.cronJob(cliCronJob("0 3 * * *"))
	}
	list := "/api/projects/" + f.p + "/cronjobs"

	r := f.get("viewer", list)
	expectStatus(t, r, http.StatusOK, "default page")
	results, _ := r.body["results"].([]any)
	if r.body["count"] != float64(12) || len(results) != 10 {
		t.Errorf("default page has %d results of %v, want 10 of 12", len(results), r.body["count"])
	}
	if _, hasNext := r.body["next"]; hasNext {
		t.Errorf("project list has a next link: %s", r.raw)
	}
	first := results[0].(map[string]any)
	if first["spider"].(map[string]any)["name"] != "quotes" || first["cjid"].(float64) < results[1].(map[string]any)["cjid"].(float64) {
		t.Errorf("first result %v, want the newest cron job of spider quotes", first)
	}
	r = f.get("viewer", list+"?page=2&page_size=10")
	if results, _ := r.body["results"].([]any); len(results) != 2 {
		t.Errorf("second page has %d results, want 2", len(results))
	}
	r = f.get("viewer", list+"?page=5")
	if results, _ := r.body["results"].([]any); r.status != http.StatusOK || len(results) != 0 || r.body["count"] != float64(12) {
		t.Errorf("page past the end: %d %s, want 200 with no results", r.status, r.raw)
	}
	for _, query := range []string{"page_size=abc", "page_size=0", "page_size=101", "page=0", "page=x", "page=9223372036854775807"} {
		r := f.get("viewer", list+"?"+query)
		if want := `{"error":"Invalid page size parameter."}` + "\n"; r.status != http.StatusBadRequest || r.raw != want {
			t.Errorf("%s: %d %s, want 400 %s", query, r.status, r.raw, want)
		}
	}
}
