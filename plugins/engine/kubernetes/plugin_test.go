package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// fakeAPIServer responds to GET /version with the fields of version.Info
// that client-go's discovery client decodes, and to every other request
// with the 404 Status object of a real API server.
func fakeAPIServer(t *testing.T) *httptest.Server {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/version" {
			fmt.Fprint(w, `{"major":"1","minor":"33","gitVersion":"v1.33.0","platform":"linux/amd64"}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"%s not found","reason":"NotFound","code":404}`, r.URL.Path)
	}))
	t.Cleanup(server.Close)
	return server
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "estela-engine-kubernetes")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	return bin
}

// startPlugin starts the binary as the host does and returns its Engine.
func startPlugin(t *testing.T, bin string) engine.Engine {
	t.Helper()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: engine.VersionedPlugins(),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Output: newTestWriter(t), Level: hclog.Debug}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(engine.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return raw.(engine.Engine)
}

// testWriter sends the host's log lines, plugin lines included, to t.Log
// until the test ends, and drops them after, because t.Log panics then.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

// newTestWriter must be called before registering the cleanup that stops
// the plugin, so that the writer closes last.
func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return w
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func TestPluginBinary(t *testing.T) {
	t.Parallel()
	eng := startPlugin(t, buildPlugin(t))
	ctx := t.Context()

	info, err := eng.GetInfo(ctx)
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	wantInfo := &pluginapi.Info{
		Name: "kubernetes", Version: version, APIVersions: []int32{1},
		Capabilities: []string{"watch_jobs", "job_logs", "capacity", "build_image"},
	}
	if diff := cmp.Diff(wantInfo, info); diff != "" {
		t.Errorf("GetInfo mismatch (-want +got):\n%s", diff)
	}

	missing, err := eng.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte(`{"kubeconfig":"/nonexistent/kubeconfig"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if diff := cmp.Diff([]string{"kubeconfig"}, errorPaths(missing)); diff != "" {
		t.Errorf("diagnostics of a missing kubeconfig (-want +got):\n%s", diff)
	}

	kubeconfig := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, kubeconfig, fakeAPIServer(t).URL)
	resp, err := eng.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte(`{"kubeconfig":"` + kubeconfig + `"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(resp.Diagnostics) != 0 {
		t.Errorf("diagnostics with a reachable API server = %+v, want none", resp.Diagnostics)
	}
	_, err = eng.GetJob(ctx, &engine.GetJobRequest{Name: "sj-1-7"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob of an unknown job: error = %v, want ErrNotFound", err)
	}
	_, err = eng.PrepareArtifact(ctx, &engine.PrepareArtifactRequest{ProjectID: "p7", DeployID: 1, Archive: strings.NewReader("zip")})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("PrepareArtifact: error = %v, want ErrInvalid", err)
	}
}
