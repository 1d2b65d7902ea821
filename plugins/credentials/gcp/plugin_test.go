package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// startPlugin builds the plugin binary and starts it the way the host does.
// Its environment has no Google credentials, and its metadata server is a
// closed loopback port.
func startPlugin(t *testing.T) credentials.Provider {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "estela-credentials-gcp")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GCE_METADATA_HOST=127.0.0.1:1"}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: credentials.VersionedPlugins(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "host", Output: newTestWriter(t), Level: hclog.Debug}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	raw, err := rpc.Dispense(credentials.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return raw.(credentials.Provider)
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
	tokens := startTokenServer(t)
	gcs := startFakeGCS(t, tokens.validToken)
	keyFile := writeServiceAccount(t, tokens.server.URL)
	provider := startPlugin(t)
	ctx := t.Context()

	info, err := provider.GetInfo(ctx)
	if err != nil || info.Name != "gcp" {
		t.Fatalf("GetInfo = %+v, %v", info, err)
	}

	bad, err := provider.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte(`{"credentials_file":"` + keyFile + `"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(bad.Diagnostics) != 1 || bad.Diagnostics[0].Path != "bucket" {
		t.Errorf("diagnostics for a missing bucket = %+v", bad.Diagnostics)
	}

	config := fmt.Sprintf(`{"bucket":%q,"endpoint":%q,"credentials_file":%q,"registry":{"server":"europe-docker.pkg.dev"}}`, testBucket, gcs.server.URL, keyFile)
	resp, err := provider.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte(config)})
	if err != nil || resp.Err() != nil {
		t.Fatalf("Configure = %+v, %v", resp, err)
	}

	auth, err := provider.RegistryAuth(ctx, &credentials.RegistryAuthRequest{Registry: "europe-docker.pkg.dev"})
	if err != nil || auth.Username != "oauth2accesstoken" || !tokens.validToken(auth.Secret) || auth.ExpiresAt.IsZero() {
		t.Errorf("RegistryAuth = %+v, %v", auth, err)
	}

	data := randomBytes(12 << 20)
	put, err := provider.PutProject(ctx, &credentials.PutProjectRequest{ProjectID: "p-1", DeployID: 3, Archive: bytes.NewReader(data)})
	if err != nil || put.Size != int64(len(data)) || put.SHA256 != sha256Hex(data) {
		t.Fatalf("PutProject = %+v, %v", put, err)
	}
	// 12 MiB in chunks of defaultChunkSize (8 MiB): 8 + 4.
	if n := gcs.countRequests("PUT "); n != 2 {
		t.Errorf("upload requests = %d, want 2", n)
	}
	var got bytes.Buffer
	if err := provider.GetProject(ctx, &credentials.GetProjectRequest{ProjectID: "p-1", DeployID: 3}, &got); err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", got.Len(), len(data))
	}

	err = provider.GetProject(ctx, &credentials.GetProjectRequest{ProjectID: "p-1", DeployID: 4}, &got)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject of a missing deploy: error = %v, want ErrNotFound", err)
	}
	if _, err := provider.DeleteProject(ctx, &credentials.DeleteProjectRequest{ProjectID: "p-1"}); err != nil {
		t.Errorf("DeleteProject: %v", err)
	}
	if names := gcs.objectNames(); len(names) != 0 {
		t.Errorf("objects left after DeleteProject: %v", names)
	}
}
