package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliClient sends requests the way estela-cli 0.3.4 does: its User-Agent on every call, JSON
// for POST, form encoding for PUT, and pagination by following next as given.
type cliClient struct {
	t    *testing.T
	base string
	key  string
}

func (c *cliClient) do(method, path string, body io.Reader, contentType string) (int, map[string]any) {
	c.t.Helper()
	target := path
	switch {
	case path == "":
		target = c.base + "/api"
	case !strings.HasPrefix(path, "http"):
		target = c.base + "/api/" + path
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "estela-cli/0.3.4")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Token "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil && len(raw) > 0 {
		// estela-cli calls resp.json() on every response, so a body that is not JSON crashes it.
		c.t.Errorf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	return resp.StatusCode, out
}

func (c *cliClient) post(path string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	return c.do(http.MethodPost, path, bytes.NewReader(b), "application/json")
}

func (c *cliClient) put(path string, form url.Values) (int, map[string]any) {
	return c.do(http.MethodPut, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

// getAll follows next until it is null and concatenates results, as estela-cli's get does.
func (c *cliClient) getAll(path string) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	for next := path; next != ""; {
		status, page := c.do(http.MethodGet, next, nil, "")
		if status != http.StatusOK {
			c.t.Fatalf("GET %s: status %d", next, status)
		}
		for _, r := range page["results"].([]any) {
			all = append(all, r.(map[string]any))
		}
		next, _ = page["next"].(string)
	}
	return all
}

func expectCode(t *testing.T, got, want int, what string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: status %d, want %d", what, got, want)
	}
}

func expectKeys(t *testing.T, obj map[string]any, what string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s lacks %q: %v", what, k, obj)
		}
	}
}

// TestEstelaCLIReplay replays, in order, the HTTP calls of estela-cli's commands (login,
// context, init, create/list project, deploy, list spider, create/list/update/stop job,
// create/list/update cronjob, data job, delete project) and checks the fields the CLI reads.
func TestEstelaCLIReplay(t *testing.T) {
	site, release := slowSite(t)
	close(release)
	p := startPlatform(t)
	cli := &cliClient{t: t, base: p.base}

	status, root := cli.do(http.MethodGet, "", nil, "")
	expectCode(t, status, http.StatusOK, "estela context: GET /api")
	expectKeys(t, root, "API root", "projects")
	status, login := cli.post("auth/login", map[string]string{"username": "admin", "password": "admin-password"})
	expectCode(t, status, http.StatusOK, "estela login")
	cli.key, _ = login["key"].(string)
	status, _ = cli.do(http.MethodGet, "projects", nil, "")
	expectCode(t, status, http.StatusOK, "token check")

	status, project := cli.post("projects", map[string]string{"name": "cli-project"})
	expectCode(t, status, http.StatusCreated, "estela create project")
	expectKeys(t, project, "created project", "pid", "name", "container_image")
	pid, _ := project["pid"].(string)
	status, _ = cli.put("projects/"+pid, url.Values{"framework": {"SCRAPY"}, "action": {"update"}})
	expectCode(t, status, http.StatusOK, "estela init: PUT project")
	status, _ = cli.do(http.MethodGet, "projects/"+pid, nil, "")
	expectCode(t, status, http.StatusOK, "estela init: GET project")
	found := false
	for _, pr := range cli.getAll("projects") {
		expectKeys(t, pr, "listed project", "name", "pid")
		found = found || pr["pid"] == pid
	}
	if !found {
		t.Errorf("estela list project does not show %s", pid)
	}

	sid := cliDeploy(t, cli, pid)
	jid := cliJobs(t, cli, pid, sid, site.URL)
	cliCronjobs(t, cli, pid, sid)
	cliData(t, cli, pid, sid, jid)

	status, _ = cli.do(http.MethodDelete, "projects/"+pid, nil, "")
	expectCode(t, status, http.StatusNoContent, "estela delete project")
}

func cliDeploy(t *testing.T, cli *cliClient, pid string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("project_zip", pid+".zip")
	zipFolder(t, "testdata/project", part)
	mw.Close()
	status, deploy := cli.do(http.MethodPost, "projects/"+pid+"/deploys", &body, mw.FormDataContentType())
	expectCode(t, status, http.StatusCreated, "estela deploy")
	expectKeys(t, deploy, "deploy", "did")
	did := strconv.Itoa(int(deploy["did"].(float64)))
	waitFor(t, 3*time.Minute, "the deploy to finish", func() bool {
		_, d := cli.do(http.MethodGet, "projects/"+pid+"/deploys/"+did, nil, "")
		return d["status"] == "SUCCESS"
	})
	for _, s := range cli.getAll("projects/" + pid + "/spiders") {
		expectKeys(t, s, "listed spider", "name", "sid")
		if s["name"] == "quotes" {
			return strconv.Itoa(int(s["sid"].(float64)))
		}
	}
	t.Fatal("estela list spider does not show quotes")
	return ""
}

func cliJobs(t *testing.T, cli *cliClient, pid, sid, siteURL string) string {
	t.Helper()
	jobs := "projects/" + pid + "/spiders/" + sid + "/jobs"
	status, job := cli.post(jobs, map[string]any{
		"args": []map[string]string{{"name": "base_url", "value": siteURL}}, "env_vars": []map[string]string{{"name": "MODE", "value": "cli"}},
		"tags": []map[string]string{{"name": "from-cli"}}, "data_status": "PERSISTENT", "resource_tier": "TINY",
	})
	expectCode(t, status, http.StatusCreated, "estela create job")
	jid := strconv.Itoa(int(job["jid"].(float64)))
	if job["name"] != "sj-"+jid+"-"+pid {
		t.Errorf("created job name %v, want sj-%s-%s", job["name"], jid, pid)
	}
	listed := cli.getAll(jobs + "?tag=from-cli")
	if len(listed) != 1 {
		t.Fatalf("estela list job -t from-cli shows %d jobs, want 1", len(listed))
	}
	j := listed[0]
	expectKeys(t, j, "listed job", "jid", "job_status", "tags", "args", "env_vars", "resource_tier", "created")
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z", j["created"].(string)); err != nil {
		t.Errorf("job created %q does not parse with the CLI's format: %v", j["created"], err)
	}
	if env := j["env_vars"].([]any)[0].(map[string]any); env["name"] != "MODE" || env["value"] != "cli" {
		t.Errorf("listed env var %v, want MODE=cli", env)
	}
	status, _ = cli.put(jobs+"/"+jid, url.Values{"data_status": {"PERSISTENT"}})
	expectCode(t, status, http.StatusOK, "estela update job --persistent")
	status, updated := cli.put(jobs+"/"+jid, url.Values{"data_status": {"PENDING"}, "data_expiry_days": {"3"}})
	expectCode(t, status, http.StatusOK, "estela update job -d 3")
	if updated["data_expiry_days"] != float64(3) {
		t.Errorf("updated job %v, want 3 expiry days", updated)
	}
	waitFor(t, 3*time.Minute, "the CLI's job to end", func() bool {
		_, got := cli.do(http.MethodGet, jobs+"/"+jid, nil, "")
		return got["job_status"] == "COMPLETED"
	})

	status, stopJob := cli.post(jobs, map[string]any{"data_status": "PERSISTENT", "args": []map[string]string{{"name": "base_url", "value": "http://127.0.0.1:1"}}})
	expectCode(t, status, http.StatusCreated, "create a job to stop")
	status, _ = cli.put(jobs+"/"+strconv.Itoa(int(stopJob["jid"].(float64)))+"/stop", url.Values{})
	expectCode(t, status, http.StatusOK, "estela stop job")
	return jid
}

func cliCronjobs(t *testing.T, cli *cliClient, pid, sid string) {
	t.Helper()
	cronjobs := "projects/" + pid + "/spiders/" + sid + "/cronjobs"
	status, cron := cli.post(cronjobs, map[string]any{
		"schedule": "0 3 * * *", "cargs": []map[string]string{{"name": "base_url", "value": "http://127.0.0.1:1"}},
		"cenv_vars": []map[string]string{}, "ctags": []map[string]string{{"name": "nightly"}},
		"data_status": "PERSISTENT", "data_expiry_days": 1, "resource_tier": "TINY",
	})
	expectCode(t, status, http.StatusCreated, "estela create cronjob")
	cjid := strconv.Itoa(int(cron["cjid"].(float64)))
	if cron["name"] != "scj-"+cjid+"-"+sid+"-"+pid {
		t.Errorf("cron job name %v, want scj-%s-%s-%s", cron["name"], cjid, sid, pid)
	}
	status, _ = cli.post(cronjobs, map[string]any{"schedule": "every day", "data_status": "PERSISTENT", "data_expiry_days": 1})
	if status == http.StatusCreated {
		t.Errorf("an invalid cron schedule was accepted")
	}
	listed := cli.getAll(cronjobs + "?tag=nightly")
	if len(listed) != 1 {
		t.Fatalf("estela list cronjob -t nightly shows %d cron jobs, want 1", len(listed))
	}
	expectKeys(t, listed[0], "listed cron job", "cjid", "status", "schedule", "ctags", "cargs", "cenv_vars", "resource_tier")
	status, _ = cli.put(cronjobs+"/"+cjid, url.Values{"status": {"DISABLED"}, "schedule": {"0 4 * * *"}, "data_status": {"PENDING"}, "data_expiry_days": {"2"}})
	expectCode(t, status, http.StatusOK, "estela update cronjob")
	_, got := cli.do(http.MethodGet, cronjobs+"/"+cjid, nil, "")
	if got["status"] != "DISABLED" || got["schedule"] != "0 4 * * *" {
		t.Errorf("cron job after the update: %v", got)
	}
}

// cliData downloads a job's items with the CLI's chunk protocol: a first call for the count,
// then calls with current_chunk until next_chunk is absent.
func cliData(t *testing.T, cli *cliClient, pid, sid, jid string) {
	t.Helper()
	data := "projects/" + pid + "/spiders/" + sid + "/jobs/" + jid + "/data?type=items"
	status, first := cli.do(http.MethodGet, data, nil, "")
	expectCode(t, status, http.StatusOK, "estela data job: count")
	var items []any
	chunk := ""
	for calls := 0; calls < 100; calls++ {
		path := data
		if chunk != "" {
			path += "&current_chunk=" + chunk
		}
		_, page := cli.do(http.MethodGet, path, nil, "")
		items = append(items, page["results"].([]any)...)
		next, ok := page["next_chunk"].(string)
		if !ok {
			break
		}
		chunk = next
	}
	if first["count"] != float64(12) || len(items) != 12 {
		t.Errorf("estela data job: count %v, %d items downloaded; want 12 and 12", first["count"], len(items))
	}
}
