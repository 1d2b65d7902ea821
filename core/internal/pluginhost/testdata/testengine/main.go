// Command testengine is an engine plugin for the plugin host's tests: it can hang in GetJob
// and can be built to serve another protocol version, as a plugin from a newer SDK would.
package main

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// protocol is the go-plugin protocol version served; tests build with -X main.protocol=2.
var protocol = "1"

type testEngine struct {
	mu   sync.Mutex
	hang bool
}

func (e *testEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	v, _ := strconv.Atoi(protocol)
	return &pluginapi.Info{Name: "test", Version: "0.0.1", APIVersions: []int32{int32(v)}}, nil
}

func (e *testEngine) Configure(_ context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	var settings struct {
		Hang bool `json:"hang"`
	}
	resp := &pluginapi.ConfigureResponse{}
	if err := json.Unmarshal(req.Config, &settings); err != nil {
		resp.AddError("", "settings are not a JSON object", err.Error())
		return resp, nil
	}
	e.mu.Lock()
	e.hang = settings.Hang
	e.mu.Unlock()
	return resp, nil
}

func (e *testEngine) PrepareArtifact(context.Context, *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	return nil, errdefs.Invalid("the test engine prepares nothing")
}

func (e *testEngine) CreateJob(_ context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	return &engine.CreateJobResponse{Job: engine.JobStatus{Name: req.Spec.Name, State: engine.JobSucceeded}, Created: true}, nil
}

// GetJob never answers when the engine was configured to hang, like a plugin stuck on a lock.
func (e *testEngine) GetJob(_ context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	e.mu.Lock()
	hang := e.hang
	e.mu.Unlock()
	if hang {
		select {}
	}
	return nil, errdefs.NotFound("job %q not found", req.Name)
}

func (e *testEngine) ListJobs(context.Context, *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	return &engine.ListJobsResponse{}, nil
}

func (e *testEngine) StopJob(_ context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	return nil, errdefs.NotFound("job %q not found", req.Name)
}

func (e *testEngine) DeleteJob(_ context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	return nil, errdefs.NotFound("job %q not found", req.Name)
}

func main() {
	if protocol == "1" {
		engine.Serve(&testEngine{})
		return
	}
	v, _ := strconv.Atoi(protocol)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{v: {engine.PluginName: &engine.Plugin{Impl: &testEngine{}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
