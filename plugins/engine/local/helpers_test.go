package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// testPython returns an interpreter for the stand-in job-side scripts in
// testdata, which need only the standard library. /usr/bin/python3 comes
// first because a python3 on PATH may be a version manager's shell shim,
// which adds variables to the job's environment.
func testPython(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	if path, err := exec.LookPath("python3"); err == nil {
		return path
	}
	t.Skip("no python3 found")
	return ""
}

func testJobSideDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "jobside"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// testConfig returns settings JSON for a fresh data directory.
func testConfig(t *testing.T, dataDir string) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"data_dir":     dataDir,
		"python":       testPython(t),
		"job_side_dir": testJobSideDir(t),
		"stop_grace":   "2s",
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// newTestEngine returns a configured engine on a fresh data directory.
func newTestEngine(t *testing.T) (*localEngine, string) {
	t.Helper()
	dataDir := t.TempDir()
	return configureEngine(t, dataDir), dataDir
}

func configureEngine(t *testing.T, dataDir string) *localEngine {
	t.Helper()
	e := newEngine(hclog.NewNullLogger())
	e.pollInterval = 20 * time.Millisecond
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: testConfig(t, dataDir)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
	t.Cleanup(func() { stopAll(e) })
	return e
}

// stopAll kills every running job of e, so no test leaves processes behind.
func stopAll(e *localEngine) {
	e.mu.Lock()
	jobs := make([]*job, 0, len(e.jobs))
	for _, j := range e.jobs {
		jobs = append(jobs, j)
	}
	e.mu.Unlock()
	for _, j := range jobs {
		if !j.finished() {
			e.terminate(j, 0)
			select {
			case <-j.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// zipEntry is a file or directory to put in a test archive.
type zipEntry struct {
	name string
	body string
	mode os.FileMode // 0 means a regular file with mode 0644
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		header := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		header.SetMode(mode)
		f, err := w.CreateHeader(header)
		if err != nil {
			t.Fatalf("create zip entry %s: %v", e.name, err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// projectFiles is a minimal Scrapy project layout, under prefix.
func projectFiles(prefix string, extra ...zipEntry) []zipEntry {
	files := []zipEntry{
		{name: prefix + "scrapy.cfg", body: "[settings]\ndefault = demo.settings\n"},
		{name: prefix + "demo/__init__.py"},
		{name: prefix + "demo/settings.py", body: "BOT_NAME = 'demo'\n"},
	}
	for _, e := range extra {
		e.name = prefix + e.name
		files = append(files, e)
	}
	return files
}

// waitFinal polls the job until it reaches a final state.
func waitFinal(t *testing.T, eng engine.Engine, name string) engine.JobStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := eng.GetJob(t.Context(), &engine.GetJobRequest{Name: name})
		if err != nil {
			t.Fatalf("GetJob %s: %v", name, err)
		}
		if resp.Job.State.Final() {
			return resp.Job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 20s", name, resp.Job.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shellJob returns a spec that runs script with sh in dir.
func shellJob(name, dir, script string, labels map[string]string) engine.JobSpec {
	return engine.JobSpec{Name: name, ArtifactRef: dir, Command: []string{"sh", "-c", script}, Labels: labels}
}
