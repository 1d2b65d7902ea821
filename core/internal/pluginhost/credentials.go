package pluginhost

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// archiveTimeout bounds the transfer of one project archive.
const archiveTimeout = 10 * time.Minute

// Credentials is a supervised credentials plugin. It implements credentials.Provider; every
// call has a deadline and starts the plugin again when its process has exited.
type Credentials struct {
	inst *instance
}

var _ credentials.Provider = (*Credentials)(nil)

// NewCredentials prepares a credentials plugin; the process starts on first use or on Start.
func NewCredentials(opts Options) *Credentials {
	opts = withDefaults(opts)
	plugins := map[int]plugin.PluginSet{pluginapi.ProtocolVersion: {credentials.PluginName: &credentials.Plugin{Logger: opts.Logger}}}
	return &Credentials{inst: &instance{opts: opts, plugins: plugins}}
}

// Start launches and configures the plugin now, so that a bad setup shows at server start.
func (c *Credentials) Start(ctx context.Context) error {
	_, _, err := c.inst.get(ctx)
	return err
}

// Healthy reports whether the plugin process runs and answers.
func (c *Credentials) Healthy(ctx context.Context) bool { return c.inst.Healthy(ctx) }

// Close ends the plugin process.
func (c *Credentials) Close() { c.inst.Close() }

// GetInfo implements credentials.Provider.
func (c *Credentials) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	return invoke(ctx, c.inst, 0, true, func(ctx context.Context, p credentials.Provider) (*pluginapi.Info, error) {
		return p.GetInfo(ctx)
	})
}

// Configure implements credentials.Provider.
func (c *Credentials) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	return invoke(ctx, c.inst, 0, true, func(ctx context.Context, p credentials.Provider) (*pluginapi.ConfigureResponse, error) {
		return p.Configure(ctx, req)
	})
}

// RegistryAuth implements credentials.Provider.
func (c *Credentials) RegistryAuth(ctx context.Context, req *credentials.RegistryAuthRequest) (*credentials.RegistryAuthResponse, error) {
	return invoke(ctx, c.inst, 0, true, func(ctx context.Context, p credentials.Provider) (*credentials.RegistryAuthResponse, error) {
		return p.RegistryAuth(ctx, req)
	})
}

// PutProject implements credentials.Provider.
func (c *Credentials) PutProject(ctx context.Context, req *credentials.PutProjectRequest) (*credentials.PutProjectResponse, error) {
	return invoke(ctx, c.inst, archiveTimeout, false, func(ctx context.Context, p credentials.Provider) (*credentials.PutProjectResponse, error) {
		return p.PutProject(ctx, req)
	})
}

// GetProject implements credentials.Provider.
func (c *Credentials) GetProject(ctx context.Context, req *credentials.GetProjectRequest, w io.Writer) error {
	_, err := invoke(ctx, c.inst, archiveTimeout, false, func(ctx context.Context, p credentials.Provider) (struct{}, error) {
		return struct{}{}, p.GetProject(ctx, req, w)
	})
	return err
}

// DeleteProject implements credentials.Provider.
func (c *Credentials) DeleteProject(ctx context.Context, req *credentials.DeleteProjectRequest) (*credentials.DeleteProjectResponse, error) {
	return invoke(ctx, c.inst, 0, true, func(ctx context.Context, p credentials.Provider) (*credentials.DeleteProjectResponse, error) {
		return p.DeleteProject(ctx, req)
	})
}
