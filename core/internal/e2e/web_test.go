package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// webClient sends requests as estela-web's generated client does: JSON bodies, a token
// header, and a browser Origin.
type webClient struct {
	t    *testing.T
	base string
	key  string
}

func (c *webClient) call(method, path string, body any) (int, any) {
	c.t.Helper()
	var reader io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, reader)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://web.example")
	if c.key != "" {
		req.Header.Set("Authorization", "Token "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Errorf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// page calls a route and expects an object with the given status.
func (c *webClient) page(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	status, out := c.call(method, path, body)
	if status != want {
		c.t.Errorf("%s %s: status %d, want %d: %v", method, path, status, want, out)
	}
	obj, _ := out.(map[string]any)
	return obj
}

func results(obj map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := obj["results"].([]any)
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

// Fields that estela-web reads from each representation.
var (
	webJobFields     = []string{"jid", "spider", "created", "name", "lifespan", "total_response_bytes", "item_count", "request_count", "args", "env_vars", "tags", "job_status", "cronjob", "data_expiry_days", "data_status", "database_insertion_progress", "storage_size", "resource_tier", "peak_memory"}
	webCronFields    = []string{"cjid", "spider", "created", "name", "cargs", "cenv_vars", "ctags", "schedule", "status", "unique_collection", "data_status", "data_expiry_days", "resource_tier"}
	webProjectFields = []string{"pid", "name", "category", "framework", "container_image", "users", "env_vars", "data_status", "data_expiry_days", "created", "last_modified"}
	webDeployFields  = []string{"did", "project", "user", "status", "spiders_count", "created"}
	webSpiderFields  = []string{"sid", "name", "project", "env_vars", "data_status", "data_expiry_days", "last_modified"}
)

// TestEstelaWebReplay replays, page by page, the calls estela-web makes and checks the fields
// each page reads.
func TestEstelaWebReplay(t *testing.T) {
	site, release := slowSite(t)
	close(release)
	p := startPlatform(t)
	web := &webClient{t: t, base: p.base}
	today := time.Now().UTC().Format("2006-01-02")

	// LoginPage, then privateRoute and the header on every page.
	login := web.page(http.MethodPost, "/api/auth/login", map[string]any{"username": "admin", "password": "admin-password", "recaptcha_token": ""}, http.StatusOK)
	web.key, _ = login["key"].(string)
	expectKeys(t, login["user"].(map[string]any), "login user", "username", "email")
	expectKeys(t, web.page(http.MethodGet, "/api/auth/profile/admin", nil, http.StatusOK), "profile", "username", "email")
	web.page(http.MethodGet, "/api/notifications?page=1&page_size=10", nil, http.StatusOK)

	// ProjectListPage and ProjectLayout.
	created := web.page(http.MethodPost, "/api/projects", map[string]any{"name": "web-project", "category": "E-COMMERCE"}, http.StatusCreated)
	pid, _ := created["pid"].(string)
	list := web.page(http.MethodGet, "/api/projects?page=1&page_size=10&search=web&ordering=-created", nil, http.StatusOK)
	if rs := results(list); len(rs) != 1 {
		t.Fatalf("project search found %d projects, want 1", len(rs))
	} else {
		expectKeys(t, rs[0], "listed project", webProjectFields...)
	}
	project := "/api/projects/" + pid
	expectKeys(t, web.page(http.MethodGet, project, nil, http.StatusOK), "project", webProjectFields...)

	// ProjectSettingsPage, ProjectMemberPage and EnvVarsSettingsPage.
	web.page(http.MethodPut, project, map[string]any{"name": "web-project-2"}, http.StatusOK)
	updated := web.page(http.MethodPut, project, map[string]any{"env_vars": []any{map[string]any{"name": "API_KEY", "value": "secret", "masked": true}}}, http.StatusOK)
	if strings.Contains(fmt.Sprint(updated), "secret") {
		t.Errorf("project update shows a masked value: %v", updated)
	}
	web.page(http.MethodPut, project, map[string]any{"data_status": "PENDING", "data_expiry_days": 5, "apply_to_existing_spiders": true}, http.StatusOK)
	web.page(http.MethodPut, project, map[string]any{"data_status": "PERSISTENT"}, http.StatusOK)

	// ProjectDashboardPage.
	web.page(http.MethodGet, project+"/current_usage", nil, http.StatusOK)
	web.page(http.MethodGet, "/api/stats/"+pid+"?start_date="+today+"&end_date="+today+"&offset=0", nil, http.StatusOK)

	// Deploy (estela-web shows deploys; they come from the CLI) and DeployListPage.
	p.key = web.key
	did := p.uploadDeploy(pid, "testdata/project")
	waitFor(t, 3*time.Minute, "the deploy", func() bool {
		return web.page(http.MethodGet, fmt.Sprintf("%s/deploys/%d", project, did), nil, http.StatusOK)["status"] == "SUCCESS"
	})
	deploys := results(web.page(http.MethodGet, project+"/deploys?page=1&page_size=10", nil, http.StatusOK))
	expectKeys(t, deploys[0], "listed deploy", webDeployFields...)
	web.page(http.MethodGet, project+"/jobs?page=1&page_size=1", nil, http.StatusOK)
	expectKeys(t, web.page(http.MethodGet, fmt.Sprintf("%s/deploys/%d/logs", project, did), nil, http.StatusOK), "deploy logs", "logs")

	// SpiderListPage, SpiderDetailPage.
	var sid float64
	for _, s := range results(web.page(http.MethodGet, project+"/spiders?page=1&page_size=10", nil, http.StatusOK)) {
		expectKeys(t, s, "listed spider", webSpiderFields...)
		if s["name"] == "quotes" {
			sid = s["sid"].(float64)
		}
	}
	spider := fmt.Sprintf("%s/spiders/%d", project, int(sid))
	expectKeys(t, web.page(http.MethodGet, spider, nil, http.StatusOK), "spider", webSpiderFields...)
	web.page(http.MethodPut, spider, map[string]any{"data_status": "PERSISTENT"}, http.StatusOK)
	web.page(http.MethodPut, spider, map[string]any{"env_vars": []any{map[string]any{"name": "MODE", "value": "web", "masked": false}}}, http.StatusOK)

	// JobCreateModal: project and spider variables forwarded by evid with the masked value.
	proj := web.page(http.MethodGet, project, nil, http.StatusOK)
	evid := proj["env_vars"].([]any)[0].(map[string]any)["evid"]
	job := web.page(http.MethodPost, spider+"/jobs", map[string]any{
		"args":     []any{map[string]any{"name": "base_url", "value": site.URL}},
		"env_vars": []any{map[string]any{"evid": evid, "name": "API_KEY", "value": "__MASKED__", "masked": true}},
		"tags":     []any{map[string]any{"name": "web"}}, "data_status": "PERSISTENT", "resource_tier": "LARGE",
	}, http.StatusCreated)
	jobPath := fmt.Sprintf("%s/jobs/%v", spider, job["jid"])
	waitFor(t, 3*time.Minute, "the web job", func() bool {
		return web.page(http.MethodGet, jobPath, nil, http.StatusOK)["job_status"] == "COMPLETED"
	})

	// JobDetailPage, JobMetrics, JobDataListPage, ProjectJobListPage.
	expectKeys(t, web.page(http.MethodGet, jobPath, nil, http.StatusOK), "job", webJobFields...)
	expectKeys(t, results(web.page(http.MethodGet, spider+"/jobs?page=1&page_size=10", nil, http.StatusOK))[0], "listed job", webJobFields...)
	web.page(http.MethodPut, jobPath, map[string]any{"data_status": "PENDING", "data_expiry_days": 2}, http.StatusOK)
	expectKeys(t, web.page(http.MethodGet, jobPath+"/error_logs", nil, http.StatusOK), "error logs", "logs")
	stats := web.page(http.MethodGet, jobPath+"/data?type=stats&page=1&page_size=1", nil, http.StatusOK)
	if len(results(stats)) != 1 {
		t.Errorf("job stats: %v, want one document", stats)
	}
	items := web.page(http.MethodGet, jobPath+"/data?type=items&page=1&page_size=10", nil, http.StatusOK)
	expectKeys(t, items, "items page", "count", "next", "previous", "results")
	logs := web.page(http.MethodGet, jobPath+"/data?type=logs&page=1&page_size=10&level=INFO&search=parsed", nil, http.StatusOK)
	if logs["count"] != float64(3) {
		t.Errorf("INFO log lines with 'parsed': %v, want 3", logs["count"])
	}
	download := web.page(http.MethodGet, jobPath+"/data/download?type=items", nil, http.StatusOK)
	if rs, _ := download["results"].([]any); len(rs) != 12 {
		t.Errorf("download has %d items, want 12", len(rs))
	}
	web.page(http.MethodPost, jobPath+"/data/delete?type=requests", nil, http.StatusOK)
	projectJobs := web.page(http.MethodGet, project+"/jobs?page=1&page_size=10", nil, http.StatusOK)
	expectKeys(t, projectJobs, "project jobs", "results", "count")
	web.page(http.MethodGet, project+"/resource_status", nil, http.StatusOK)

	// CronjobCreateModal, CronJobDetailPage, ProjectCronJobListPage.
	cron := web.page(http.MethodPost, spider+"/cronjobs", map[string]any{
		"cargs": []any{map[string]any{"name": "base_url", "value": site.URL}}, "cenv_vars": []any{}, "ctags": []any{map[string]any{"name": "web"}},
		"schedule": "*/30 * * * *", "unique_collection": false, "data_status": "PERSISTENT", "data_expiry_days": 1, "resource_tier": "LARGE",
	}, http.StatusCreated)
	cronPath := fmt.Sprintf("%s/cronjobs/%v", spider, cron["cjid"])
	expectKeys(t, web.page(http.MethodGet, cronPath, nil, http.StatusOK), "cron job", webCronFields...)
	web.page(http.MethodPut, cronPath, map[string]any{"schedule": "0 * * * *"}, http.StatusOK)
	web.page(http.MethodPut, cronPath, map[string]any{"status": "DISABLED"}, http.StatusOK)
	web.page(http.MethodPut, cronPath, map[string]any{"data_status": "PENDING", "data_expiry_days": 3}, http.StatusOK)
	web.page(http.MethodGet, cronPath+"/run_once", nil, http.StatusOK)
	web.page(http.MethodGet, fmt.Sprintf("%s/jobs?cronjob=%v&page=1&page_size=10", spider, cron["cjid"]), nil, http.StatusOK)
	expectKeys(t, web.page(http.MethodGet, project+"/cronjobs?page=1&page_size=10", nil, http.StatusOK), "project cron jobs", "results", "count")
	web.page(http.MethodDelete, cronPath, nil, http.StatusNoContent)
	web.page(http.MethodGet, cronPath, nil, http.StatusNotFound)

	// Stats modal, activity, proxies, notifications inbox.
	web.page(http.MethodGet, "/api/stats/"+pid+"/spiders?start_date="+today+"&end_date="+today, nil, http.StatusOK)
	web.page(http.MethodGet, fmt.Sprintf("/api/stats/%s/spider/%d/jobs?start_date=%s&end_date=%s", pid, int(sid), today, today), nil, http.StatusOK)
	expectKeys(t, web.page(http.MethodGet, project+"/activities?page=1&page_size=10", nil, http.StatusOK), "activities", "results", "count")
	web.page(http.MethodGet, "/api/proxy_provider", nil, http.StatusOK)
	web.page(http.MethodGet, project+"/usage?start_date="+today+"&end_date="+today, nil, http.StatusOK)

	// SettingsProfilePage and the project's deletion.
	web.page(http.MethodDelete, project, nil, http.StatusNoContent)
}
