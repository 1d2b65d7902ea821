package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/core/internal/config"
	"github.com/estela-go/estela-go/core/internal/pluginhost"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// rpcWarmup calls are made before the timed ones, so that connection set-up is not timed.
const rpcWarmup = 200

// openEngine starts a noop engine plugin process for the benchmark itself, supervised by the
// same plugin host as the server's. Its jobs run for an hour, so they stay active.
func (p *platform) openEngine(ctx context.Context) (*pluginhost.Engine, error) {
	bin, err := pluginhost.Find(p.opts.PluginDirs, pluginhost.KindEngine, "noop")
	if err != nil {
		return nil, err
	}
	eng := pluginhost.NewEngine(pluginhost.Options{Binary: bin, Settings: []byte(`{"job_duration": "1h"}`), Logger: p.log, GoMaxProcs: config.DefaultPluginProcs})
	if err := eng.Start(ctx); err != nil {
		eng.Close()
		return nil, err
	}
	return eng, nil
}

// measureRPC times GetJob round trips to the noop plugin, one at a time, through the plugin
// host's deadline and restart wrapper, on the plugin's call socket, which the SDK's client
// learns over go-plugin's gRPC connection. The limit is the same call on a bare go-plugin
// client, the SDK's client without the plugin host.
func measureRPC(ctx context.Context, p *platform, res *Results) error {
	eng, err := p.openEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	hosted, err := p.timeGetJob(ctx, eng)
	if err != nil {
		return fmt.Errorf("through the plugin host: %w", err)
	}
	raw, stop, err := p.openRawEngine(ctx)
	if err != nil {
		return err
	}
	defer stop()
	bare, err := p.timeGetJob(ctx, raw)
	if err != nil {
		return fmt.Errorf("on a bare go-plugin client: %w", err)
	}

	res.PluginRPCP50Micros = ptr(micros(percentile(hosted, 0.50)))
	res.PluginRPCP99Micros = ptr(micros(percentile(hosted, 0.99)))
	res.Limits.RawRPCP50Micros = micros(percentile(bare, 0.50))
	res.Limits.RawRPCP99Micros = micros(percentile(bare, 0.99))
	return nil
}

// timeGetJob creates a job on eng and times RPCCalls GetJob calls of it after rpcWarmup
// untimed ones.
func (p *platform) timeGetJob(ctx context.Context, eng engine.Engine) ([]time.Duration, error) {
	const name = "bench-rpc"
	if _, err := eng.CreateJob(ctx, &engine.CreateJobRequest{Spec: engine.JobSpec{Name: name, Command: []string{"noop-sleep"}}}); err != nil {
		return nil, fmt.Errorf("create job on the noop engine: %w", err)
	}
	n := p.opts.Sizes.RPCCalls
	samples := make([]time.Duration, 0, n)
	deadline := time.Now().Add(p.opts.Sizes.PhaseTimeout)
	for i := 0; i < rpcWarmup+n && time.Now().Before(deadline); i++ {
		start := time.Now()
		if _, err := eng.GetJob(ctx, &engine.GetJobRequest{Name: name}); err != nil {
			return nil, fmt.Errorf("GetJob %d: %w", i, err)
		}
		if i >= rpcWarmup {
			samples = append(samples, time.Since(start))
		}
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("no call was timed within %s", p.opts.Sizes.PhaseTimeout)
	}
	if len(samples) < n {
		p.log.Warn("phase time limit reached", "phase", PhaseRPC, "calls", len(samples), "requested", n)
	}
	return samples, nil
}

// openRawEngine starts the noop plugin with a bare go-plugin client, set up as the plugin host
// sets up its own (GOMAXPROCS included), and returns the engine and what stops it.
func (p *platform) openRawEngine(ctx context.Context) (engine.Engine, func(), error) {
	bin, err := pluginhost.Find(p.opts.PluginDirs, pluginhost.KindEngine, "noop")
	if err != nil {
		return nil, nil, err
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: engine.VersionedPlugins(),
		Cmd:              pluginhost.Command(pluginhost.Options{Binary: bin, GoMaxProcs: config.DefaultPluginProcs}),
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           p.log.Named("raw-engine"),
	})
	rpc, err := client.Client()
	if err == nil {
		var raw any
		if raw, err = rpc.Dispense(pluginhost.KindEngine); err == nil {
			eng := raw.(engine.Engine)
			_, err = eng.Configure(ctx, &pluginapi.ConfigureRequest{Config: []byte("{}")})
			if err == nil {
				return eng, client.Kill, nil
			}
		}
	}
	client.Kill()
	return nil, nil, fmt.Errorf("start noop plugin %s without the plugin host: %w", bin.Path, err)
}
