package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/estela-go/estela-go/sdk/errdefs"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// The host's Engine implements every optional interface, whatever the plugin
// serves. A call to a capability the plugin lacks returns an error wrapping
// errdefs.ErrUnimplemented.
var (
	_ JobWatcher       = (*client)(nil)
	_ LogStreamer      = (*client)(nil)
	_ CapacityReporter = (*client)(nil)
	_ ImageBuilder     = (*client)(nil)
)

// WatchJobs passes each event to send. It returns nil when the plugin ends
// the stream, and otherwise the error that ended it: the context's, send's or
// the call's. Returning from WatchJobs cancels the stream in the plugin.
func (c *client) WatchJobs(ctx context.Context, req *WatchJobsRequest, send func(JobEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.WatchJobs(ctx, &enginev1.WatchJobsRequest{Labels: req.Labels})
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
		if err := send(JobEvent{Job: statusFromProto(msg.GetJob()), Deleted: msg.GetDeleted()}); err != nil {
			return err
		}
	}
}

// JobLogs writes each chunk to w as it arrives. It returns nil when the
// plugin ends the stream, and the first error of the call or of w otherwise.
// Returning from JobLogs cancels the stream in the plugin.
func (c *client) JobLogs(ctx context.Context, req *JobLogsRequest, w io.Writer) error {
	if w == nil {
		return errdefs.Invalid("job logs: writer is missing")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.JobLogs(ctx, &enginev1.JobLogsRequest{Name: req.Name, Follow: req.Follow, TailLines: req.TailLines})
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
			return fmt.Errorf("write logs of job %q: %w", req.Name, err)
		}
	}
}

func (c *client) Capacity(ctx context.Context, _ *CapacityRequest) (*CapacityResponse, error) {
	resp, err := c.rpc.Capacity(ctx, &enginev1.CapacityRequest{})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return capacityFromProto(resp), nil
}

func (c *client) BuildImage(ctx context.Context, req *BuildImageRequest) (*BuildImageResponse, error) {
	resp, err := c.rpc.BuildImage(ctx, buildImageToProto(req))
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return &BuildImageResponse{BuildName: resp.GetBuildName(), Image: resp.GetImage()}, nil
}
