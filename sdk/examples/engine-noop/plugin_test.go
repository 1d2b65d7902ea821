package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// binDir holds the plugin binary that buildPlugin builds; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "estela-engine-noop-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "create folder for the plugin binary: %v\n", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugin builds the estela-engine-noop binary on first use and returns
// its path.
var buildPlugin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "estela-engine-noop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// testWriter sends the host's log lines, the plugin's relayed lines
// included, to t.Log until the test ends, and drops them after, because
// t.Log panics then.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// newClient returns a go-plugin client that starts the binary the way the
// estela server does, offering the protocol versions of versions. The
// client is killed when the test ends.
func newClient(t *testing.T, versions map[int]plugin.PluginSet) *plugin.Client {
	t.Helper()
	bin, err := buildPlugin()
	if err != nil {
		t.Fatalf("build plugin: %v", err)
	}
	logs := &testWriter{t: t}
	t.Cleanup(func() {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		logs.done = true
	})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: versions,
		Cmd:              exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Output: logs, Level: hclog.Info}),
	})
	t.Cleanup(client.Kill)
	return client
}

// startPlugin starts the binary, dispenses its Engine and configures it
// with settings.
func startPlugin(t *testing.T, settings string) engine.Engine {
	t.Helper()
	client := newClient(t, engine.VersionedPlugins())
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(engine.PluginName)
	if err != nil {
		t.Fatalf("dispense engine: %v", err)
	}
	eng := raw.(engine.Engine)
	resp, err := eng.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(settings)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure %s: %v", settings, err)
	}
	return eng
}

func TestConformanceBinary(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, harness(func(t *testing.T) engine.Engine {
		return startPlugin(t, `{}`)
	}))
}

func TestHostOffersUnservedVersion(t *testing.T) {
	t.Parallel()
	client := newClient(t, map[int]plugin.PluginSet{
		pluginapi.ProtocolVersion + 1: {engine.PluginName: &engine.Plugin{}},
	})
	_, err := client.Client()
	if err == nil {
		t.Fatal("plugin started although the host offers only a protocol version it does not serve")
	}
	for _, want := range []string{
		"incompatible API version",
		fmt.Sprintf("Plugin version: %d", pluginapi.ProtocolVersion),
		fmt.Sprintf("Client versions: [%d]", pluginapi.ProtocolVersion+1),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err.Error(), want)
		}
	}
}

func TestHostOffersSeveralVersions(t *testing.T) {
	t.Parallel()
	versions := engine.VersionedPlugins()
	versions[pluginapi.ProtocolVersion+1] = plugin.PluginSet{engine.PluginName: &engine.Plugin{}}
	client := newClient(t, versions)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	if got := client.NegotiatedVersion(); got != pluginapi.ProtocolVersion {
		t.Errorf("negotiated version = %d, want %d", got, pluginapi.ProtocolVersion)
	}
	raw, err := rpc.Dispense(engine.PluginName)
	if err != nil {
		t.Fatalf("dispense engine: %v", err)
	}
	info, err := raw.(engine.Engine).GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Name != "noop" {
		t.Errorf("plugin name = %q, want noop", info.Name)
	}
}

func TestBinaryWithoutHostExits(t *testing.T) {
	t.Parallel()
	bin, err := buildPlugin()
	if err != nil {
		t.Fatalf("build plugin: %v", err)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil {
		t.Fatal("binary started without the handshake cookie exited with code 0")
	}
	if !strings.Contains(string(out), "This binary is a plugin") {
		t.Errorf("output = %q, want go-plugin's message", out)
	}
}
