package pluginhost

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// prepareTimeout bounds PrepareArtifact, which unpacks or builds a whole project.
const prepareTimeout = 15 * time.Minute

// Engine is a supervised engine plugin. It implements engine.Engine; every call has a deadline
// and starts the plugin again when its process has exited.
type Engine struct {
	inst *instance
}

var _ engine.Engine = (*Engine)(nil)

// NewEngine prepares an engine plugin; the process starts on first use or on Start.
func NewEngine(opts Options) *Engine {
	opts = withDefaults(opts)
	plugins := map[int]plugin.PluginSet{pluginapi.ProtocolVersion: {engine.PluginName: &engine.Plugin{Logger: opts.Logger}}}
	return &Engine{inst: &instance{opts: opts, plugins: plugins}}
}

// Start launches and configures the plugin now, so that a bad setup shows at server start.
func (e *Engine) Start(ctx context.Context) error {
	_, err := e.impl(ctx)
	return err
}

// Healthy reports whether the plugin process runs and responds.
func (e *Engine) Healthy(ctx context.Context) bool { return e.inst.Healthy(ctx) }

// Close ends the plugin process.
func (e *Engine) Close() { e.inst.Close() }

func (e *Engine) impl(ctx context.Context) (engine.Engine, error) {
	raw, _, err := e.inst.get(ctx)
	if err != nil {
		return nil, err
	}
	return raw.(engine.Engine), nil
}

// call runs fn on the plugin. Every engine call is safe to repeat after a plugin restart but
// PrepareArtifact, whose archive stream cannot be read twice.
func call[T any](ctx context.Context, e *Engine, timeout time.Duration, fn func(context.Context, engine.Engine) (T, error)) (T, error) {
	return invoke(ctx, e.inst, timeout, true, fn)
}

// GetInfo implements engine.Engine.
func (e *Engine) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*pluginapi.Info, error) { return impl.GetInfo(ctx) })
}

// Configure implements engine.Engine.
func (e *Engine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*pluginapi.ConfigureResponse, error) {
		return impl.Configure(ctx, req)
	})
}

// PrepareArtifact implements engine.Engine.
func (e *Engine) PrepareArtifact(ctx context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	return invoke(ctx, e.inst, prepareTimeout, false, func(ctx context.Context, impl engine.Engine) (*engine.PrepareArtifactResponse, error) {
		return impl.PrepareArtifact(ctx, req)
	})
}

// CreateJob implements engine.Engine.
func (e *Engine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.CreateJobResponse, error) {
		return impl.CreateJob(ctx, req)
	})
}

// GetJob implements engine.Engine.
func (e *Engine) GetJob(ctx context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.GetJobResponse, error) {
		return impl.GetJob(ctx, req)
	})
}

// ListJobs implements engine.Engine.
func (e *Engine) ListJobs(ctx context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.ListJobsResponse, error) {
		return impl.ListJobs(ctx, req)
	})
}

// StopJob implements engine.Engine. The deadline leaves room for the grace period.
func (e *Engine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	return call(ctx, e, e.inst.opts.CallTimeout+req.Grace, func(ctx context.Context, impl engine.Engine) (*engine.StopJobResponse, error) {
		return impl.StopJob(ctx, req)
	})
}

// DeleteJob implements engine.Engine.
func (e *Engine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.DeleteJobResponse, error) {
		return impl.DeleteJob(ctx, req)
	})
}

func withDefaults(opts Options) Options {
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if len(opts.Settings) == 0 {
		opts.Settings = []byte("{}")
	}
	opts.Logger = opts.Logger.Named(opts.Binary.Kind + "." + opts.Binary.Name)
	return opts
}

// BuildImage implements engine.ImageBuilder when the plugin does, and otherwise returns an
// error wrapping errdefs.ErrUnimplemented.
func (e *Engine) BuildImage(ctx context.Context, req *engine.BuildImageRequest) (*engine.BuildImageResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.BuildImageResponse, error) {
		builder, ok := impl.(engine.ImageBuilder)
		if !ok {
			return nil, fmt.Errorf("engine plugin %q cannot build images: %w", e.inst.opts.Binary.Name, errdefs.ErrUnimplemented)
		}
		return builder.BuildImage(ctx, req)
	})
}

// Capabilities returns the optional features the plugin listed when it started.
func (e *Engine) Capabilities() []string {
	if info := e.inst.Info(); info != nil {
		return info.Capabilities
	}
	return nil
}

// WatchJobs implements engine.JobWatcher. The stream has no deadline of its own: it ends with
// ctx. An engine without the capability returns errdefs.ErrUnimplemented.
func (e *Engine) WatchJobs(ctx context.Context, req *engine.WatchJobsRequest, send func(engine.JobEvent) error) error {
	impl, err := e.impl(ctx)
	if err != nil {
		return err
	}
	watcher, ok := impl.(engine.JobWatcher)
	if !ok {
		return fmt.Errorf("engine plugin %q cannot watch jobs: %w", e.inst.opts.Binary.Name, errdefs.ErrUnimplemented)
	}
	return watcher.WatchJobs(ctx, req, send)
}

// JobLogs implements engine.LogStreamer; following logs lasts as long as ctx.
func (e *Engine) JobLogs(ctx context.Context, req *engine.JobLogsRequest, w io.Writer) error {
	impl, err := e.impl(ctx)
	if err != nil {
		return err
	}
	if !req.Follow {
		var cancel context.CancelFunc
		ctx, cancel = e.inst.callContext(ctx, 0)
		defer cancel()
	}
	logs, ok := impl.(engine.LogStreamer)
	if !ok {
		return fmt.Errorf("engine plugin %q cannot stream logs: %w", e.inst.opts.Binary.Name, errdefs.ErrUnimplemented)
	}
	return logs.JobLogs(ctx, req, w)
}

// Capacity implements engine.CapacityReporter.
func (e *Engine) Capacity(ctx context.Context, req *engine.CapacityRequest) (*engine.CapacityResponse, error) {
	return call(ctx, e, 0, func(ctx context.Context, impl engine.Engine) (*engine.CapacityResponse, error) {
		reporter, ok := impl.(engine.CapacityReporter)
		if !ok {
			return nil, fmt.Errorf("engine plugin %q cannot report capacity: %w", e.inst.opts.Binary.Name, errdefs.ErrUnimplemented)
		}
		return reporter.Capacity(ctx, req)
	})
}
