package main

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// pingTimeout bounds the agent check of Configure.
const pingTimeout = 5 * time.Second

// capabilities lists the optional interfaces nomadEngine implements. It
// does not build images: deploys for Nomad use an image built elsewhere,
// for example by the docker engine's BuildImage, and pushed to a registry
// the Nomad clients can pull from.
var capabilities = []string{
	engine.CapabilityWatchJobs,
	engine.CapabilityJobLogs,
	engine.CapabilityCapacity,
}

// nomadEngine runs jobs as Nomad batch jobs with the docker driver.
type nomadEngine struct {
	logger hclog.Logger

	mu       sync.Mutex
	settings *settings   // nil until Configure succeeds
	nomad    *api.Client // the client for settings
}

var (
	_ engine.Engine           = (*nomadEngine)(nil)
	_ engine.JobWatcher       = (*nomadEngine)(nil)
	_ engine.LogStreamer      = (*nomadEngine)(nil)
	_ engine.CapacityReporter = (*nomadEngine)(nil)
)

func newEngine(logger hclog.Logger) *nomadEngine {
	return &nomadEngine{logger: logger.Named("engine-nomad")}
}

func (e *nomadEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{
		Name:         "nomad",
		Version:      version,
		APIVersions:  []int32{pluginapi.ProtocolVersion},
		Capabilities: capabilities,
	}, nil
}

// Configure applies valid settings, keeping the previous ones otherwise. An
// unreachable agent only gets a warning, because it may come up later and
// every call returns ErrUnavailable meanwhile.
func (e *nomadEngine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(req.Config, resp)
	if s == nil {
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	client, err := newNomadClient(s)
	if err != nil {
		resp.AddError("address", "cannot create the Nomad client", err.Error())
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	e.checkAgent(ctx, client, s, resp)
	e.mu.Lock()
	old := e.nomad
	e.settings, e.nomad = s, client
	e.mu.Unlock()
	if old != nil {
		old.Close()
	}
	e.logger.Info("configured", "address", s.Address, "namespace", s.Namespace, "region", s.Region,
		"datacenters", s.Datacenters, "token_set", s.Token != "")
	return resp, nil
}

// newNomadClient starts from the environment's configuration, for the
// NOMAD_CACERT, NOMAD_CLIENT_CERT and other TLS variables, and applies the
// settings over it.
func newNomadClient(s *settings) (*api.Client, error) {
	config := api.DefaultConfig()
	config.Address = s.Address
	config.SecretID = s.Token
	config.Namespace = s.Namespace
	config.Region = s.Region
	return api.NewClient(config)
}

func (e *nomadEngine) checkAgent(ctx context.Context, client *api.Client, s *settings, resp *pluginapi.ConfigureResponse) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var leader string
	q := (&api.QueryOptions{}).WithContext(ctx)
	if _, err := client.Raw().Query("/v1/status/leader", &leader, q); err != nil {
		resp.AddWarning("address", "cannot reach the Nomad agent at "+s.Address,
			"Jobs fail with an unavailable error until the agent responds. "+err.Error())
		e.logger.Warn("nomad agent unreachable", "address", s.Address, "error", err)
	}
}

// current returns the settings and client in use.
func (e *nomadEngine) current() (*settings, *api.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, nil, errdefs.Unavailable("nomad engine is not configured: the host must call Configure first")
	}
	return e.settings, e.nomad, nil
}
