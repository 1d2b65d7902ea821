package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "estela-engine-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	return bin
}

// startPlugin starts the binary the way the host does and returns the
// client, to kill it, and the dispensed Engine.
func startPlugin(t *testing.T, bin string) (*plugin.Client, engine.Engine) {
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
	return client, raw.(engine.Engine)
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

func configurePlugin(t *testing.T, eng engine.Engine, dataDir string) {
	t.Helper()
	resp, err := eng.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: testConfig(t, dataDir)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
}

func TestPluginBinary(t *testing.T) {
	t.Parallel()
	bin := buildPlugin(t)
	dataDir := t.TempDir()
	client, eng := startPlugin(t, bin)
	ctx := t.Context()

	bad, err := eng.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte(`{"data_dir":"` + dataDir + `","python":"` + testPython(t) + `"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(bad.Diagnostics) != 1 || bad.Diagnostics[0].Path != "job_side_dir" {
		t.Errorf("diagnostics without job_side_dir = %+v", bad.Diagnostics)
	}
	configurePlugin(t, eng, dataDir)

	t.Run("prepare artifact", func(t *testing.T) {
		for deployID, prefix := range map[int64]string{1: "", 2: "myproject/"} {
			resp, err := eng.PrepareArtifact(ctx, &engine.PrepareArtifactRequest{
				ProjectID: "proj", DeployID: deployID, Archive: bytes.NewReader(makeZip(t, projectFiles(prefix)...)),
			})
			if err != nil {
				t.Fatalf("PrepareArtifact with prefix %q: %v", prefix, err)
			}
			if diff := cmp.Diff([]string{"alpha", "beta"}, resp.Spiders); diff != "" {
				t.Errorf("spiders with prefix %q (-want +got):\n%s", prefix, diff)
			}
		}
		_, err := eng.PrepareArtifact(ctx, &engine.PrepareArtifactRequest{
			ProjectID: "proj", DeployID: 3, Archive: bytes.NewReader(makeZip(t, projectFiles("", zipEntry{name: "../escape.py"})...)),
		})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("traversal: error = %v, want ErrInvalid", err)
		}
	})

	t.Run("job lifecycle", func(t *testing.T) {
		dir := t.TempDir()
		long := shellJob("long", dir, "sleep 30", map[string]string{"project": "p", "kind": "long"})
		short := shellJob("short", dir, "exit 0", map[string]string{"project": "p", "kind": "short"})
		for _, spec := range []engine.JobSpec{long, short} {
			created, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: spec})
			if err != nil || !created.Created {
				t.Fatalf("CreateJob %s = %+v, %v", spec.Name, created, err)
			}
		}
		again, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: long})
		if err != nil || again.Created {
			t.Errorf("second CreateJob = %+v, %v; want the existing job", again, err)
		}
		if got, err := eng.GetJob(ctx, &engine.GetJobRequest{Name: "long"}); err != nil || got.Job.State != engine.JobRunning {
			t.Errorf("GetJob long = %+v, %v; want RUNNING", got, err)
		}
		if got := waitFinal(t, eng, "short"); got.State != engine.JobSucceeded {
			t.Errorf("short = %s %q, want SUCCEEDED", got.State, got.Reason)
		}
		listed, err := eng.ListJobs(ctx, &engine.ListJobsRequest{Labels: map[string]string{"kind": "long"}})
		if err != nil || len(listed.Jobs) != 1 || listed.Jobs[0].Name != "long" {
			t.Errorf("ListJobs kind=long = %+v, %v", listed, err)
		}
		stopped, err := eng.StopJob(ctx, &engine.StopJobRequest{Name: "long", Grace: time.Second})
		if err != nil || stopped.Job.State != engine.JobStopped {
			t.Errorf("StopJob = %+v, %v; want STOPPED", stopped, err)
		}
		if _, err := eng.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "long"}); err != nil {
			t.Errorf("DeleteJob: %v", err)
		}
		if _, err := eng.GetJob(ctx, &engine.GetJobRequest{Name: "long"}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
		}
		if _, err := eng.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "never-created"}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("DeleteJob of an unknown job: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("job survives plugin restart", func(t *testing.T) {
		if _, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: shellJob("survivor", t.TempDir(), "sleep 30", nil)}); err != nil {
			t.Fatalf("CreateJob: %v", err)
		}
		client.Kill()
		_, restarted := startPlugin(t, bin)
		configurePlugin(t, restarted, dataDir)
		got, err := restarted.GetJob(ctx, &engine.GetJobRequest{Name: "survivor"})
		if err != nil || got.Job.State != engine.JobRunning {
			t.Fatalf("GetJob after restart = %+v, %v; want RUNNING", got, err)
		}
		stopped, err := restarted.StopJob(ctx, &engine.StopJobRequest{Name: "survivor", Grace: time.Second})
		if err != nil || stopped.Job.State != engine.JobStopped {
			t.Errorf("StopJob after restart = %+v, %v; want STOPPED", stopped, err)
		}
		short, err := restarted.GetJob(ctx, &engine.GetJobRequest{Name: "short"})
		if err != nil || short.Job.State != engine.JobSucceeded {
			t.Errorf("finished job after restart = %+v, %v; want SUCCEEDED", short, err)
		}
	})
}

// With max_running_jobs reached, CreateJob returns an "at capacity" error across the plugin
// boundary and starts nothing, until a running job ends.
func TestPluginMaxRunningJobs(t *testing.T) {
	t.Parallel()
	_, eng := startPlugin(t, buildPlugin(t))
	ctx := t.Context()
	var settings map[string]any
	if err := json.Unmarshal(testConfig(t, t.TempDir()), &settings); err != nil {
		t.Fatal(err)
	}
	settings["max_running_jobs"] = 1
	raw, _ := json.Marshal(settings)
	if resp, err := eng.Configure(ctx, &pluginapi.ConfigureRequest{Config: raw}); err != nil || resp.Err() != nil {
		t.Fatalf("Configure = %+v, %v", resp, err)
	}
	dir := t.TempDir()
	long := shellJob("long", dir, "sleep 30", nil)
	next := shellJob("next", dir, "exit 0", nil)
	if _, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: long}); err != nil {
		t.Fatalf("CreateJob long: %v", err)
	}
	_, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: next})
	if !errors.Is(err, errdefs.ErrAtCapacity) || !strings.Contains(err.Error(), "max_running_jobs (1) reached") {
		t.Fatalf("CreateJob beyond max_running_jobs = %v, want ErrAtCapacity naming the setting", err)
	}
	if _, err := eng.GetJob(ctx, &engine.GetJobRequest{Name: "next"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob of the rejected job = %v, want ErrNotFound", err)
	}
	again, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: long})
	if err != nil || again.Created {
		t.Errorf("CreateJob of the running job again = %+v, %v; want the existing job", again, err)
	}

	if _, err := eng.StopJob(ctx, &engine.StopJobRequest{Name: "long"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	waitFinal(t, eng, "long")
	created, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: next})
	if err != nil || !created.Created {
		t.Errorf("CreateJob after the running job ended = %+v, %v; want a new job", created, err)
	}
}
