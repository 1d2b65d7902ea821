package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/chunk"
	"github.com/estela-go/estela-go/sdk/pluginapi"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// client is the host's Engine: each call is an RPC to the plugin process.
type client struct {
	rpc enginev1.EngineClient
}

var _ Engine = (*client)(nil)

func (c *client) GetInfo(ctx context.Context) (*pluginapi.Info, error) {
	resp, err := c.rpc.GetInfo(ctx, &enginev1.GetInfoRequest{})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return infoFromProto(resp), nil
}

func (c *client) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp, err := c.rpc.Configure(ctx, &enginev1.ConfigureRequest{Config: req.Config})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &pluginapi.ConfigureResponse{Diagnostics: diagnosticsFromProto(resp.GetDiagnostics())}, nil
}

// PrepareArtifact sends the metadata, then the archive in chunks. When the
// plugin ends the call early, Send returns io.EOF and CloseAndRecv returns
// the plugin's error.
func (c *client) PrepareArtifact(ctx context.Context, req *PrepareArtifactRequest) (*PrepareArtifactResponse, error) {
	if req.Archive == nil {
		return nil, errdefs.Invalid("prepare artifact: archive is missing")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the stream when reading the archive fails
	stream, err := c.rpc.PrepareArtifact(ctx)
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	err = stream.Send(&enginev1.PrepareArtifactRequest{Payload: &enginev1.PrepareArtifactRequest_Metadata{
		Metadata: &enginev1.ArtifactMetadata{ProjectId: req.ProjectID, DeployId: req.DeployID},
	}})
	if err == nil {
		_, err = chunk.Copy(req.Archive, func(b []byte) error {
			return stream.Send(&enginev1.PrepareArtifactRequest{Payload: &enginev1.PrepareArtifactRequest_Chunk{Chunk: b}})
		})
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("send archive: %w", errdefs.FromGRPC(err))
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &PrepareArtifactResponse{
		ArtifactRef: resp.GetArtifactRef(),
		ProjectType: resp.GetProjectType(),
		Spiders:     resp.GetSpiders(),
	}, nil
}

func (c *client) CreateJob(ctx context.Context, req *CreateJobRequest) (*CreateJobResponse, error) {
	resp, err := c.rpc.CreateJob(ctx, &enginev1.CreateJobRequest{Spec: specToProto(req.Spec)})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &CreateJobResponse{Job: statusFromProto(resp.GetJob()), Created: resp.GetCreated()}, nil
}

func (c *client) GetJob(ctx context.Context, req *GetJobRequest) (*GetJobResponse, error) {
	resp, err := c.rpc.GetJob(ctx, &enginev1.GetJobRequest{Name: req.Name})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &GetJobResponse{Job: statusFromProto(resp.GetJob())}, nil
}

func (c *client) ListJobs(ctx context.Context, req *ListJobsRequest) (*ListJobsResponse, error) {
	resp, err := c.rpc.ListJobs(ctx, &enginev1.ListJobsRequest{Labels: req.Labels})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	jobs := make([]JobStatus, 0, len(resp.GetJobs()))
	for _, job := range resp.GetJobs() {
		jobs = append(jobs, statusFromProto(job))
	}
	return &ListJobsResponse{Jobs: jobs}, nil
}

func (c *client) StopJob(ctx context.Context, req *StopJobRequest) (*StopJobResponse, error) {
	resp, err := c.rpc.StopJob(ctx, &enginev1.StopJobRequest{Name: req.Name, Grace: durationToProto(req.Grace)})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &StopJobResponse{Job: statusFromProto(resp.GetJob())}, nil
}

func (c *client) DeleteJob(ctx context.Context, req *DeleteJobRequest) (*DeleteJobResponse, error) {
	if _, err := c.rpc.DeleteJob(ctx, &enginev1.DeleteJobRequest{Name: req.Name}); err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &DeleteJobResponse{}, nil
}
