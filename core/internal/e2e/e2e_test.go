// Package e2e drives the whole platform through its HTTP API: a real Scrapy project is
// deployed and its spiders run as processes of the local engine plugin, against a site the
// test serves.
package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type jobView struct {
	JID          int64  `json:"jid"`
	Name         string `json:"name"`
	JobStatus    string `json:"job_status"`
	ItemCount    int64  `json:"item_count"`
	RequestCount int64  `json:"request_count"`
	Lifespan     string `json:"lifespan"`
	StorageSize  int64  `json:"storage_size"`
	PeakMemory   *int64 `json:"peak_memory"`
	ErrorReason  string `json:"error_reason"`
	Created      string `json:"created"`
	Tags         []struct {
		Name string `json:"name"`
	} `json:"tags"`
}

type dataPage struct {
	Count   int               `json:"count"`
	Next    *string           `json:"next"`
	Results []json.RawMessage `json:"results"`
}

// deployedProject logs in, creates a project, deploys the test Scrapy project and returns the
// project id and the spider ids by name.
func deployedProject(t *testing.T, p *platform) (string, map[string]int64) {
	t.Helper()
	var login struct {
		Key  string `json:"key"`
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	}
	if code := p.postJSON("/api/auth/login", map[string]string{"username": "admin", "password": "admin-password"}, &login); code != http.StatusOK {
		t.Fatalf("login: status %d", code)
	}
	if login.Key == "" || login.User.Username != "admin" {
		t.Fatalf("login answer = %+v, want a key for admin", login)
	}
	p.key = login.Key

	var project struct {
		PID string `json:"pid"`
	}
	if code := p.postJSON("/api/projects", map[string]string{"name": "sitecrawl"}, &project); code != http.StatusCreated {
		t.Fatalf("create project: status %d", code)
	}
	did := p.uploadDeploy(project.PID, "testdata/project")

	var deploy struct {
		Status       string `json:"status"`
		SpidersCount int    `json:"spiders_count"`
		ErrorReason  string `json:"error_reason"`
	}
	waitFor(t, 3*time.Minute, "deploy to finish", func() bool {
		p.get("/api/projects/"+project.PID+"/deploys/"+strconv.FormatInt(did, 10), &deploy)
		return deploy.Status != "BUILDING"
	})
	if deploy.Status != "SUCCESS" || deploy.SpidersCount != 2 {
		t.Fatalf("deploy = %+v, want SUCCESS with 2 spiders", deploy)
	}

	var spiders struct {
		Results []struct {
			SID  int64  `json:"sid"`
			Name string `json:"name"`
		} `json:"results"`
	}
	p.get("/api/projects/"+project.PID+"/spiders", &spiders)
	ids := map[string]int64{}
	for _, s := range spiders.Results {
		ids[s.Name] = s.SID
	}
	if ids["quotes"] == 0 || ids["books"] == 0 || len(ids) != 2 {
		t.Fatalf("spiders = %v, want quotes and books", ids)
	}
	return project.PID, ids
}

func createJob(t *testing.T, p *platform, pid string, sid int64, args map[string]string, tags ...string) int64 {
	t.Helper()
	body := map[string]any{"data_status": "PERSISTENT", "args": []map[string]string{}, "tags": []map[string]string{}}
	for k, v := range args {
		body["args"] = append(body["args"].([]map[string]string), map[string]string{"name": k, "value": v})
	}
	for _, tag := range tags {
		body["tags"] = append(body["tags"].([]map[string]string), map[string]string{"name": tag})
	}
	var job jobView
	if code := p.postJSON("/api/projects/"+pid+"/spiders/"+strconv.FormatInt(sid, 10)+"/jobs", body, &job); code != http.StatusCreated {
		t.Fatalf("create job: status %d", code)
	}
	if job.JobStatus != "IN_QUEUE" {
		t.Errorf("new job status = %q, want IN_QUEUE", job.JobStatus)
	}
	return job.JID
}

func waitForStatus(t *testing.T, p *platform, path string, timeout time.Duration, statuses ...string) jobView {
	t.Helper()
	var job jobView
	waitFor(t, timeout, "job status "+strings.Join(statuses, " or "), func() bool {
		p.get(path, &job)
		for _, s := range statuses {
			if job.JobStatus == s {
				return true
			}
		}
		return false
	})
	return job
}

// readAll follows the next links of a data listing and returns every record.
func readAll(t *testing.T, p *platform, path string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	next := path
	for next != "" {
		var page dataPage
		if code := p.get(next, &page); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", next, code)
		}
		all = append(all, page.Results...)
		next = ""
		if page.Next != nil {
			next = strings.TrimPrefix(*page.Next, p.base)
		}
	}
	return all
}

func decodeAll[T any](t *testing.T, raw []json.RawMessage) []T {
	t.Helper()
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("decode record %s: %v", r, err)
		}
	}
	return out
}

type quote struct {
	Text   string `json:"text"`
	Author string `json:"author"`
	Page   int    `json:"page"`
}

type book struct {
	Title    string  `json:"title"`
	Price    float64 `json:"price"`
	Category string  `json:"category"`
}

func expected(t *testing.T) (quotes []quote, books map[string][]book) {
	t.Helper()
	raw, err := os.ReadFile("testdata/site/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Quotes []quote           `json:"quotes"`
		Books  map[string][]book `json:"books"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return e.Quotes, e.Books
}

func TestDeployAndRunSpiders(t *testing.T) {
	site := httptest.NewServer(http.FileServer(http.Dir("testdata/site")))
	defer site.Close()
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)
	wantQuotes, wantBooks := expected(t)

	quotesJob := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL}, "nightly")
	booksJob := createJob(t, p, pid, spiders["books"], map[string]string{"base_url": site.URL, "category": "poetry"})
	brokenJob := createJob(t, p, pid, spiders["books"], map[string]string{"base_url": site.URL})

	quotesPath := jobPath(pid, spiders["quotes"], quotesJob)
	job := waitForStatus(t, p, quotesPath, 2*3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if job.JobStatus != "COMPLETED" {
		t.Fatalf("quotes job ended %s: %s", job.JobStatus, job.ErrorReason)
	}
	if job.ItemCount != int64(len(wantQuotes)) || job.RequestCount != 3 {
		t.Errorf("quotes job counters: %d items, %d requests; want %d items, 3 requests", job.ItemCount, job.RequestCount, len(wantQuotes))
	}
	// Scrapy's memusage extension reports memusage/max on Linux, in the final stats.
	if job.StorageSize <= 0 || job.PeakMemory == nil || *job.PeakMemory <= 0 {
		t.Errorf("quotes job storage_size %d and peak_memory %v, want both above 0", job.StorageSize, job.PeakMemory)
	}
	if len(job.Tags) != 1 || job.Tags[0].Name != "nightly" {
		t.Errorf("quotes job tags = %+v, want [nightly]", job.Tags)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z", job.Created); err != nil {
		t.Errorf("created %q is not in estela-cli's format: %v", job.Created, err)
	}

	gotQuotes := decodeAll[quote](t, readAll(t, p, quotesPath+"/data?type=items&page_size=5"))
	if diff := cmp.Diff(wantQuotes, gotQuotes); diff != "" {
		t.Errorf("quotes items (-want +got):\n%s", diff)
	}
	checkLogs(t, p, quotesPath)
	checkRequests(t, p, quotesPath, site.URL)
	checkStats(t, p, quotesPath, len(wantQuotes))
	checkDownload(t, p, quotesPath, wantQuotes)

	booksPath := jobPath(pid, spiders["books"], booksJob)
	job = waitForStatus(t, p, booksPath, 2*3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if job.JobStatus != "COMPLETED" {
		t.Fatalf("books job ended %s: %s", job.JobStatus, job.ErrorReason)
	}
	gotBooks := decodeAll[book](t, readAll(t, p, booksPath+"/data?type=items"))
	if diff := cmp.Diff(wantBooks["poetry"], gotBooks); diff != "" {
		t.Errorf("poetry items (-want +got):\n%s", diff)
	}

	brokenPath := jobPath(pid, spiders["books"], brokenJob)
	job = waitForStatus(t, p, brokenPath, 2*3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if job.JobStatus != "ERROR" || !strings.Contains(job.ErrorReason, "category") {
		t.Errorf("books job without category = %s (%q), want ERROR naming the missing category", job.JobStatus, job.ErrorReason)
	}

	var list struct {
		Count   int       `json:"count"`
		Results []jobView `json:"results"`
	}
	p.get("/api/projects/"+pid+"/spiders/"+strconv.FormatInt(spiders["books"], 10)+"/jobs", &list)
	if list.Count != 2 || list.Results[0].JID != brokenJob || list.Results[1].JID != booksJob {
		t.Errorf("books jobs = %+v, want jobs %d then %d, newest first", list.Results, brokenJob, booksJob)
	}
}

func checkLogs(t *testing.T, p *platform, jobPath string) {
	t.Helper()
	type logLine struct {
		Log      string  `json:"log"`
		Datetime float64 `json:"datetime"`
	}
	logs := decodeAll[logLine](t, readAll(t, p, jobPath+"/data?type=logs&page_size=100"))
	var all []string
	for _, l := range logs {
		all = append(all, l.Log)
		if l.Datetime <= 0 {
			t.Errorf("log line %q has no datetime", l.Log)
		}
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"] INFO: parsed page 1", "] INFO: parsed page 3", "Spider closed (finished)"} {
		if !strings.Contains(text, want) {
			t.Errorf("logs lack %q; got:\n%s", want, text)
		}
	}
}

func checkRequests(t *testing.T, p *platform, jobPath, siteURL string) {
	t.Helper()
	type request struct {
		URL    string `json:"url"`
		Status int    `json:"status"`
		Method string `json:"method"`
	}
	requests := decodeAll[request](t, readAll(t, p, jobPath+"/data?type=requests"))
	want := []request{
		{siteURL + "/quotes/page/1.html", 200, "GET"},
		{siteURL + "/quotes/page/2.html", 200, "GET"},
		{siteURL + "/quotes/page/3.html", 200, "GET"},
	}
	if diff := cmp.Diff(want, requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func checkStats(t *testing.T, p *platform, jobPath string, items int) {
	t.Helper()
	var stats struct {
		Results []map[string]any `json:"results"`
	}
	p.get(jobPath+"/data?type=stats", &stats)
	if len(stats.Results) != 1 {
		t.Fatalf("stats results = %v, want one document", stats.Results)
	}
	if got := stats.Results[0]["item_scraped_count"]; got != float64(items) {
		t.Errorf("stats item_scraped_count = %v, want %d", got, items)
	}
}

func checkDownload(t *testing.T, p *platform, jobPath string, want []quote) {
	t.Helper()
	var body struct {
		Results []quote `json:"results"`
	}
	if code := p.get(jobPath+"/data/download?type=items", &body); code != http.StatusOK {
		t.Fatalf("download: status %d", code)
	}
	if diff := cmp.Diff(want, body.Results); diff != "" {
		t.Errorf("downloaded items (-want +got):\n%s", diff)
	}
}

// slowSite answers the first quotes page only after release is closed, so a job stays RUNNING.
func slowSite(t *testing.T) (*httptest.Server, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	files := http.FileServer(http.Dir("testdata/site"))
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		site.CloseClientConnections()
		site.Close()
	})
	return site, release
}

func TestStopRunningJob(t *testing.T) {
	site, release := slowSite(t)
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)
	jid := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL})
	path := jobPath(pid, spiders["quotes"], jid)
	waitForStatus(t, p, path, 3*time.Minute, "RUNNING")

	var stopped jobView
	var body map[string]any
	if code := p.patchForm(path, url.Values{"status": {"COMPLETED"}}, &body); code != http.StatusBadRequest {
		t.Errorf("user PATCH COMPLETED: status %d (%v), want 400", code, body)
	}
	if code := p.patchForm(path, url.Values{"status": {"STOPPED"}}, &stopped); code != http.StatusOK {
		t.Fatalf("stop job: status %d", code)
	}
	// Scrapy finishes the downloads in flight before it closes the spider. The PATCH reply
	// has no name, so the record's name comes from the job view.
	close(release)
	var view jobView
	p.get(path, &view)
	recordFile := filepath.Join(p.dataDir, "engine", "jobs", view.Name+".json")
	waitFor(t, 3*time.Minute, "the job process to end", func() bool { return !processAlive(t, recordFile) })
	job := waitForStatus(t, p, path, 10*time.Second, "STOPPED")
	var late map[string]any
	if code := p.patchForm(path, url.Values{"status": {"RUNNING"}}, &late); code != http.StatusBadRequest || late["error"] != "Job is stopped" {
		t.Errorf("PATCH RUNNING on a stopped job: status %d %v, want 400 Job is stopped", code, late)
	}
	if job.JobStatus != "STOPPED" {
		t.Errorf("job status = %s after stop and process exit, want STOPPED", job.JobStatus)
	}
	// The job shuts down gracefully and its last data still arrives.
	var stats struct {
		Results []map[string]any `json:"results"`
	}
	waitFor(t, 30*time.Second, "the stopped job's final stats", func() bool {
		p.get(path+"/data?type=stats", &stats)
		return len(stats.Results) == 1 && stats.Results[0]["finish_reason"] != nil
	})
	if reason := stats.Results[0]["finish_reason"]; reason != "shutdown" {
		t.Errorf("stopped job finish_reason = %v, want shutdown", reason)
	}
	logs := readAll(t, p, path+"/data?type=logs&page_size=100")
	if !strings.Contains(string(bytesJoin(logs)), "shutting down gracefully") {
		t.Errorf("stopped job logs lack the graceful shutdown line")
	}
	// The job's last report counts the items it sent after the stop, and the job stays STOPPED.
	items := readAll(t, p, path+"/data?type=items&page_size=100")
	waitFor(t, 30*time.Second, "the stopped job's last counters", func() bool {
		p.get(path, &job)
		return job.ItemCount == int64(len(items))
	})
	if job.JobStatus != "STOPPED" {
		t.Errorf("job status after its last report = %s, want STOPPED", job.JobStatus)
	}
}

// A stopped job that does not shut down is killed after the engine block's stop_grace (2 s in
// the test configuration), which the server sends with the stop, not after its own default of
// 10 s.
func TestStopGraceFromEngineSettings(t *testing.T) {
	site, release := slowSite(t)
	defer close(release)
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)
	jid := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL})
	path := jobPath(pid, spiders["quotes"], jid)
	waitForStatus(t, p, path, 3*time.Minute, "RUNNING")

	var running jobView
	p.get(path, &running)
	recordFile := filepath.Join(p.dataDir, "engine", "jobs", running.Name+".json")
	if !processAlive(t, recordFile) {
		t.Fatalf("no live process in %s before the stop", recordFile)
	}
	start := time.Now()
	var stopped jobView
	if code := p.patchForm(path, url.Values{"status": {"STOPPED"}}, &stopped); code != http.StatusOK {
		t.Fatalf("stop job: status %d", code)
	}
	// Scrapy waits for the download in flight, which the site holds, so only the kill ends it.
	waitFor(t, time.Minute, "the job process to end", func() bool { return !processAlive(t, recordFile) })
	took := time.Since(start)
	if took < 2*time.Second || took > 8*time.Second {
		t.Errorf("the stopped job's process ended %s after the stop, want about the 2 s of stop_grace", took.Round(100*time.Millisecond))
	}
}

func TestKilledJobEndsInError(t *testing.T) {
	site, _ := slowSite(t)
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)
	jid := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL})
	path := jobPath(pid, spiders["quotes"], jid)
	job := waitForStatus(t, p, path, 3*time.Minute, "RUNNING")

	recordFile := filepath.Join(p.dataDir, "engine", "jobs", job.Name+".json")
	pid64 := recordPID(t, recordFile)
	if err := syscall.Kill(pid64, syscall.SIGKILL); err != nil {
		t.Fatalf("kill job process %d: %v", pid64, err)
	}
	job = waitForStatus(t, p, path, 3*time.Minute, "ERROR", "COMPLETED", "STOPPED")
	if job.JobStatus != "ERROR" || !strings.Contains(job.ErrorReason, "signal") {
		t.Errorf("killed job = %s (%q), want ERROR naming the signal", job.JobStatus, job.ErrorReason)
	}
}

func recordPID(t *testing.T, file string) int {
	t.Helper()
	var rec struct {
		PID int `json:"pid"`
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read engine job record: %v", err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.PID == 0 {
		t.Fatalf("engine job record %s has no pid: %v", raw, err)
	}
	return rec.PID
}

func processAlive(t *testing.T, recordFile string) bool {
	t.Helper()
	raw, err := os.ReadFile(recordFile)
	if err != nil {
		return false
	}
	var rec struct {
		PID int `json:"pid"`
	}
	_ = json.Unmarshal(raw, &rec)
	if rec.PID == 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(rec.PID) + "/stat")
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

func bytesJoin(raw []json.RawMessage) []byte {
	var out []byte
	for _, r := range raw {
		out = append(out, r...)
		out = append(out, '\n')
	}
	return out
}
