package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// serverCheckTimeout bounds the API server check of Configure.
const serverCheckTimeout = 10 * time.Second

// kubeEngine runs jobs as batch/v1 Jobs of one Kubernetes namespace.
type kubeEngine struct {
	logger hclog.Logger
	// connect returns the clientset for valid settings. Tests replace it to
	// return a fake clientset.
	connect func(*settings) (kubernetes.Interface, error)
	// now returns the current time; tests replace it.
	now func() time.Time

	mu       sync.Mutex
	settings *settings // nil until Configure succeeds
	client   kubernetes.Interface

	stopped *stoppedJobs
}

var (
	_ engine.Engine           = (*kubeEngine)(nil)
	_ engine.JobWatcher       = (*kubeEngine)(nil)
	_ engine.LogStreamer      = (*kubeEngine)(nil)
	_ engine.CapacityReporter = (*kubeEngine)(nil)
	_ engine.ImageBuilder     = (*kubeEngine)(nil)
)

func newEngine(logger hclog.Logger) *kubeEngine {
	return &kubeEngine{
		logger:  logger.Named("engine-kubernetes"),
		connect: connect,
		now:     time.Now,
		stopped: newStoppedJobs(),
	}
}

func (e *kubeEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{
		Name:        "kubernetes",
		Version:     version,
		APIVersions: []int32{pluginapi.ProtocolVersion},
		Capabilities: []string{
			engine.CapabilityWatchJobs,
			engine.CapabilityJobLogs,
			engine.CapabilityCapacity,
			engine.CapabilityBuildImage,
		},
	}, nil
}

// Configure applies valid settings, keeping the previous ones otherwise. An
// API server that does not respond gets a warning, not an error, so the
// plugin starts while the cluster is briefly away. Calls then fail with
// errdefs.ErrUnavailable until it responds.
func (e *kubeEngine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(req.Config, resp)
	if s == nil {
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	client, err := e.connect(s)
	if err != nil {
		resp.AddError(configPath(s, err), "cannot load the cluster configuration", err.Error())
		e.logger.Warn("settings rejected", "error", err)
		return resp, nil
	}
	serverVersion := checkServer(ctx, client, resp)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings, e.client = s, client
	e.logger.Info("configured", "namespace", s.Namespace, "server_version", serverVersion)
	return resp, nil
}

// configPath returns the setting a cluster configuration error is about.
func configPath(s *settings, err error) string {
	if errors.Is(err, errUnknownContext) {
		return "context"
	}
	return "kubeconfig"
}

// checkServer requests the API server's version and adds a warning when it
// does not respond in time. The request runs in its own goroutine because
// the discovery client takes no context.
func checkServer(ctx context.Context, client kubernetes.Interface, resp *pluginapi.ConfigureResponse) string {
	ctx, cancel := context.WithTimeout(ctx, serverCheckTimeout)
	defer cancel()
	type result struct {
		version string
		err     error
	}
	done := make(chan result, 1)
	go func() {
		info, err := client.Discovery().ServerVersion()
		if err != nil {
			done <- result{err: err}
			return
		}
		done <- result{version: info.GitVersion}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = fmt.Errorf("no response within %s", serverCheckTimeout)
	}
	if r.err != nil {
		resp.AddWarning("kubeconfig", "cannot reach the Kubernetes API server",
			r.err.Error()+". The settings are applied; calls fail as unavailable until the API server responds.")
	}
	return r.version
}

// current returns the applied settings and the clientset.
func (e *kubeEngine) current() (*settings, kubernetes.Interface, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, nil, errdefs.Unavailable("kubernetes engine is not configured: the host must call Configure first")
	}
	return e.settings, e.client, nil
}

// PrepareArtifact is not how this engine gets artifacts: it builds images
// in the cluster through BuildImage, which the host calls for deploys when
// GetInfo lists the build_image capability.
func (e *kubeEngine) PrepareArtifact(context.Context, *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	return nil, errdefs.Invalid("the kubernetes engine builds deploys into images with BuildImage (capability %q), not with PrepareArtifact", engine.CapabilityBuildImage)
}
