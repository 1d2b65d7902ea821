package main

import (
	"context"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Event types of the Job and Allocation topics that change a job's status.
const (
	eventJobRegistered   = "JobRegistered"
	eventJobDeregistered = "JobDeregistered"
	// eventJobBatchDeregistered is Nomad's garbage collection of dead jobs,
	// which purges them.
	eventJobBatchDeregistered = "JobBatchDeregistered"
)

// WatchJobs sends the status of every selected job, then a new status each
// time an event of the Job or Allocation topic changes one. It lists the
// jobs and allocations first, then streams events from the index of the job
// list, so no change falls between the two. The watch keeps each job's
// allocations from the events, so it makes no call per event. It returns
// ErrUnavailable when the stream breaks, and nil when ctx ends.
func (e *nomadEngine) WatchJobs(ctx context.Context, req *engine.WatchJobsRequest, send func(engine.JobEvent) error) error {
	_, client, err := e.current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &watcher{selector: req.Labels, send: send, jobs: map[string]*jobView{}, last: map[string]engine.JobStatus{}}
	index, err := w.load(ctx, client)
	if err != nil {
		return err
	}
	topics := map[api.Topic][]string{api.TopicJob: {"*"}, api.TopicAllocation: {"*"}}
	stream, err := client.EventStream().Stream(ctx, topics, index, queryOptions(ctx))
	if err != nil {
		return nomadError(err, "open the Nomad event stream")
	}
	return w.run(ctx, stream)
}

// watcher tracks the selected jobs and sends their changes.
type watcher struct {
	selector map[string]string
	send     func(engine.JobEvent) error
	jobs     map[string]*jobView
	// last holds the last status sent per job name.
	last map[string]engine.JobStatus
}

// load reads the selected jobs and their allocations, sends their statuses
// and returns the index to stream events from.
func (w *watcher) load(ctx context.Context, client *api.Client) (uint64, error) {
	opts := &api.JobListOptions{Fields: &api.JobListFields{Meta: true}}
	stubs, meta, err := client.Jobs().ListOptions(opts, queryOptions(ctx))
	if err != nil {
		return 0, nomadError(err, "list jobs")
	}
	allocs, err := allocationsByJob(ctx, client)
	if err != nil {
		return 0, err
	}
	for _, stub := range stubs {
		if labels, ours := jobLabels(stub.Meta); ours && containsLabels(labels, w.selector) {
			view := viewOfStub(stub, allocs[stub.ID])
			w.jobs[stub.ID] = &view
			if err := w.sendStatus(view); err != nil {
				return 0, err
			}
		}
	}
	return meta.LastIndex, nil
}

func (w *watcher) run(ctx context.Context, stream <-chan *api.Events) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case events, ok := <-stream:
			if ctx.Err() != nil {
				return nil
			}
			if !ok {
				return errdefs.Unavailable("the Nomad agent closed the event stream")
			}
			if events.Err != nil {
				return errdefs.Unavailable("read the Nomad event stream: %v", events.Err)
			}
			if err := w.handleAll(events.Events); err != nil {
				return err
			}
		}
	}
}

func (w *watcher) handleAll(events []api.Event) error {
	for i := range events {
		ev := &events[i]
		var err error
		switch ev.Topic {
		case api.TopicJob:
			err = w.handleJob(ev)
		case api.TopicAllocation:
			err = w.handleAlloc(ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *watcher) handleJob(ev *api.Event) error {
	switch ev.Type {
	case eventJobRegistered:
		job, err := ev.Job()
		if err != nil || job == nil {
			return errdefs.Unavailable("decode the job of event %s: %v", ev.Type, err)
		}
		labels, ours := jobLabels(job.Meta)
		if !ours || !containsLabels(labels, w.selector) {
			return nil
		}
		view := viewOfJob(job, nil)
		if known, ok := w.jobs[view.ID]; ok && known.CreateIndex == view.CreateIndex {
			view.Allocs = known.Allocs
		}
		w.jobs[view.ID] = &view
		return w.sendStatus(view)
	case eventJobDeregistered:
		return w.handleDeregistered(ev)
	case eventJobBatchDeregistered:
		if view, ok := w.jobs[ev.Key]; ok {
			return w.sendDeleted(view)
		}
	}
	return nil
}

func (w *watcher) handleDeregistered(ev *api.Event) error {
	view, ok := w.jobs[ev.Key]
	if !ok {
		return nil
	}
	_, deleted, err := ev.DeregisteredJob()
	if err != nil {
		return errdefs.Unavailable("decode the job of event %s: %v", ev.Type, err)
	}
	if !deleted {
		view.Stop = true
		return w.sendStatus(*view)
	}
	return w.sendDeleted(view)
}

// sendDeleted sends the deletion of a job with its last status, and stops
// tracking it.
func (w *watcher) sendDeleted(view *jobView) error {
	st, sent := w.last[view.ID]
	if !sent {
		st = jobStatus(*view)
	}
	delete(w.jobs, view.ID)
	delete(w.last, view.ID)
	return w.send(engine.JobEvent{Job: st, Deleted: true})
}

func (w *watcher) handleAlloc(ev *api.Event) error {
	alloc, err := ev.Allocation()
	if err != nil || alloc == nil {
		return errdefs.Unavailable("decode the allocation of event %s: %v", ev.Type, err)
	}
	view, ok := w.jobs[alloc.JobID]
	if !ok {
		return nil
	}
	view.Allocs = replaceAlloc(view.Allocs, allocStub(alloc))
	return w.sendStatus(*view)
}

func replaceAlloc(allocs []*api.AllocationListStub, alloc *api.AllocationListStub) []*api.AllocationListStub {
	for i, a := range allocs {
		if a.ID == alloc.ID {
			allocs[i] = alloc
			return allocs
		}
	}
	return append(allocs, alloc)
}

// allocStub keeps the fields of an allocation that jobStatus reads.
func allocStub(a *api.Allocation) *api.AllocationListStub {
	return &api.AllocationListStub{
		ID: a.ID, JobID: a.JobID, NodeID: a.NodeID, TaskGroup: a.TaskGroup,
		DesiredStatus: a.DesiredStatus, DesiredDescription: a.DesiredDescription,
		ClientStatus: a.ClientStatus, ClientDescription: a.ClientDescription, TaskStates: a.TaskStates,
		CreateIndex: a.CreateIndex, ModifyIndex: a.ModifyIndex, CreateTime: a.CreateTime, ModifyTime: a.ModifyTime,
	}
}

// sendStatus sends the job's status unless it equals the last one sent.
func (w *watcher) sendStatus(view jobView) error {
	st := jobStatus(view)
	if prev, ok := w.last[st.Name]; ok && prev.State == st.State && prev.Reason == st.Reason {
		return nil
	}
	w.last[st.Name] = st
	return w.send(engine.JobEvent{Job: st})
}
