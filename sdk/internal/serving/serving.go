// Package serving starts a plugin process the way every estela plugin kind
// does: the shared handshake, gRPC only, and JSON logs on stderr.
package serving

import (
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

var (
	loggerOnce sync.Once
	logger     hclog.Logger
)

// Logger returns the process-wide plugin logger. It writes JSON lines to
// stderr at every level, because go-plugin on the host parses those lines and
// relays each one through the host's logger, which applies its own level.
func Logger() hclog.Logger {
	loggerOnce.Do(func() {
		logger = hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Trace,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	})
	return logger
}

// Serve serves p under name with pluginapi.ProtocolVersion and blocks until
// the host ends the plugin.
func Serve(name string, p plugin.Plugin) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pluginapi.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			pluginapi.ProtocolVersion: {name: p},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     Logger(),
	})
}
