// Package pluginapi holds what every estela plugin kind shares: the go-plugin
// handshake, the plugin description returned by GetInfo, and the Configure
// request, response and diagnostics.
package pluginapi

import (
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// ProtocolVersion is the go-plugin protocol version this SDK speaks. It equals
// the major version of the protobuf contracts (estela.engine.v1,
// estela.credentials.v1).
const ProtocolVersion = 1

// MaxReplyBytes is the largest reply of a unary call that the SDK's client
// reads on a plugin's call socket (docs/plugins.md, "Unary calls on a
// socket"). A host should let its gRPC connection to the plugin read as much,
// with grpc.MaxCallRecvMsgSize, as the estela server does: the same calls
// then have the same limit on either path. ListJobs returns every job in one
// reply, and gRPC's default of 4 MiB would cap it at some tens of thousands of
// jobs.
const MaxReplyBytes = 256 << 20

// Handshake is the go-plugin handshake shared by the host and every plugin.
// The host sets the environment variable ESTELA_PLUGIN_COOKIE to the value
// below when it starts a plugin. A plugin binary started any other way prints
// a message and exits. The cookie is a safety check, not a secret.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "ESTELA_PLUGIN_COOKIE",
	MagicCookieValue: "502fc2e751abd3e2ea5bd0408fbd0af2331f3f8b8f697bcfaced54f9e7c39bd9",
}

// Info describes a plugin, as returned by GetInfo.
type Info struct {
	// Name is the plugin's short name, for example "local".
	Name string
	// Version is the plugin's own version, for example "0.1.0".
	Version string
	// APIVersions lists the contract major versions the plugin serves.
	APIVersions []int32
	// Capabilities lists the optional features the plugin implements.
	Capabilities []string
}

// ConfigureRequest carries a plugin's settings.
type ConfigureRequest struct {
	// Config is the plugin's settings block as a JSON object, converted from
	// HCL by the host.
	Config []byte
}

// ConfigureResponse reports the problems found in the settings. A response
// without error diagnostics means the plugin applied the settings.
type ConfigureResponse struct {
	Diagnostics []Diagnostic
}

// Severity is the seriousness of a diagnostic.
type Severity string

// Severities of a diagnostic.
const (
	// SeverityError means the settings were rejected.
	SeverityError Severity = "error"
	// SeverityWarning means the settings were applied but deserve attention.
	SeverityWarning Severity = "warning"
)

// Diagnostic is one problem found in the settings.
type Diagnostic struct {
	Severity Severity
	// Summary is a one-line description of the problem.
	Summary string
	// Detail explains the problem and what to do about it; it may be empty.
	Detail string
	// Path is the dotted path of the setting concerned, for example "python"
	// or "registry.server", or empty for the whole block.
	Path string
}

// AddError appends an error diagnostic about the setting at path.
func (r *ConfigureResponse) AddError(path, summary, detail string) {
	r.Diagnostics = append(r.Diagnostics, Diagnostic{Severity: SeverityError, Summary: summary, Detail: detail, Path: path})
}

// AddWarning appends a warning diagnostic about the setting at path.
func (r *ConfigureResponse) AddWarning(path, summary, detail string) {
	r.Diagnostics = append(r.Diagnostics, Diagnostic{Severity: SeverityWarning, Summary: summary, Detail: detail, Path: path})
}

// HasErrors reports whether any diagnostic is an error.
func (r *ConfigureResponse) HasErrors() bool {
	for _, d := range r.Diagnostics {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Err returns an error wrapping errdefs.ErrInvalid that lists every error
// diagnostic with its path and detail, or nil when there is none. Warnings are
// left out.
func (r *ConfigureResponse) Err() error {
	var problems []string
	for _, d := range r.Diagnostics {
		if d.Severity != SeverityError {
			continue
		}
		problem := d.Summary
		if d.Path != "" {
			problem = d.Path + ": " + problem
		}
		if detail := strings.TrimSuffix(strings.TrimSpace(d.Detail), "."); detail != "" {
			problem += " (" + detail + ")"
		}
		problems = append(problems, problem)
	}
	if len(problems) == 0 {
		return nil
	}
	return errdefs.Invalid("invalid settings: %s", strings.Join(problems, "; "))
}
