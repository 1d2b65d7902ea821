package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	python := testPython(t)
	jobSide := testJobSideDir(t)
	emptyDir := t.TempDir()
	tests := []struct {
		name     string
		settings map[string]any
		paths    []string // paths of the error diagnostics
	}{
		{"valid", map[string]any{"python": python, "job_side_dir": jobSide}, nil},
		{"missing job_side_dir", map[string]any{"python": python}, []string{"job_side_dir"}},
		{"job_side_dir without scripts", map[string]any{"python": python, "job_side_dir": emptyDir}, []string{"job_side_dir", "job_side_dir", "job_side_dir"}},
		{"python not runnable", map[string]any{"python": "/nonexistent/python3", "job_side_dir": jobSide}, []string{"python"}},
		{"bad stop_grace", map[string]any{"python": python, "job_side_dir": jobSide, "stop_grace": "soon"}, []string{"stop_grace"}},
		{"negative max_running_jobs", map[string]any{"python": python, "job_side_dir": jobSide, "max_running_jobs": -1}, []string{"max_running_jobs"}},
		{"negative max_unpacked_bytes", map[string]any{"python": python, "job_side_dir": jobSide, "max_unpacked_bytes": -1}, []string{"max_unpacked_bytes"}},
		{"wrong type", map[string]any{"python": 3, "job_side_dir": jobSide}, []string{"python"}},
		{"unknown setting", map[string]any{"python": python, "job_side_dir": jobSide, "pyton": "x"}, []string{"pyton"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.settings["data_dir"] = t.TempDir()
			raw, err := json.Marshal(tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			e := newEngine(hclog.NewNullLogger())
			resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			var paths []string
			for _, d := range resp.Diagnostics {
				if d.Severity == pluginapi.SeverityError {
					paths = append(paths, d.Path)
				}
			}
			if diff := cmp.Diff(tt.paths, paths); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s\ndiagnostics: %+v", diff, resp.Diagnostics)
			}
			_, err = e.current()
			if applied := err == nil; applied != (tt.paths == nil) {
				t.Errorf("settings applied = %v, want %v", applied, tt.paths == nil)
			}
		})
	}
}

func TestConfigureDefaults(t *testing.T) {
	t.Parallel()
	e := newEngine(hclog.NewNullLogger())
	dataDir := t.TempDir()
	raw, err := json.Marshal(map[string]any{"data_dir": dataDir, "python": testPython(t), "job_side_dir": testJobSideDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil || resp.Err() != nil {
		t.Fatalf("Configure = %+v, %v", resp, err)
	}
	s, err := e.current()
	if err != nil {
		t.Fatal(err)
	}
	want := &settings{
		DataDir:          dataDir,
		Python:           testPython(t),
		JobSideDir:       testJobSideDir(t),
		MaxUnpackedBytes: 512 << 20,
		StopGrace:        10 * time.Second,
		DescribeTimeout:  2 * time.Minute,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
	for _, sub := range []string{"artifacts", "jobs", "tmp"} {
		if info, err := os.Stat(filepath.Join(dataDir, sub)); err != nil || !info.IsDir() {
			t.Errorf("data_dir/%s not created: %v", sub, err)
		}
	}
}

// fakeInterpreter writes a shell script that exits with code for any input.
func fakeInterpreter(t *testing.T, dir, name string, code int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := "#!/bin/sh\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDetectPython(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := fakeInterpreter(t, dir, "good", 0)
	alsoGood := fakeInterpreter(t, dir, "also-good", 0)
	bad := fakeInterpreter(t, dir, "bad", 1)
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"first that works", []string{missing, bad, good, alsoGood}, good},
		{"only one", []string{alsoGood}, alsoGood},
		{"none works", []string{missing, bad}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := detectPython(t.Context(), tt.candidates)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "can import scrapy") {
					t.Errorf("detectPython = %q, %v; want an error", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("detectPython = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfiguredPythonWithoutScrapyWarns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// This stand-in runs "import sys" but fails "import scrapy".
	python := filepath.Join(dir, "python")
	script := "#!/bin/sh\ncase \"$2\" in *scrapy*) exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(python, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"data_dir": t.TempDir(), "python": python, "job_side_dir": testJobSideDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newEngine(hclog.NewNullLogger()).Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	want := []pluginapi.Diagnostic{{
		Severity: pluginapi.SeverityWarning,
		Summary:  python + " cannot import scrapy, so jobs will fail",
		Detail:   "Install Scrapy for this interpreter, or install Debian's python3-scrapy and remove the python setting.",
		Path:     "python",
	}}
	if diff := cmp.Diff(want, resp.Diagnostics); diff != "" {
		t.Errorf("diagnostics mismatch (-want +got):\n%s", diff)
	}
}
