package engine

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/chunk"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// server serves an Engine over gRPC in the plugin process.
type server struct {
	enginev1.UnimplementedEngineServer
	impl Engine
}

// errNoResponse is returned when the implementation returns neither a
// response nor an error, which is a bug in the plugin.
var errNoResponse = status.Error(codes.Internal, "engine plugin returned no response and no error")

func (s *server) GetInfo(ctx context.Context, _ *enginev1.GetInfoRequest) (*enginev1.GetInfoResponse, error) {
	info, err := s.impl.GetInfo(ctx)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if info == nil {
		return nil, errNoResponse
	}
	return infoToProto(info), nil
}

func (s *server) Configure(ctx context.Context, req *enginev1.ConfigureRequest) (*enginev1.ConfigureResponse, error) {
	resp, err := s.impl.Configure(ctx, &pluginapi.ConfigureRequest{Config: req.GetConfig()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return &enginev1.ConfigureResponse{Diagnostics: diagnosticsToProto(resp.Diagnostics)}, nil
}

// PrepareArtifact reads the metadata from the first message and hands the
// implementation a reader over the chunks that follow.
func (s *server) PrepareArtifact(stream enginev1.Engine_PrepareArtifactServer) error {
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
	resp, err := s.impl.PrepareArtifact(stream.Context(), &PrepareArtifactRequest{
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
	return stream.SendAndClose(&enginev1.PrepareArtifactResponse{
		ArtifactRef: resp.ArtifactRef,
		ProjectType: resp.ProjectType,
		Spiders:     resp.Spiders,
	})
}

func (s *server) CreateJob(ctx context.Context, req *enginev1.CreateJobRequest) (*enginev1.CreateJobResponse, error) {
	resp, err := s.impl.CreateJob(ctx, &CreateJobRequest{Spec: specFromProto(req.GetSpec())})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	job, err := jobToProto(resp.Job)
	if err != nil {
		return nil, err
	}
	return &enginev1.CreateJobResponse{Job: job, Created: resp.Created}, nil
}

func (s *server) GetJob(ctx context.Context, req *enginev1.GetJobRequest) (*enginev1.GetJobResponse, error) {
	resp, err := s.impl.GetJob(ctx, &GetJobRequest{Name: req.GetName()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	job, err := jobToProto(resp.Job)
	if err != nil {
		return nil, err
	}
	return &enginev1.GetJobResponse{Job: job}, nil
}

func (s *server) ListJobs(ctx context.Context, req *enginev1.ListJobsRequest) (*enginev1.ListJobsResponse, error) {
	resp, err := s.impl.ListJobs(ctx, &ListJobsRequest{Labels: req.GetLabels()})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	jobs := make([]*enginev1.JobStatus, 0, len(resp.Jobs))
	for _, j := range resp.Jobs {
		job, err := jobToProto(j)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return &enginev1.ListJobsResponse{Jobs: jobs}, nil
}

func (s *server) StopJob(ctx context.Context, req *enginev1.StopJobRequest) (*enginev1.StopJobResponse, error) {
	resp, err := s.impl.StopJob(ctx, &StopJobRequest{Name: req.GetName(), Grace: durationFromProto(req.GetGrace())})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	job, err := jobToProto(resp.Job)
	if err != nil {
		return nil, err
	}
	return &enginev1.StopJobResponse{Job: job}, nil
}

func (s *server) DeleteJob(ctx context.Context, req *enginev1.DeleteJobRequest) (*enginev1.DeleteJobResponse, error) {
	if _, err := s.impl.DeleteJob(ctx, &DeleteJobRequest{Name: req.GetName()}); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &enginev1.DeleteJobResponse{}, nil
}

// jobToProto reports an invalid job state as codes.Internal: the plugin broke
// the contract, and the host should not read it as a bad request.
func jobToProto(job JobStatus) (*enginev1.JobStatus, error) {
	out, err := statusToProto(job)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return out, nil
}
