package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Options describe one plugin to run.
type Options struct {
	Binary Binary
	// SHA256 pins the binary when set.
	SHA256 string
	// Settings is the plugin's settings block as a JSON object.
	Settings []byte
	Logger   hclog.Logger
	// CallTimeout bounds every call that has no longer limit of its own.
	CallTimeout time.Duration
	// GoMaxProcs, when above 0, is set as GOMAXPROCS in the plugin's environment, over any
	// value the server's own environment has.
	GoMaxProcs int
}

// Command returns the command that starts the plugin: its binary, with the server's
// environment and the GOMAXPROCS of opts. Give it to go-plugin with SkipHostEnv set.
// Otherwise go-plugin appends the server's environment after it, and a GOMAXPROCS there wins.
func Command(opts Options) *exec.Cmd {
	cmd := exec.Command(opts.Binary.Path)
	cmd.Env = os.Environ()
	if opts.GoMaxProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(opts.GoMaxProcs))
	}
	return cmd
}

// instance is one supervised plugin process: started on first use and started again when it
// has exited, with back-off between failed starts.
type instance struct {
	opts    Options
	plugins map[int]plugin.PluginSet

	mu     sync.Mutex
	client *plugin.Client
	// socketDir is the folder of the running plugin's go-plugin socket. A plugin that is
	// killed leaves its socket file behind, so the folder goes when the client is ended.
	socketDir string
	raw       any
	info      *pluginapi.Info
	lastStart time.Time
	failures  int
	// startErr is the error of the last failed start.
	startErr error
	closed   bool
	// timeouts counts calls in a row that ran out of time; at hangLimit the plugin is taken for
	// hung and started again.
	timeouts int
}

// configureTimeout is the least time GetInfo and Configure get at a plugin's start.
const configureTimeout = time.Minute

// hangLimit is how many calls in a row may time out before the plugin is restarted.
const hangLimit = 3

// configurer is the part of both plugin kinds that the start-up calls use.
type configurer interface {
	GetInfo(ctx context.Context) (*pluginapi.Info, error)
	Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error)
}

// ErrPluginDown is returned while a plugin cannot be started. It wraps errdefs.ErrUnavailable,
// so callers treat it as a passing outage and keep their work queued.
var ErrPluginDown = fmt.Errorf("plugin is down: %w", errdefs.ErrUnavailable)

// get returns the running plugin's dispensed client and its go-plugin client, starting the
// plugin when needed.
func (i *instance) get(ctx context.Context) (any, *plugin.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil, nil, fmt.Errorf("%w: %s plugin %q was closed", ErrPluginDown, i.opts.Binary.Kind, i.opts.Binary.Name)
	}
	if i.client != nil && !i.client.Exited() {
		return i.raw, i.client, nil
	}
	if i.client != nil {
		i.opts.Logger.Warn("plugin exited, starting it again", "path", i.opts.Binary.Path)
		// The process is gone, so this does not wait.
		client, socketDir := i.takeClient()
		i.endClient(client, socketDir, killTimeout)
	}
	if wait := i.backoff(); time.Since(i.lastStart) < wait {
		times := fmt.Sprintf("%d times in a row", i.failures)
		if i.failures == 1 {
			times = "once"
		}
		return nil, nil, fmt.Errorf("%w: %s plugin %q failed to start %s, next try in %s; the last start failed with: %v",
			ErrPluginDown, i.opts.Binary.Kind, i.opts.Binary.Name, times, (wait - time.Since(i.lastStart)).Round(100*time.Millisecond), i.startErr)
	}
	i.lastStart = time.Now()
	if err := i.start(ctx); err != nil {
		i.failures++
		i.startErr = err
		return nil, nil, err
	}
	i.failures = 0
	return i.raw, i.client, nil
}

func (i *instance) backoff() time.Duration {
	if i.failures == 0 {
		return 0
	}
	d := time.Second << min(i.failures-1, 6)
	return min(d, time.Minute)
}

func (i *instance) start(ctx context.Context) error {
	b := i.opts.Binary
	if err := checkPin(b.Path, i.opts.SHA256); err != nil {
		return err
	}
	socketDir, err := socketFolder()
	if err != nil {
		return fmt.Errorf("start %s plugin %s: %w", b.Kind, b.Path, err)
	}
	cmd := Command(i.opts)
	cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+socketDir)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pluginapi.Handshake,
		VersionedPlugins: i.plugins,
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           exitLogger{i.opts.Logger},
		StartTimeout:     30 * time.Second,
		// ListJobs returns every job in one response, and gRPC's default 4 MiB would cap it at
		// some tens of thousands of jobs. The limit applies to the SDK's call streams too, and
		// the SDK reads as much on the plugin's call socket.
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pluginapi.MaxReplyBytes))},
	})
	rpc, err := client.Client()
	if err != nil {
		i.endClient(client, socketDir, killTimeout)
		return fmt.Errorf("start %s plugin %s: %w", b.Kind, b.Path, err)
	}
	raw, err := rpc.Dispense(b.Kind)
	if err != nil {
		i.endClient(client, socketDir, killTimeout)
		return fmt.Errorf("open %s plugin %s: %w", b.Kind, b.Path, err)
	}
	if err := i.configure(ctx, raw.(configurer)); err != nil {
		i.endClient(client, socketDir, killTimeout)
		return err
	}
	i.client, i.socketDir, i.raw = client, socketDir, raw
	i.opts.Logger.Info("plugin started", "path", b.Path, "version", i.info.Version,
		"protocol", client.NegotiatedVersion(), "capabilities", i.info.Capabilities)
	return nil
}

func (i *instance) configure(ctx context.Context, c configurer) error {
	// Configure may check the plugin's environment (the local engine runs Python to find
	// Scrapy), so it gets more time than an ordinary call.
	ctx, cancel := context.WithTimeout(ctx, max(i.opts.CallTimeout, configureTimeout))
	defer cancel()
	info, err := c.GetInfo(ctx)
	if err != nil {
		return fmt.Errorf("get info of %s plugin %q: %w", i.opts.Binary.Kind, i.opts.Binary.Name, err)
	}
	if !slices.Contains(info.APIVersions, pluginapi.ProtocolVersion) {
		return fmt.Errorf("%s plugin %q serves API versions %v, this server needs %d",
			i.opts.Binary.Kind, i.opts.Binary.Name, info.APIVersions, pluginapi.ProtocolVersion)
	}
	resp, err := c.Configure(ctx, &pluginapi.ConfigureRequest{Config: i.opts.Settings})
	if err != nil {
		return fmt.Errorf("configure %s plugin %q: %w", i.opts.Binary.Kind, i.opts.Binary.Name, err)
	}
	for _, d := range resp.Diagnostics {
		if d.Severity == pluginapi.SeverityWarning {
			i.opts.Logger.Warn("plugin setting", "path", d.Path, "summary", d.Summary, "detail", d.Detail)
		}
	}
	if err := resp.Err(); err != nil {
		return fmt.Errorf("configure %s plugin %q: %w", i.opts.Binary.Kind, i.opts.Binary.Name, err)
	}
	i.info = info
	return nil
}

// Info returns the plugin description from its last start, or nil before the first start.
func (i *instance) Info() *pluginapi.Info {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.info
}

// healthTimeout bounds a health check of a plugin whose process is stopped or hangs.
const healthTimeout = 5 * time.Second

// Healthy reports whether the plugin process runs and replies to go-plugin's health check
// before ctx ends, and within healthTimeout.
func (i *instance) Healthy(ctx context.Context) bool {
	i.mu.Lock()
	client := i.client
	i.mu.Unlock()
	return healthy(ctx, client)
}

// healthy reports whether client's plugin process runs and replies to go-plugin's health
// check before ctx ends, and within healthTimeout.
func healthy(ctx context.Context, client *plugin.Client) bool {
	if client == nil || client.Exited() {
		return false
	}
	rpc, err := client.Client()
	if err != nil {
		return false
	}
	g, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return rpc.Ping() == nil
	}
	// go-plugin's Ping makes the same check without a deadline, and waits for ever on a
	// stopped process.
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	_, err = healthpb.NewHealthClient(g.Conn).Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err == nil
}

// Close ends the plugin process for good: later calls fail with ErrPluginDown.
func (i *instance) Close() {
	i.mu.Lock()
	i.closed = true
	client, socketDir := i.takeClient()
	i.mu.Unlock()
	if client != nil {
		i.endClient(client, socketDir, killTimeout)
	}
}

// takeClient returns the running plugin's client and socket folder and clears both fields, so
// that the next call starts the plugin again. i.mu must be held. The caller ends the client after
// it unlocks i.mu: ending a process that does not respond can take killTimeout.
func (i *instance) takeClient() (*plugin.Client, string) {
	client, socketDir := i.client, i.socketDir
	i.client, i.socketDir = nil, ""
	return client, socketDir
}

// maxSocketPath returns the longest path a Unix socket may have: the size of sun_path in
// struct sockaddr_un, less its closing NUL byte.
func maxSocketPath() int {
	if runtime.GOOS == "linux" {
		return 107
	}
	return 103 // macOS and the BSDs
}

// socketPathPastTemp is how many bytes a plugin's socket path may have past the temporary
// folder: "/estela-plugin-" and up to 10 digits (os.MkdirTemp), then "/plugin" and up to 10
// more (go-plugin's socket).
const socketPathPastTemp = len("/estela-plugin-") + 10 + len("/plugin") + 10

// socketFolder creates the folder for a plugin's go-plugin socket in the temporary folder. It
// fails when the socket's path could be too long, since a plugin that cannot bind its socket
// fails to start with a misleading message about its architecture.
func socketFolder() (string, error) {
	temp := os.TempDir()
	if limit := maxSocketPath() - socketPathPastTemp; len(temp) > limit {
		return "", fmt.Errorf("the temporary folder %s has %d bytes, and a plugin's socket path under it needs up to %d more, over the %d a Unix socket path may have: set TMPDIR to a folder of at most %d bytes",
			temp, len(temp), socketPathPastTemp, maxSocketPath(), limit)
	}
	dir, err := os.MkdirTemp(temp, "estela-plugin-")
	if err != nil {
		return "", fmt.Errorf("create the folder of the plugin's socket: %w", err)
	}
	return dir, nil
}

// killTimeout is how long a plugin process gets to exit on request, before it is killed.
const killTimeout = 5 * time.Second

// endClient ends a plugin's client and removes socketDir. It sends go-plugin's request to exit,
// as go-plugin's Kill does, and kills the process when it has not exited after wait. go-plugin's
// Kill alone waits for ever on a process that is stopped or does not respond.
func (i *instance) endClient(client *plugin.Client, socketDir string, wait time.Duration) {
	endClient(i.opts.Logger, client, socketDir, wait)
}

// endClient is instance.endClient for a client of no instance. It logs to log when it kills a
// process that did not exit on request.
func endClient(log hclog.Logger, client *plugin.Client, socketDir string, wait time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Kill()
	}()
	select {
	case <-done:
	case <-time.After(wait):
		if id := pid(client); id > 0 && !client.Exited() {
			if wait > 0 {
				log.Warn("plugin did not exit when requested to, killing it", "pid", id, "waited", wait)
			}
			if process, err := os.FindProcess(id); err == nil {
				_ = process.Kill()
			}
		}
		<-done
	}
	_ = os.RemoveAll(socketDir)
}

// pid returns the process id of client's plugin, or 0 before it started.
func pid(client *plugin.Client) int {
	if config := client.ReattachConfig(); config != nil {
		return config.Pid
	}
	return 0
}

func (i *instance) callContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout == 0 {
		timeout = i.opts.CallTimeout
	}
	return context.WithTimeout(ctx, timeout)
}

// invoke runs fn on the plugin's client of type I with a deadline, starting the plugin when
// needed. When the call fails because the plugin process is gone, the process is started again
// and, for calls that are safe to repeat, the call is made once more.
func invoke[I, T any](ctx context.Context, inst *instance, timeout time.Duration, repeatable bool, fn func(context.Context, I) (T, error)) (T, error) {
	result, client, err := invokeOnce(ctx, inst, timeout, fn)
	called := client != nil
	inst.countTimeout(ctx, client, err)
	// A call that never reached a plugin, because it failed to start or waits to be started
	// again, is not made again: the second try would meet the same state.
	if err == nil || !called || !errors.Is(err, errdefs.ErrUnavailable) || !inst.dropIfDead() || !repeatable {
		return result, err
	}
	inst.opts.Logger.Warn("plugin process gone during a call, calling again", "error", err)
	result, _, err = invokeOnce(ctx, inst, timeout, fn)
	return result, err
}

// invokeOnce makes one call, starting the plugin when needed. It returns the go-plugin client
// of the plugin the call reached, or nil when it reached none.
func invokeOnce[I, T any](ctx context.Context, inst *instance, timeout time.Duration, fn func(context.Context, I) (T, error)) (T, *plugin.Client, error) {
	var zero T
	raw, client, err := inst.get(ctx)
	if err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
		// A plugin that fails to start or to take its settings is down for the calls that need
		// it: the job waits for it and no attempt is used. Only ErrPluginDown is kept in the
		// chain, so that a settings error does not read as a call's invalid argument.
		err = fmt.Errorf("%w: %v", ErrPluginDown, err)
	}
	if err != nil {
		return zero, nil, err
	}
	ctx, cancel := inst.callContext(ctx, timeout)
	defer cancel()
	result, err := fn(ctx, raw.(I))
	return result, client, err
}

// countTimeout restarts a plugin whose calls keep running out of their own deadline while the
// caller still waits, which means the plugin hangs. client is the plugin the call reached:
// calls that reached a plugin since replaced do not count.
func (i *instance) countTimeout(ctx context.Context, client *plugin.Client, err error) {
	i.mu.Lock()
	if client == nil || client != i.client {
		i.mu.Unlock()
		return
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		i.timeouts = 0
		i.mu.Unlock()
		return
	}
	i.timeouts++
	if i.timeouts < hangLimit || i.client == nil {
		i.mu.Unlock()
		return
	}
	i.opts.Logger.Error("plugin calls keep timing out, restarting it", "path", i.opts.Binary.Path, "pid", pid(client), "timeouts", i.timeouts)
	i.timeouts = 0
	_, socketDir := i.takeClient()
	i.mu.Unlock()
	// A hung process may not exit when requested to, so it is killed at once.
	i.endClient(client, socketDir, 0)
}

// dropIfDead ends the client when its plugin no longer answers a ping, so that the next call
// starts the plugin again. It reports whether it did.
func (i *instance) dropIfDead() bool {
	i.mu.Lock()
	checked := i.client
	i.mu.Unlock()
	if healthy(context.Background(), checked) {
		return false
	}
	i.mu.Lock()
	if i.client != checked {
		// Another call ended that client and started the plugin again meanwhile.
		i.mu.Unlock()
		return true
	}
	client, socketDir := i.takeClient()
	i.mu.Unlock()
	if client != nil {
		i.opts.Logger.Warn("plugin does not respond, ending it", "path", i.opts.Binary.Path)
		i.endClient(client, socketDir, 0)
	}
	return true
}

// Describe starts a plugin without configuring it, returns its GetInfo answer and ends it.
func Describe(ctx context.Context, b Binary, log hclog.Logger) (*pluginapi.Info, error) {
	plugins := map[string]map[int]plugin.PluginSet{
		KindEngine:      engine.VersionedPlugins(),
		KindCredentials: credentials.VersionedPlugins(),
	}[b.Kind]
	socketDir, err := socketFolder()
	if err != nil {
		return nil, err
	}
	// go-plugin adds the server's environment after cmd.Env unless SkipHostEnv is set, and a
	// PLUGIN_UNIX_SOCKET_DIR there would win over this one.
	cmd := exec.Command(b.Path)
	cmd.Env = append(os.Environ(), plugin.EnvUnixSocketDir+"="+socketDir)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: pluginapi.Handshake, VersionedPlugins: plugins, Cmd: cmd, SkipHostEnv: true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, AutoMTLS: true, Logger: log.Named(b.Kind + "." + b.Name),
	})
	defer endClient(log, client, socketDir, killTimeout)
	rpc, err := client.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense(b.Kind)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return raw.(configurer).GetInfo(ctx)
}
