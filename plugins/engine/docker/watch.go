package main

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// WatchJobs sends the status of every selected job, then a new status each
// time a container event changes one. It subscribes to the daemon's event
// stream before listing, so no change falls between the list and the
// stream. It returns ErrUnavailable when the stream breaks, and nil when ctx
// ends.
func (e *dockerEngine) WatchJobs(ctx context.Context, req *engine.WatchJobsRequest, send func(engine.JobEvent) error) error {
	_, docker, err := e.current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eventFilter := labelFilter(req.Labels)
	eventFilter.Add("type", string(events.ContainerEventType))
	messages, errs := docker.Events(ctx, events.ListOptions{Filters: eventFilter})

	list, err := e.ListJobs(ctx, &engine.ListJobsRequest{Labels: req.Labels})
	if err != nil {
		return err
	}
	w := &watcher{docker: docker, send: send, last: map[string]engine.JobStatus{}}
	for _, st := range list.Jobs {
		if err := w.sendStatus(st); err != nil {
			return err
		}
	}
	for {
		select {
		case msg := <-messages:
			if err := w.handle(ctx, msg); err != nil {
				return err
			}
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return daemonError(streamError(err), "read the Docker event stream")
		}
	}
}

// streamError makes the end of the event stream an unavailable daemon.
func streamError(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errdefs.Unavailable("the daemon closed the event stream")
	}
	return err
}

// watcher sends job events, skipping statuses equal to the last one sent.
type watcher struct {
	docker *client.Client
	send   func(engine.JobEvent) error
	// last holds the last status sent per job name.
	last map[string]engine.JobStatus
}

// handle turns a container event into a job event. Create and start events
// carry all a PENDING or RUNNING status needs: the container's labels and
// the time. A die event needs the exit code, OOM flag and stop record, so
// the watcher reads them, the stop record first: a stop creates its record
// before the container dies, and a delete removes the container before the
// record.
func (w *watcher) handle(ctx context.Context, msg events.Message) error {
	attrs := msg.Actor.Attributes
	name := attrs[labelJobName]
	switch msg.Action {
	case events.ActionCreate:
		return w.sendStatus(engine.JobStatus{Name: name, State: engine.JobPending, Labels: jobLabels(attrs)})
	case events.ActionStart, events.ActionUnPause:
		st := engine.JobStatus{Name: name, State: engine.JobRunning, Labels: jobLabels(attrs), StartedAt: eventTime(msg)}
		if prev, ok := w.last[name]; ok && prev.State == engine.JobRunning {
			st.StartedAt = prev.StartedAt
		}
		return w.sendStatus(st)
	case events.ActionDie:
		return w.handleDie(ctx, msg)
	case events.ActionDestroy:
		// The event carries the container's labels but not its state: the
		// last status sent is the best known, else STOPPED.
		deleted, ok := w.last[name]
		if !ok {
			deleted = engine.JobStatus{Name: name, State: engine.JobStopped, Labels: jobLabels(attrs)}
		}
		delete(w.last, name)
		return w.send(engine.JobEvent{Job: deleted, Deleted: true})
	}
	return nil
}

func (w *watcher) handleDie(ctx context.Context, msg events.Message) error {
	id := msg.Actor.ID
	rec, err := stopMarked(ctx, w.docker, id)
	if err != nil {
		return err
	}
	inspected, err := w.docker.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		// Removed since the event: build the status from the event.
		// NOTE: when DeleteJob removed the stop record too, a stopped job
		// shows as FAILED with code 143 here; its deletion event follows.
		return w.sendStatus(applyStopMarker(dieStatus(msg, w.last[msg.Actor.Attributes[labelJobName]]), rec))
	}
	if err != nil {
		return daemonError(err, "inspect container %s", shortID(id))
	}
	return w.sendStatus(applyStopMarker(containerStatus(inspected), rec))
}

// dieStatus returns the final status carried by a die event, which lacks the
// OOM flag and the daemon's error text.
func dieStatus(msg events.Message, last engine.JobStatus) engine.JobStatus {
	attrs := msg.Actor.Attributes
	code, _ := strconv.Atoi(attrs["exitCode"])
	st := engine.JobStatus{Name: attrs[labelJobName], Labels: jobLabels(attrs), ExitCode: int32(code),
		StartedAt: last.StartedAt, FinishedAt: eventTime(msg)}
	finished(&st, &container.State{ExitCode: code, FinishedAt: st.FinishedAt.Format(time.RFC3339Nano)})
	return st
}

func eventTime(msg events.Message) time.Time {
	if msg.TimeNano != 0 {
		return time.Unix(0, msg.TimeNano).UTC()
	}
	return time.Unix(msg.Time, 0).UTC()
}

func (w *watcher) sendStatus(st engine.JobStatus) error {
	if prev, ok := w.last[st.Name]; ok && prev.State == st.State && prev.Reason == st.Reason {
		return nil
	}
	w.last[st.Name] = st
	return w.send(engine.JobEvent{Job: st})
}

// JobLogs copies the job container's stdout and stderr to w. Containers
// without a TTY, which is how CreateJob makes them, send both streams
// multiplexed in frames, which stdcopy splits again.
func (e *dockerEngine) JobLogs(ctx context.Context, req *engine.JobLogsRequest, w io.Writer) error {
	_, docker, err := e.current()
	if err != nil {
		return err
	}
	c, err := inspectJob(ctx, docker, req.Name)
	if err != nil {
		return err
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: req.Follow, Tail: "all"}
	if req.TailLines > 0 {
		opts.Tail = strconv.FormatInt(req.TailLines, 10)
	}
	logs, err := docker.ContainerLogs(ctx, c.ID, opts)
	if err != nil {
		return daemonError(err, "read the logs of job %s", req.Name)
	}
	defer logs.Close()
	if c.Config.Tty {
		_, err = io.Copy(w, logs)
	} else {
		_, err = stdcopy.StdCopy(w, w, logs)
	}
	if err != nil && ctx.Err() == nil {
		return daemonError(err, "read the logs of job %s", req.Name)
	}
	return nil
}
