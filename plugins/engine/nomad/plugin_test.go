package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// startPluginBinary builds the plugin, starts it the way the host does and
// returns the dispensed Engine and the host's log.
func startPluginBinary(t *testing.T) (engine.Engine, *testWriter) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "estela-engine-nomad")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	log := newTestWriter(t)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: engine.VersionedPlugins(),
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Output: log, Level: hclog.Debug}),
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
	return raw.(engine.Engine), log
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// testWriter sends the host's log lines, plugin lines included, to t.Log
// until the test ends, and drops them after, because t.Log panics then.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
	all  strings.Builder
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
	w.all.Write(b)
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func TestPluginBinary(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	eng, log := startPluginBinary(t)
	ctx := t.Context()

	info, err := eng.GetInfo(ctx)
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Name != "nomad" || !slices.Equal(info.Capabilities, capabilities) {
		t.Errorf("GetInfo = %+v, want nomad with capabilities %v", info, capabilities)
	}
	bad, err := eng.Configure(ctx, configureRequest(t, testSettings(a, map[string]any{"mhz_per_core": -1})))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(bad.Diagnostics) != 1 || bad.Diagnostics[0].Path != "mhz_per_core" {
		t.Errorf("diagnostics of a bad mhz_per_core = %+v, want one on mhz_per_core", bad.Diagnostics)
	}
	good, err := eng.Configure(ctx, configureRequest(t, testSettings(a, nil)))
	if err != nil || good.HasErrors() {
		t.Fatalf("Configure = %+v, %v", good, err)
	}

	created, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: sampleSpec("sj-9-proj")})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	got, err := eng.GetJob(ctx, &engine.GetJobRequest{Name: "sj-9-proj"})
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	_, unknownErr := eng.GetJob(ctx, &engine.GetJobRequest{Name: "sj-none"})

	if !created.Created || created.Job.State != engine.JobPending {
		t.Errorf("CreateJob = %+v, want a created PENDING job", created)
	}
	if diff := cmp.Diff(sampleSpec("").Labels, got.Job.Labels); diff != "" || got.Job.State != engine.JobRunning {
		t.Errorf("GetJob = %+v, want RUNNING with the spec's labels; labels diff (-want +got):\n%s", got.Job, diff)
	}
	if !isNotFoundErr(unknownErr) {
		t.Errorf("GetJob of an unknown job: error = %v, want ErrNotFound", unknownErr)
	}
	if strings.Contains(log.String(), "secret-token") || strings.Contains(log.String(), "redis://redis") {
		t.Error("the plugin logged the ACL token or an environment value")
	}
}
