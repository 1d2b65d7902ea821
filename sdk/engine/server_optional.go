package engine

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/internal/chunk"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

// unimplemented is the error of an optional RPC whose interface the engine
// does not implement. The client turns it into errdefs.ErrUnimplemented.
func unimplemented(method, capability string) error {
	return errdefs.ToGRPC(errdefs.Unimplemented("engine plugin does not implement %s (capability %q)", method, capability))
}

func (s *server) WatchJobs(req *enginev1.WatchJobsRequest, stream enginev1.Engine_WatchJobsServer) error {
	watcher, ok := s.impl.(JobWatcher)
	if !ok {
		return unimplemented("WatchJobs", CapabilityWatchJobs)
	}
	guard := &streamGuard{}
	defer guard.close()
	send := func(event JobEvent) error {
		job, err := jobToProto(event.Job)
		if err != nil {
			return err
		}
		return guard.do(func() error {
			return stream.Send(&enginev1.WatchJobsResponse{Job: job, Deleted: event.Deleted})
		})
	}
	err := watcher.WatchJobs(stream.Context(), &WatchJobsRequest{Labels: req.GetLabels()}, send)
	return errdefs.ToGRPC(err)
}

func (s *server) JobLogs(req *enginev1.JobLogsRequest, stream enginev1.Engine_JobLogsServer) error {
	streamer, ok := s.impl.(LogStreamer)
	if !ok {
		return unimplemented("JobLogs", CapabilityJobLogs)
	}
	w := &logWriter{send: func(b []byte) error { return stream.Send(&enginev1.JobLogsResponse{Chunk: b}) }}
	defer w.guard.close()
	err := streamer.JobLogs(stream.Context(), &JobLogsRequest{
		Name:      req.GetName(),
		Follow:    req.GetFollow(),
		TailLines: req.GetTailLines(),
	}, w)
	return errdefs.ToGRPC(err)
}

func (s *server) Capacity(ctx context.Context, _ *enginev1.CapacityRequest) (*enginev1.CapacityResponse, error) {
	reporter, ok := s.impl.(CapacityReporter)
	if !ok {
		return nil, unimplemented("Capacity", CapabilityCapacity)
	}
	resp, err := reporter.Capacity(ctx, &CapacityRequest{})
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return capacityToProto(resp), nil
}

func (s *server) BuildImage(ctx context.Context, req *enginev1.BuildImageRequest) (*enginev1.BuildImageResponse, error) {
	builder, ok := s.impl.(ImageBuilder)
	if !ok {
		return nil, unimplemented("BuildImage", CapabilityBuildImage)
	}
	resp, err := builder.BuildImage(ctx, buildImageFromProto(req))
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	if resp == nil {
		return nil, errNoResponse
	}
	return &enginev1.BuildImageResponse{BuildName: resp.BuildName, Image: resp.Image}, nil
}

// errStreamClosed is returned to an implementation that sends on a stream
// after its RPC method returned.
var errStreamClosed = errors.New("stream already closed: the RPC method has returned")

// streamGuard serializes the sends of one server stream, because an
// implementation may send from several goroutines and gRPC allows only one
// sender at a time. It also rejects sends after the RPC method returned,
// which gRPC does not allow either.
type streamGuard struct {
	mu     sync.Mutex
	closed bool
}

func (g *streamGuard) do(send func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errStreamClosed
	}
	return send()
}

func (g *streamGuard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// logWriter sends each Write at once, in chunks of at most chunk.Size bytes,
// so that followed output reaches the host without waiting for a full chunk.
type logWriter struct {
	guard streamGuard
	send  func([]byte) error
}

func (w *logWriter) Write(p []byte) (int, error) {
	written := 0
	err := w.guard.do(func() error {
		for len(p) > 0 {
			n := min(len(p), chunk.Size)
			// io.Writer must not retain p, and gRPC may read a message after
			// Send returns, so each chunk is a copy.
			if err := w.send(bytes.Clone(p[:n])); err != nil {
				return err
			}
			p = p[n:]
			written += n
		}
		return nil
	})
	return written, err
}
