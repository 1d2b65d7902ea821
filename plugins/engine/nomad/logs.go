package main

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Nomad's log API selects output by bytes, not lines, so a tail of N lines
// reads the last N × tailBytesPerLine bytes (at most maxTailBytes) and
// keeps the last N lines of them, as `nomad alloc logs -tail` does.
const (
	tailBytesPerLine = 512
	maxTailBytes     = 4 << 20
)

// logTypes are the task's output streams, read in this order.
var logTypes = []string{"stdout", "stderr"}

// JobLogs copies the output of the task of the job's latest allocation to
// w: stdout then stderr, or both as they arrive when following. A job
// without an allocation has no output yet.
func (e *nomadEngine) JobLogs(ctx context.Context, req *engine.JobLogsRequest, w io.Writer) error {
	_, client, err := e.current()
	if err != nil {
		return err
	}
	view, err := jobViewByName(ctx, client, req.Name)
	if err != nil {
		return unwrapNotOurs(err, req.Name)
	}
	stub := latestAlloc(view.Allocs, view.CreateIndex)
	if stub == nil {
		return nil
	}
	alloc := &api.Allocation{ID: stub.ID, NodeID: stub.NodeID, Namespace: stub.Namespace}
	if req.Follow {
		return followLogs(ctx, client, alloc, req.TailLines, w)
	}
	for _, logType := range logTypes {
		if err := copyLogs(ctx, client, alloc, logType, false, req.TailLines, w); err != nil {
			return err
		}
	}
	return nil
}

// followLogs follows both streams at once, writing whole frames to w.
func followLogs(ctx context.Context, client *api.Client, alloc *api.Allocation, tail int64, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lockedWriter{w: w}
	errs := make(chan error, len(logTypes))
	for _, logType := range logTypes {
		go func() { errs <- copyLogs(ctx, client, alloc, logType, true, tail, out) }()
	}
	var first error
	for range logTypes {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// copyLogs streams one output of the task to w until the log ends, or until
// ctx ends when following.
func copyLogs(ctx context.Context, client *api.Client, alloc *api.Allocation, logType string, follow bool, tail int64, w io.Writer) error {
	origin, offset := "start", int64(0)
	if tail > 0 {
		origin, offset = "end", min(tail*tailBytesPerLine, maxTailBytes)
	}
	cancel := make(chan struct{})
	defer close(cancel)
	frames, errs := client.AllocFS().Logs(alloc, follow, taskName, logType, origin, offset, cancel, queryOptions(ctx))
	sink := w
	var lines *lastLines
	switch {
	case tail > 0 && !follow:
		lines = &lastLines{n: int(tail)}
		sink = lines
	case tail > 0:
		sink = &skipFirstLine{w: w}
	}
	if err := drainFrames(ctx, frames, errs, sink); err != nil {
		return nomadError(err, "read the %s of allocation %s", logType, alloc.ID)
	}
	if lines != nil {
		_, err := w.Write(lines.bytes())
		return err
	}
	return nil
}

func drainFrames(ctx context.Context, frames <-chan *api.StreamFrame, errs <-chan error, w io.Writer) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		case frame, ok := <-frames:
			if !ok {
				return nil
			}
			if _, err := w.Write(frame.Data); err != nil {
				return errdefs.Unavailable("write logs: %v", err)
			}
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// lastLines keeps the last n lines written to it.
type lastLines struct {
	n   int
	buf []byte
}

func (l *lastLines) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	l.trim()
	return len(b), nil
}

// trim drops whole lines from the front beyond n, counting a last line
// without a newline as a line.
func (l *lastLines) trim() {
	for bytes.Count(l.buf, []byte("\n"))+boolInt(len(l.buf) > 0 && l.buf[len(l.buf)-1] != '\n') > l.n {
		i := bytes.IndexByte(l.buf, '\n')
		l.buf = l.buf[i+1:]
	}
}

func (l *lastLines) bytes() []byte {
	return l.buf
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// skipFirstLine drops the bytes up to the first newline: the tail of a log
// read from a byte offset starts inside a line.
type skipFirstLine struct {
	w       io.Writer
	started bool
}

func (s *skipFirstLine) Write(b []byte) (int, error) {
	n := len(b)
	if !s.started {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n, nil
		}
		b, s.started = b[i+1:], true
	}
	if _, err := s.w.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}
