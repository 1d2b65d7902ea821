package main

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// pingTimeout bounds the daemon check of Configure.
const pingTimeout = 5 * time.Second

// capabilities lists the optional interfaces dockerEngine implements.
var capabilities = []string{
	engine.CapabilityWatchJobs,
	engine.CapabilityJobLogs,
	engine.CapabilityBuildImage,
}

// dockerEngine runs jobs as containers of one Docker daemon.
type dockerEngine struct {
	logger hclog.Logger

	mu       sync.Mutex
	settings *settings      // nil until Configure succeeds
	docker   *client.Client // the client for settings
	// statuses caches container inspections by container ID; see statusCache.
	statuses statusCache
	// deadlines stops jobs at their maximum runtime, and adopting tracks
	// the search for the running ones that Configure starts.
	deadlines deadlines
	adopting  sync.WaitGroup
	// builds holds the names of the deploy builds running in this process.
	builds map[string]bool
	// pullAuth holds the registry login of the latest BuildImage per
	// registry server, for pulls. It is lost when the plugin restarts.
	pullAuth map[string]registry.AuthConfig
	// background is the context of deploy builds, which outlive BuildImage.
	background context.Context
}

var (
	_ engine.Engine       = (*dockerEngine)(nil)
	_ engine.JobWatcher   = (*dockerEngine)(nil)
	_ engine.LogStreamer  = (*dockerEngine)(nil)
	_ engine.ImageBuilder = (*dockerEngine)(nil)
)

func newEngine(logger hclog.Logger) *dockerEngine {
	return &dockerEngine{
		logger:     logger.Named("engine-docker"),
		statuses:   statusCache{entries: map[string]cachedStatus{}},
		deadlines:  deadlines{timers: map[string]*time.Timer{}},
		builds:     map[string]bool{},
		pullAuth:   map[string]registry.AuthConfig{},
		background: context.Background(),
	}
}

func (e *dockerEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{
		Name:         "docker",
		Version:      version,
		APIVersions:  []int32{pluginapi.ProtocolVersion},
		Capabilities: capabilities,
	}, nil
}

// Configure applies valid settings, keeping the previous ones otherwise. An
// unreachable daemon only gets a warning, because it may come up later and
// every call reports ErrUnavailable meanwhile.
func (e *dockerEngine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(req.Config, resp)
	if s == nil {
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	docker, err := newDockerClient(s)
	if err != nil {
		resp.AddError("host", "cannot create the Docker client", err.Error())
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	e.checkDaemon(ctx, docker, s, resp)
	e.mu.Lock()
	old := e.docker
	e.settings, e.docker = s, docker
	e.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	e.adoptDeadlines(docker)
	e.logger.Info("configured", "host", s.Host, "api_version", s.APIVersion, "network", s.Network, "pull", s.Pull, "push", s.Push)
	return resp, nil
}

func newDockerClient(s *settings) (*client.Client, error) {
	opts := []client.Opt{client.WithTLSClientConfigFromEnv(), client.WithHost(s.Host)}
	if s.APIVersion != "" {
		opts = append(opts, client.WithVersion(s.APIVersion))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	return client.NewClientWithOpts(opts...)
}

func (e *dockerEngine) checkDaemon(ctx context.Context, docker *client.Client, s *settings, resp *pluginapi.ConfigureResponse) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := docker.Ping(ctx); err != nil {
		resp.AddWarning("host", "cannot reach the Docker daemon at "+s.Host,
			"Jobs fail with an unavailable error until the daemon responds. "+err.Error())
		e.logger.Warn("docker daemon unreachable", "host", s.Host, "error", err)
	}
}

// current returns the settings and client in use.
func (e *dockerEngine) current() (*settings, *client.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, nil, errdefs.Unavailable("docker engine is not configured: the host must call Configure first")
	}
	return e.settings, e.docker, nil
}
