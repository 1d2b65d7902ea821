// Package credentials is the Go interface of an estela credentials plugin:
// the component that stores uploaded project archives and hands out
// credentials for the image registry that image engines push to.
//
// A plugin author implements Provider and calls Serve from main. The host gets
// a Provider too, from the go-plugin client; errors keep their errdefs type
// across the process boundary.
package credentials

import (
	"context"
	"io"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Provider is the interface a credentials plugin implements. The host calls GetInfo
// and Configure before anything else. Implementations must be safe for
// concurrent use, and return errors built with package errdefs.
type Provider interface {
	// GetInfo returns the plugin's name, version, API versions and capabilities.
	GetInfo(ctx context.Context) (*pluginapi.Info, error)
	// Configure validates the settings and applies them when they are valid.
	Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error)
	// RegistryAuth returns registry credentials, or errdefs.ErrNotFound when
	// none are configured.
	RegistryAuth(ctx context.Context, req *RegistryAuthRequest) (*RegistryAuthResponse, error)
	// PutProject stores a deploy's archive, replacing any stored before.
	PutProject(ctx context.Context, req *PutProjectRequest) (*PutProjectResponse, error)
	// GetProject writes a stored archive into w, or returns
	// errdefs.ErrNotFound. When it fails after writing, w has received part
	// of the archive, so callers should write to a temporary file.
	GetProject(ctx context.Context, req *GetProjectRequest, w io.Writer) error
	// DeleteProject deletes one deploy's archive, or every deploy's archive of
	// the project when DeployID is 0.
	DeleteProject(ctx context.Context, req *DeleteProjectRequest) (*DeleteProjectResponse, error)
}

// RegistryAuthRequest names a registry.
type RegistryAuthRequest struct {
	// Registry is a registry host such as "registry.example.com:5000"; empty
	// means the plugin's default registry.
	Registry string
}

// RegistryAuthResponse carries registry credentials.
type RegistryAuthResponse struct {
	Server   string
	Username string
	// Secret is a password or token: never log it.
	Secret string
	// ExpiresAt is zero when the credentials do not expire.
	ExpiresAt time.Time
}

// PutProjectRequest carries one deploy's project archive.
type PutProjectRequest struct {
	// ProjectID is the project id: lower-case letters, digits and dashes.
	ProjectID string
	// DeployID is the deploy id, greater than zero.
	DeployID int64
	// Archive is the zip archive. Over gRPC it streams in chunks.
	Archive io.Reader
}

// PutProjectResponse describes the stored archive.
type PutProjectResponse struct {
	// Size is the archive's size in bytes.
	Size int64
	// SHA256 is the archive's SHA-256 checksum in lower-case hex.
	SHA256 string
}

// GetProjectRequest names a stored archive.
type GetProjectRequest struct {
	ProjectID string
	DeployID  int64
}

// DeleteProjectRequest names the archives to delete.
type DeleteProjectRequest struct {
	ProjectID string
	// DeployID is the deploy to delete; 0 deletes every deploy of the project.
	DeployID int64
}

// DeleteProjectResponse has no fields yet.
type DeleteProjectResponse struct{}
