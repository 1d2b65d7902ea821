package credentials

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/chunk"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	credentialsv1 "github.com/estela-go/estela-go/sdk/proto/credentials/v1"
)

// server serves a Provider over gRPC in the plugin process.
type server struct {
	credentialsv1.UnimplementedCredentialsServer
	impl Provider
}

// errNoResponse is returned when the implementation returns neither a
// response nor an error, which is a bug in the plugin.
var errNoResponse = status.Error(codes.Internal, "credentials plugin returned no response and no error")

func (s *server) GetInfo(ctx context.Context, _ *credentialsv1.GetInfoRequest) (*credentialsv1.GetInfoResponse, error) {
	info, err := s.impl.GetInfo(ctx)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if info == nil {
		return nil, errNoResponse
	}
	return infoToProto(info), nil
}

func (s *server) Configure(ctx context.Context, req *credentialsv1.ConfigureRequest) (*credentialsv1.ConfigureResponse, error) {
	resp, err := s.impl.Configure(ctx, &pluginapi.ConfigureRequest{Config: req.GetConfig()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return &credentialsv1.ConfigureResponse{Diagnostics: diagnosticsToProto(resp.Diagnostics)}, nil
}

func (s *server) RegistryAuth(ctx context.Context, req *credentialsv1.RegistryAuthRequest) (*credentialsv1.RegistryAuthResponse, error) {
	resp, err := s.impl.RegistryAuth(ctx, &RegistryAuthRequest{Registry: req.GetRegistry()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return &credentialsv1.RegistryAuthResponse{
		Server:    resp.Server,
		Username:  resp.Username,
		Secret:    resp.Secret,
		ExpiresAt: timeToProto(resp.ExpiresAt),
	}, nil
}

// PutProject reads the metadata from the first message and hands the
// implementation a reader over the chunks that follow.
func (s *server) PutProject(stream credentialsv1.Credentials_PutProjectServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return errdefs.ToGRPC(errdefs.Invalid("archive stream ended before its metadata"))
	}
	if err != nil {
		return err
	}
	metadata := first.GetMetadata()
	if metadata == nil {
		return errdefs.ToGRPC(errdefs.Invalid("first message of the archive stream must carry the metadata"))
	}
	archive := chunk.NewReader(func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if msg.GetMetadata() != nil {
			return nil, errdefs.Invalid("archive stream carries its metadata twice")
		}
		return msg.GetChunk(), nil
	})
	resp, err := s.impl.PutProject(stream.Context(), &PutProjectRequest{
		ProjectID: metadata.GetProjectId(),
		DeployID:  metadata.GetDeployId(),
		Archive:   archive,
	})
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	if resp == nil {
		return errNoResponse
	}
	return stream.SendAndClose(&credentialsv1.PutProjectResponse{Size: resp.Size, Sha256: resp.SHA256})
}

// GetProject sends what the implementation writes in chunks of chunk.Size.
func (s *server) GetProject(req *credentialsv1.GetProjectRequest, stream credentialsv1.Credentials_GetProjectServer) error {
	w := chunk.NewWriter(func(b []byte) error {
		return stream.Send(&credentialsv1.GetProjectResponse{Chunk: b})
	})
	err := s.impl.GetProject(stream.Context(), &GetProjectRequest{ProjectID: req.GetProjectId(), DeployID: req.GetDeployId()}, w)
	if err != nil {
		return errdefs.ToGRPC(err)
	}
	return w.Flush()
}

func (s *server) DeleteProject(ctx context.Context, req *credentialsv1.DeleteProjectRequest) (*credentialsv1.DeleteProjectResponse, error) {
	_, err := s.impl.DeleteProject(ctx, &DeleteProjectRequest{ProjectID: req.GetProjectId(), DeployID: req.GetDeployId()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &credentialsv1.DeleteProjectResponse{}, nil
}
