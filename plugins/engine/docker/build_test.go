package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

type zipEntry struct {
	name, body string
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, entry := range entries {
		w, err := zw.Create(entry.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, entry.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// projectZip is a Scrapy project zipped as `estela deploy` does, inside one
// top-level directory.
func projectZip(t *testing.T) []byte {
	return makeZip(t,
		zipEntry{"proj/", ""},
		zipEntry{"proj/.estela/", ""},
		zipEntry{"proj/.estela/Dockerfile-estela", "FROM python:3.12\nCOPY . /app\n"},
		zipEntry{"proj/scrapy.cfg", "[settings]\ndefault = proj.settings\n"},
		zipEntry{"proj/proj/spiders/books.py", "import scrapy\n"},
	)
}

// apiServer serves the archive download and the deploy report endpoints of
// the estela API.
type apiServer struct {
	srv     *httptest.Server
	archive []byte
	mu      sync.Mutex
	reports []recordedReport
}

type recordedReport struct {
	Path          string
	Authorization string
	Body          deployReport
}

func newAPIServer(t *testing.T, archive []byte) *apiServer {
	a := &apiServer{archive: archive}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/archive/proj/3":
			if r.Header.Get("Authorization") != "Token archive-token" {
				http.Error(w, `{"detail":"Invalid token."}`, http.StatusUnauthorized)
				return
			}
			_, _ = w.Write(a.archive)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/projects/"):
			var body deployReport
			_ = json.NewDecoder(r.Body).Decode(&body)
			a.mu.Lock()
			a.reports = append(a.reports, recordedReport{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body})
			a.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *apiServer) reportCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reports)
}

func buildRequest(a *apiServer) *engine.BuildImageRequest {
	return &engine.BuildImageRequest{
		ProjectID:    "proj",
		DeployID:     3,
		Image:        testImage,
		ArchiveURL:   a.srv.URL + "/archive/proj/3",
		ArchiveToken: "archive-token",
		Registry:     engine.RegistryAuth{Server: "registry.example.com", Username: "robot", Secret: "s3cret"},
		APIHost:      a.srv.URL,
		ReportToken:  "report-token",
	}
}

// waitBuild waits until no build runs in e.
func waitBuild(t *testing.T, e *dockerEngine) {
	t.Helper()
	waitFor(t, "the build to finish", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.builds) == 0
	})
}

func TestBuildImage(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	a := newAPIServer(t, projectZip(t))
	e := newTestEngine(t, d, nil)

	resp, err := e.BuildImage(t.Context(), buildRequest(a))
	if err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	waitBuild(t, e)

	if diff := cmp.Diff(&engine.BuildImageResponse{BuildName: "estela-deploy-proj-3", Image: testImage}, resp); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
	if len(d.builds) != 1 {
		t.Fatalf("builds = %d, want 1", len(d.builds))
	}
	b := d.builds[0]
	t.Run("build query", func(t *testing.T) {
		got := map[string]string{"t": b.Query.Get("t"), "dockerfile": b.Query.Get("dockerfile"), "labels": b.Query.Get("labels")}
		want := map[string]string{"t": testImage, "dockerfile": ".estela/Dockerfile-estela", "labels": `{"io.estela-go.deploy":"proj.3"}`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("build query mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("build registry config", func(t *testing.T) {
		raw, err := base64.URLEncoding.DecodeString(b.Header.Get("X-Registry-Config"))
		if err != nil {
			t.Fatalf("X-Registry-Config is not base64url: %v", err)
		}
		var got map[string]registry.AuthConfig
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("decode X-Registry-Config: %v", err)
		}
		want := map[string]registry.AuthConfig{"registry.example.com": {Username: "robot", Password: "s3cret", ServerAddress: "registry.example.com"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("X-Registry-Config mismatch (-want +got):\n%s", diff)
		}
		if ct := b.Header.Get("Content-Type"); ct != "application/x-tar" {
			t.Errorf("Content-Type = %q, want application/x-tar", ct)
		}
	})
	t.Run("build context", func(t *testing.T) {
		want := map[string]string{
			".estela/":                  "",
			".estela/Dockerfile-estela": "FROM python:3.12\nCOPY . /app\n",
			"scrapy.cfg":                "[settings]\ndefault = proj.settings\n",
			"proj/spiders/books.py":     "import scrapy\n",
		}
		if diff := cmp.Diff(want, b.Files); diff != "" {
			t.Errorf("tar content mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("push", func(t *testing.T) {
		if len(d.pushes) != 1 {
			t.Fatalf("pushes = %d, want 1", len(d.pushes))
		}
		got := decodeAuthHeader(t, d.pushes[0].Get("X-Registry-Auth"))
		want := registry.AuthConfig{Username: "robot", Password: "s3cret", ServerAddress: "registry.example.com"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("X-Registry-Auth mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("report container", func(t *testing.T) {
		var report *container.CreateRequest
		for _, c := range d.creates {
			if c.Name == "estela-deploy-proj-3" {
				report = &container.CreateRequest{}
				if err := json.Unmarshal(c.Body, report); err != nil {
					t.Fatal(err)
				}
			}
		}
		if report == nil {
			t.Fatalf("no report container created: %+v", d.creates)
		}
		wantEnv := []string{
			`JOB_INFO={"api_host":"` + a.srv.URL + `","key":"proj","spider":""}`,
			"KEY=proj.3",
			"TOKEN=report-token",
		}
		if diff := cmp.Diff(wantEnv, report.Env); diff != "" {
			t.Errorf("report env mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"estela-report-deploy"}, []string(report.Entrypoint)); diff != "" {
			t.Errorf("report entrypoint mismatch (-want +got):\n%s", diff)
		}
		if report.Image != testImage || report.HostConfig.Memory != 512<<20 || report.HostConfig.NanoCPUs != 500_000_000 {
			t.Errorf("report image %q memory %d cpus %d, want %s, 512 MiB, 0.5 CPU", report.Image, report.HostConfig.Memory, report.HostConfig.NanoCPUs, testImage)
		}
		if d.container("estela-deploy-proj-3") != nil {
			t.Error("the report container of a successful report was not removed")
		}
		if a.reportCount() != 0 {
			t.Errorf("the plugin reported %+v, want no report when estela-report-deploy succeeds", a.reports)
		}
	})
}

func TestBuildImageFailureReported(t *testing.T) {
	t.Parallel()
	noDockerfile := makeZip(t, zipEntry{"proj/scrapy.cfg", "[settings]\n"})
	cases := []struct {
		name       string
		setup      func(d *fakeDaemon, a *apiServer, req *engine.BuildImageRequest)
		wantReason string
	}{
		{
			name:       "build error",
			setup:      func(d *fakeDaemon, _ *apiServer, _ *engine.BuildImageRequest) { d.buildError = "pip install failed" },
			wantReason: "pip install failed",
		},
		{
			name:       "archive rejected",
			setup:      func(_ *fakeDaemon, _ *apiServer, req *engine.BuildImageRequest) { req.ArchiveToken = "wrong" },
			wantReason: "401 Unauthorized",
		},
		{
			name:       "no dockerfile",
			setup:      func(_ *fakeDaemon, a *apiServer, _ *engine.BuildImageRequest) { a.archive = noDockerfile },
			wantReason: "has no .estela/Dockerfile-estela",
		},
		{
			name:       "report command fails",
			setup:      func(d *fakeDaemon, _ *apiServer, _ *engine.BuildImageRequest) { d.reportExit = 2 },
			wantReason: "estela-report-deploy exited with code 2",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			a := newAPIServer(t, projectZip(t))
			e := newTestEngine(t, d, nil)
			req := buildRequest(a)
			c.setup(d, a, req)

			if _, err := e.BuildImage(t.Context(), req); err != nil {
				t.Fatalf("BuildImage: %v", err)
			}
			waitBuild(t, e)

			if a.reportCount() != 1 {
				t.Fatalf("reports = %+v, want one FAILURE report", a.reports)
			}
			got := a.reports[0]
			if got.Path != "/api/projects/proj/deploys/3" || got.Authorization != "Token report-token" || got.Body.Status != "FAILURE" {
				t.Errorf("report = %+v, want FAILURE to /api/projects/proj/deploys/3 with the report token", got)
			}
			if !strings.Contains(got.Body.ErrorReason, c.wantReason) {
				t.Errorf("error_reason = %q, want it to contain %q", got.Body.ErrorReason, c.wantReason)
			}
			if strings.Contains(got.Body.ErrorReason, "s3cret") || strings.Contains(got.Body.ErrorReason, "archive-token") {
				t.Errorf("error_reason %q contains a secret", got.Body.ErrorReason)
			}
		})
	}
}

func TestBuildImageSkipPush(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	a := newAPIServer(t, projectZip(t))
	e := newTestEngine(t, d, map[string]any{"push": false})

	if _, err := e.BuildImage(t.Context(), buildRequest(a)); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	waitBuild(t, e)

	if len(d.builds) != 1 || len(d.pushes) != 0 {
		t.Errorf("builds %d pushes %d, want 1 build and no push", len(d.builds), len(d.pushes))
	}
}

func TestBuildImageRunsOnce(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	a := newAPIServer(t, projectZip(t))
	e := newTestEngine(t, d, nil)
	d.reportExit = 1 // keeps the report container, as after a failed report

	for range 2 {
		if _, err := e.BuildImage(t.Context(), buildRequest(a)); err != nil {
			t.Fatalf("BuildImage: %v", err)
		}
		waitBuild(t, e)
	}

	if len(d.builds) != 1 {
		t.Errorf("builds = %d, want 1: the second call finds the report container", len(d.builds))
	}
}

func TestBuildImageInvalidRequest(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	a := newAPIServer(t, projectZip(t))
	e := newTestEngine(t, d, nil)
	cases := map[string]func(req *engine.BuildImageRequest){
		"project id":  func(req *engine.BuildImageRequest) { req.ProjectID = "Proj/1" },
		"deploy id":   func(req *engine.BuildImageRequest) { req.DeployID = 0 },
		"image":       func(req *engine.BuildImageRequest) { req.Image = "estela/proj:bad tag" },
		"archive url": func(req *engine.BuildImageRequest) { req.ArchiveURL = "file:///etc/passwd" },
		"api host":    func(req *engine.BuildImageRequest) { req.APIHost = "" },
	}
	for name, mutate := range cases {
		req := buildRequest(a)
		mutate(req)
		if _, err := e.BuildImage(t.Context(), req); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: BuildImage error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestPullUsesBuildLogin(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	a := newAPIServer(t, projectZip(t))
	e := newTestEngine(t, d, map[string]any{"pull": "always"})
	if _, err := e.BuildImage(t.Context(), buildRequest(a)); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	waitBuild(t, e)

	createJob(t, e, shellSpec("job-pull", "exit 0", nil))

	if len(d.pulls) != 1 {
		t.Fatalf("pulls = %d, want 1", len(d.pulls))
	}
	if got := d.pulls[0].Get("fromImage"); got != "registry.example.com/estela/proj" {
		t.Errorf("fromImage = %q, want registry.example.com/estela/proj", got)
	}
	got := decodeAuthHeader(t, d.pullAuths[0])
	want := registry.AuthConfig{Username: "robot", Password: "s3cret", ServerAddress: "registry.example.com"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pull X-Registry-Auth mismatch (-want +got):\n%s", diff)
	}
}
