package main

import (
	"context"
	"reflect"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/estela-go/estela-go/sdk/engine"
)

// watchBuffer is how many changes wait between the informers and send.
// When it is full, the informers keep queueing in their own buffers.
const watchBuffer = 256

// jobChange names a job whose status may have changed. Deleted carries the
// last state of a deleted Job, and forgotten marks a stopped job that
// DeleteJob removed after its Job was gone.
type jobChange struct {
	name      string
	deleted   *batchv1.Job
	forgotten bool
}

// jobWatch turns informer events into JobEvents for one WatchJobs call.
type jobWatch struct {
	engine *kubeEngine
	want   map[string]string
	jobs   batchlisters.JobNamespaceLister
	pods   corelisters.PodNamespaceLister
	// sent holds the last status sent per job, to skip repeats.
	sent map[string]engine.JobStatus
}

// WatchJobs runs informers on the Jobs and pods selected by req.Labels and
// sends a JobEvent whenever a job's status changes: first one per existing
// job, once both caches are filled, then one per change. A pod change
// counts as a change of its Job. A job stopped by this process stays, as
// STOPPED, until DeleteJob removes it, as it does for GetJob. It returns nil when ctx
// ends and the error of send when send fails.
func (e *kubeEngine) WatchJobs(ctx context.Context, req *engine.WatchJobsRequest, send func(engine.JobEvent) error) error {
	s, client, err := e.current()
	if err != nil {
		return err
	}
	if err := validateLabelKeys(req.Labels); err != nil {
		return err
	}
	sel := selector(req.Labels).String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // Shutdown waits for the informers, which stop when ctx ends
		factory.Shutdown()
	}()

	jobInformer := factory.Batch().V1().Jobs()
	podInformer := factory.Core().V1().Pods()
	changes := make(chan jobChange, watchBuffer)
	push := func(change jobChange) {
		if change.name == "" {
			return
		}
		select {
		case changes <- change:
		case <-ctx.Done():
		}
	}
	if err := addHandlers(jobInformer.Informer(), podInformer.Informer(), push); err != nil {
		return err
	}
	if err := e.logListErrors(jobInformer.Informer(), podInformer.Informer()); err != nil {
		return err
	}
	// forget runs inside DeleteJob, which must not wait for this watch.
	unsubscribe := e.stopped.subscribe(func(name string) { go push(jobChange{name: name, forgotten: true}) })
	defer unsubscribe()

	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), jobInformer.Informer().HasSynced, podInformer.Informer().HasSynced) {
		return nil
	}
	e.logger.Debug("watching jobs", "selector", sel)
	w := &jobWatch{
		engine: e,
		want:   req.Labels,
		jobs:   jobInformer.Lister().Jobs(s.Namespace),
		pods:   podInformer.Lister().Pods(s.Namespace),
		sent:   map[string]engine.JobStatus{},
	}
	return w.run(ctx, changes, send)
}

// addHandlers pushes the name of every changed Job, and of the Job of
// every changed pod.
func addHandlers(jobInformer, podInformer cache.SharedIndexInformer, push func(jobChange)) error {
	_, err := jobInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { push(jobChange{name: objectName(obj)}) },
		UpdateFunc: func(_, obj any) { push(jobChange{name: objectName(obj)}) },
		DeleteFunc: func(obj any) {
			if job, ok := unwrapDeleted(obj).(*batchv1.Job); ok {
				push(jobChange{name: job.Name, deleted: job})
			}
		},
	})
	if err != nil {
		return err
	}
	podChanged := func(obj any) {
		if pod, ok := unwrapDeleted(obj).(*corev1.Pod); ok {
			push(jobChange{name: pod.Labels[labelJobName]})
		}
	}
	_, err = podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    podChanged,
		UpdateFunc: func(_, obj any) { podChanged(obj) },
		DeleteFunc: podChanged,
	})
	return err
}

// logListErrors logs the list and watch failures of the informers, which
// retry with back-off by themselves. Without it a watch that lacks RBAC
// permissions would wait silently.
func (e *kubeEngine) logListErrors(informers ...cache.SharedIndexInformer) error {
	for _, informer := range informers {
		err := informer.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) {
			e.logger.Warn("list or watch failed; retrying", "resource", r.TypeDescription(), "error", err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func unwrapDeleted(obj any) any {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tombstone.Obj
	}
	return obj
}

func objectName(obj any) string {
	if job, ok := obj.(*batchv1.Job); ok {
		return job.Name
	}
	return ""
}

func (w *jobWatch) run(ctx context.Context, changes <-chan jobChange, send func(engine.JobEvent) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case change := <-changes:
			event, ok := w.event(change)
			if !ok {
				continue
			}
			if err := send(event); err != nil {
				return err
			}
		}
	}
}

// event returns the JobEvent for a change, or false when there is nothing
// new to send.
func (w *jobWatch) event(change jobChange) (engine.JobEvent, bool) {
	switch {
	case change.forgotten:
		return w.removed(change.name, engine.JobStatus{})
	case change.deleted != nil:
		return w.deletedEvent(change.deleted)
	}
	job, err := w.jobs.Get(change.name)
	if err != nil {
		return engine.JobEvent{}, false // deleted meanwhile: its delete event follows
	}
	return w.changed(jobStatus(job, w.podsOf(change.name)))
}

// changed returns the event of a live status, unless it was sent last.
func (w *jobWatch) changed(status engine.JobStatus) (engine.JobEvent, bool) {
	if !containsLabels(status.Labels, w.want) {
		return engine.JobEvent{}, false
	}
	if last, ok := w.sent[status.Name]; ok && reflect.DeepEqual(last, status) {
		return engine.JobEvent{}, false
	}
	w.sent[status.Name] = status
	return engine.JobEvent{Job: status}, true
}

// removed returns the Deleted event of a sent job, with final as its
// status when it is set, or else the last status sent.
func (w *jobWatch) removed(name string, final engine.JobStatus) (engine.JobEvent, bool) {
	last, ok := w.sent[name]
	if !ok {
		return engine.JobEvent{}, false
	}
	delete(w.sent, name)
	if final.Name == "" {
		final = last
	}
	return engine.JobEvent{Job: final, Deleted: true}, true
}

// deletedEvent returns the event of a deleted Job. A job this process
// stopped stays STOPPED, not deleted, until DeleteJob removes its record. A live
// job deleted by someone else ends STOPPED with a reason saying so.
func (w *jobWatch) deletedEvent(job *batchv1.Job) (engine.JobEvent, bool) {
	if stopped, ok := w.engine.stopped.get(job.Name, w.engine.now()); ok {
		return w.changed(stopped)
	}
	status := jobStatus(job, w.podsOf(job.Name))
	if !status.State.Final() {
		status.State, status.Reason, status.FinishedAt = engine.JobStopped, reasonDeletedElsewhere, w.engine.now()
	}
	return w.removed(job.Name, status)
}

func (w *jobWatch) podsOf(name string) []corev1.Pod {
	pods, err := w.pods.List(labels.SelectorFromSet(labels.Set{labelJobName: name}))
	if err != nil {
		return nil
	}
	out := make([]corev1.Pod, 0, len(pods))
	for _, pod := range pods {
		out = append(out, *pod)
	}
	return out
}
