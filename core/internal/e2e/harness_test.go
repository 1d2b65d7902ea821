package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/app"
	"github.com/estela-go/estela-go/core/internal/config"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// platform is a whole estela-server (API and worker) running in the test process, with real
// Postgres, Redis and plugin processes.
type platform struct {
	t       *testing.T
	base    string
	key     string
	dataDir string
	dbURL   string
}

// startPlatform runs the API and the worker until the test ends.
func startPlatform(t *testing.T) *platform {
	t.Helper()
	python := os.Getenv("ESTELA_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if err := exec.Command(python, "-c", "import scrapy, redis, requests").Run(); err != nil {
		t.Skipf("%s has no Scrapy, redis or requests; run the tests with `make test`", python)
	}
	dataDir := t.TempDir()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dbURL := testenv.DatabaseURL(t)
	settings := func(v map[string]any) json.RawMessage { b, _ := json.Marshal(v); return b }
	cfg := &config.Config{
		APIHost:        base,
		DatabaseURL:    dbURL,
		RedisURL:       testenv.RedisURL(t),
		RedisNamespace: testenv.Namespace(),
		PluginDirs:     []string{pluginDir(t, repo)},
		MaxUploadBytes: 1 << 20,
		Worker:         &config.Worker{Concurrency: 4, ReconcileSeconds: 1, LostJobGraceSeconds: 5, MaxDispatchAttempts: 3},
		Engine: &config.PluginBlock{Name: "local", Settings: settings(map[string]any{
			"data_dir": filepath.Join(dataDir, "engine"), "job_side_dir": filepath.Join(repo, "sdk/scrapy"),
			"python": python, "stop_grace": "2s"})},
		Credentials: &config.PluginBlock{Name: "local", Settings: settings(map[string]any{"data_dir": filepath.Join(dataDir, "archives")})},
	}
	if err := cfg.Complete(); err != nil {
		t.Fatalf("complete config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := hclog.New(&hclog.LoggerOptions{Name: "e2e", Level: hclog.Info, Output: testWriter{t}})
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("open platform: %v", err)
	}
	if err := a.EnsureAdmin(ctx, "admin", "admin-password", os.Stdout); err != nil {
		t.Fatalf("create superuser: %v", err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = a.Serve(ctx, ln); done <- struct{}{} }()
	go func() { a.RunWorker(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		a.Close()
		if t.Failed() {
			logJobOutput(t, filepath.Join(dataDir, "engine", "jobs"))
		}
	})
	return &platform{t: t, base: base, dataDir: dataDir, dbURL: dbURL}
}

// pluginDir returns the folder of the plugin binaries that `make test` built, or builds them.
func pluginDir(t *testing.T, repo string) string {
	if dir := os.Getenv("ESTELA_TEST_PLUGIN_DIR"); dir != "" {
		return dir
	}
	dir := t.TempDir()
	for _, p := range []string{"engine/local", "credentials/local"} {
		kind, name, _ := strings.Cut(p, "/")
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "estela-"+kind+"-"+name), ".")
		cmd.Dir = filepath.Join(repo, "plugins", p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build plugin %s: %v\n%s", p, err, out)
		}
	}
	return dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call sends a request with the platform's token and decodes a JSON response into out.
func (p *platform) call(method, path string, body io.Reader, contentType string, out any) int {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.key != "" {
		req.Header.Set("Authorization", "Token "+p.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

func (p *platform) postJSON(path string, body any, out any) int {
	p.t.Helper()
	b, _ := json.Marshal(body)
	return p.call(http.MethodPost, path, bytes.NewReader(b), "application/json", out)
}

func (p *platform) get(path string, out any) int {
	p.t.Helper()
	return p.call(http.MethodGet, path, nil, "", out)
}

func (p *platform) patchForm(path string, form url.Values, out any) int {
	p.t.Helper()
	return p.call(http.MethodPatch, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", out)
}

// uploadDeploy zips a folder the way estela-cli does (the folder itself at the zip root) and
// uploads it as a deploy.
func (p *platform) uploadDeploy(pid, folder string) int64 {
	p.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("project_zip", pid+".zip")
	zipFolder(p.t, folder, part)
	mw.Close()
	var d struct {
		DID    int64  `json:"did"`
		Status string `json:"status"`
	}
	if code := p.call(http.MethodPost, "/api/projects/"+pid+"/deploys", &body, mw.FormDataContentType(), &d); code != http.StatusCreated {
		p.t.Fatalf("upload deploy: status %d", code)
	}
	if d.Status != "BUILDING" {
		p.t.Errorf("new deploy status = %q, want BUILDING", d.Status)
	}
	return d.DID
}

func zipFolder(t *testing.T, folder string, w io.Writer) {
	t.Helper()
	zw := zip.NewWriter(w)
	top := filepath.Base(folder)
	err := filepath.WalkDir(folder, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "__pycache__") {
			return err
		}
		rel, _ := filepath.Rel(folder, path)
		f, err := zw.Create(top + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = f.Write(content)
		return err
	})
	if err != nil {
		t.Fatalf("zip %s: %v", folder, err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls check every 200 ms until it returns true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jobPath(pid string, sid, jid int64) string {
	return fmt.Sprintf("/api/projects/%s/spiders/%d/jobs/%d", pid, sid, jid)
}

// logJobOutput adds the output of every job process to a failed test's log.
func logJobOutput(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		out, err := os.ReadFile(f)
		if err == nil {
			t.Logf("output of %s:\n%s", filepath.Base(f), out)
		}
	}
}
