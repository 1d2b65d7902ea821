package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const testImage = "registry.example.com/estela/proj:estela_proj_3"

// newTestEngine returns an engine configured against d with extra settings.
func newTestEngine(t *testing.T, d *fakeDaemon, extra map[string]any) *dockerEngine {
	t.Helper()
	e := newEngine(hclog.NewNullLogger())
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: testSettings(t, d, extra)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
	// Let the search for running jobs with a maximum runtime end, so that
	// its calls do not mix with those a test counts.
	e.adopting.Wait()
	return e
}

func testSettings(t *testing.T, d *fakeDaemon, extra map[string]any) []byte {
	t.Helper()
	settings := map[string]any{"host": d.host(), "stop_grace": "2s"}
	for k, v := range extra {
		settings[k] = v
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sampleSpec is a spider job as the host sends it, with the LARGE tier.
func sampleSpec(name string) engine.JobSpec {
	return engine.JobSpec{
		Name:        name,
		ArtifactRef: testImage,
		Command:     []string{"estela-crawl"},
		Env: map[string]string{
			"JOB_INFO":          `{"spider":"books","key":"7.2.proj"}`,
			"REDIS_URL":         "redis://redis:6379/0",
			"MEMUSAGE_LIMIT_MB": "1305",
		},
		Labels: map[string]string{"estela/project": "proj", "estela/job": "7"},
		Resources: engine.Resources{
			CPURequestMillis: 512, CPULimitMillis: 1024,
			MemoryRequestBytes: 1152 << 20, MemoryLimitBytes: 1536 << 20,
		},
	}
}

func shellSpec(name, script string, labels map[string]string) engine.JobSpec {
	return engine.JobSpec{Name: name, ArtifactRef: testImage, Command: []string{"sh", "-c", script}, Labels: labels}
}

func createJob(t *testing.T, e engine.Engine, spec engine.JobSpec) *engine.CreateJobResponse {
	t.Helper()
	resp, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", spec.Name, err)
	}
	return resp
}

func getJob(t *testing.T, e engine.Engine, name string) engine.JobStatus {
	t.Helper()
	resp, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: name})
	if err != nil {
		t.Fatalf("GetJob %s: %v", name, err)
	}
	return resp.Job
}

// waitFor polls cond every 10 ms for up to 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nullLogger() hclog.Logger {
	return hclog.NewNullLogger()
}

func configureRequest(t *testing.T, settings map[string]any) *pluginapi.ConfigureRequest {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	return &pluginapi.ConfigureRequest{Config: raw}
}
