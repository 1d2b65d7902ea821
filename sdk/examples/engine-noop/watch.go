package main

import (
	"context"
	"maps"
	"sync"

	"github.com/estela-go/estela-go/sdk/engine"
)

// watcher is one WatchJobs call. The engine queues events on it under the
// engine's lock, and the call sends them from its own goroutine, so a slow
// host never blocks the request path.
type watcher struct {
	selector map[string]string
	// wake has room for one signal: a pending signal already covers every
	// event queued after it.
	wake chan struct{}

	mu sync.Mutex
	// NOTE: the queue has no bound. A host that reads slower than jobs
	// change makes it grow until the watch ends.
	queue []engine.JobEvent
}

func (w *watcher) push(event engine.JobEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, event)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) takeAll() []engine.JobEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	events := w.queue
	w.queue = nil
	return events
}

// WatchJobs queues one event per matching job and registers the watch under
// the same lock, so no change between the two is lost or sent twice. It
// returns when ctx ends or send fails.
func (e *noopEngine) WatchJobs(ctx context.Context, req *engine.WatchJobsRequest, send func(engine.JobEvent) error) error {
	w := &watcher{selector: maps.Clone(req.Labels), wake: make(chan struct{}, 1)}
	e.mu.Lock()
	for _, j := range e.jobs {
		if containsLabels(j.status.Labels, w.selector) {
			w.queue = append(w.queue, engine.JobEvent{Job: j.status})
		}
	}
	e.watchers[w] = struct{}{}
	e.mu.Unlock()
	w.wake <- struct{}{}
	e.logger.Debug("watch started", "labels", req.Labels)

	defer func() {
		e.mu.Lock()
		delete(e.watchers, w)
		e.mu.Unlock()
		e.logger.Debug("watch ended", "labels", req.Labels)
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
		}
		for _, event := range w.takeAll() {
			if err := send(event); err != nil {
				return err
			}
		}
	}
}

// notifyLocked queues an event for every watch whose selector matches the
// job. e.mu must be held.
func (e *noopEngine) notifyLocked(status engine.JobStatus, deleted bool) {
	for w := range e.watchers {
		if containsLabels(status.Labels, w.selector) {
			w.push(engine.JobEvent{Job: status, Deleted: deleted})
		}
	}
}
