package credentials

import (
	"context"
	"errors"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/estela-go/estela-go/sdk/internal/callstream"
	"github.com/estela-go/estela-go/sdk/internal/serving"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	credentialsv1 "github.com/estela-go/estela-go/sdk/proto/credentials/v1"
)

// PluginName is the credentials provider's key in go-plugin's PluginSet.
const PluginName = "credentials"

// Plugin is the go-plugin glue of a credentials provider: GRPCServer serves
// Impl, and GRPCClient returns a Provider that calls the plugin process.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Logger, set by a host, receives a line when the plugin's call socket
	// cannot be used and the calls go on gRPC streams. Nil discards it.
	Logger hclog.Logger
	// Impl is the provider to serve; the host leaves it nil.
	Impl Provider
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers Impl on s, as gRPC methods and on the call stream.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("credentials plugin has no implementation to serve")
	}
	srv := &server{impl: p.Impl}
	credentialsv1.RegisterCredentialsServer(s, srv)
	callstream.Register(s, &credentialsv1.Credentials_ServiceDesc, srv)
	return nil
}

// GRPCClient returns a Provider that calls the plugin over conn.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &client{rpc: credentialsv1.NewCredentialsClient(callstream.NewConn(conn, p.Logger))}, nil
}

// VersionedPlugins returns the plugin sets a host passes to
// plugin.ClientConfig.VersionedPlugins to load a credentials plugin.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		pluginapi.ProtocolVersion: {PluginName: &Plugin{}},
	}
}

// Serve serves impl as a credentials plugin over gRPC and blocks until the
// host ends the plugin. Call it from main.
func Serve(impl Provider) {
	serving.Serve(PluginName, &Plugin{Impl: impl})
}

// Logger returns the logger plugin code should use. It writes JSON lines to
// stderr, which the host relays through its own logger.
func Logger() hclog.Logger {
	return serving.Logger()
}
