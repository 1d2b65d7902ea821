package credentials

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/chunk"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	credentialsv1 "github.com/estela-go/estela-go/sdk/proto/credentials/v1"
)

// client is the host's Provider: each call is an RPC to the plugin process.
type client struct {
	rpc credentialsv1.CredentialsClient
}

var _ Provider = (*client)(nil)

func (c *client) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	resp, err := c.rpc.GetInfo(ctx, &credentialsv1.GetInfoRequest{})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return infoFromProto(resp), nil
}

func (c *client) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp, err := c.rpc.Configure(ctx, &credentialsv1.ConfigureRequest{Config: req.Config})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &pluginapi.ConfigureResponse{Diagnostics: diagnosticsFromProto(resp.GetDiagnostics())}, nil
}

func (c *client) RegistryAuth(ctx context.Context, req *RegistryAuthRequest) (*RegistryAuthResponse, error) {
	resp, err := c.rpc.RegistryAuth(ctx, &credentialsv1.RegistryAuthRequest{Registry: req.Registry})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &RegistryAuthResponse{
		Server:    resp.GetServer(),
		Username:  resp.GetUsername(),
		Secret:    resp.GetSecret(),
		ExpiresAt: timeFromProto(resp.GetExpiresAt()),
	}, nil
}

// PutProject sends the metadata, then the archive in chunks. When the plugin
// ends the call early, Send returns io.EOF and CloseAndRecv returns the
// plugin's error.
func (c *client) PutProject(ctx context.Context, req *PutProjectRequest) (*PutProjectResponse, error) {
	if req.Archive == nil {
		return nil, errdefs.Invalid("put project: archive is missing")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the stream when reading the archive fails
	stream, err := c.rpc.PutProject(ctx)
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	err = stream.Send(&credentialsv1.PutProjectRequest{Payload: &credentialsv1.PutProjectRequest_Metadata{
		Metadata: &credentialsv1.ProjectMetadata{ProjectId: req.ProjectID, DeployId: req.DeployID},
	}})
	if err == nil {
		_, err = chunk.Copy(req.Archive, func(b []byte) error {
			return stream.Send(&credentialsv1.PutProjectRequest{Payload: &credentialsv1.PutProjectRequest_Chunk{Chunk: b}})
		})
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("send archive: %w", errdefs.FromGRPC(err))
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &PutProjectResponse{Size: resp.GetSize(), SHA256: resp.GetSha256()}, nil
}

// GetProject writes each received chunk into w as it arrives.
func (c *client) GetProject(ctx context.Context, req *GetProjectRequest, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the stream when writing to w fails
	stream, err := c.rpc.GetProject(ctx, &credentialsv1.GetProjectRequest{ProjectId: req.ProjectID, DeployId: req.DeployID})
	if err != nil {
		return errdefs.FromGRPC(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.FromGRPC(err)
		}
		if _, err := w.Write(msg.GetChunk()); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
}

func (c *client) DeleteProject(ctx context.Context, req *DeleteProjectRequest) (*DeleteProjectResponse, error) {
	_, err := c.rpc.DeleteProject(ctx, &credentialsv1.DeleteProjectRequest{ProjectId: req.ProjectID, DeployId: req.DeployID})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &DeleteProjectResponse{}, nil
}
