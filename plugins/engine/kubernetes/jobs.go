package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// CreateJob creates the Job that runs the spec, or returns the status of
// the estela-go Job with that name, with Created false.
func (e *kubeEngine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	spec := req.Spec
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	created, err := client.BatchV1().Jobs(s.Namespace).Create(ctx, jobManifest(s, spec), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return e.existingJob(ctx, s, client, spec.Name)
	}
	if err != nil {
		return nil, apiError(err, "create job "+spec.Name)
	}
	e.stopped.remove(spec.Name)
	e.logger.Debug("job created", "job", spec.Name, "namespace", s.Namespace)
	return &engine.CreateJobResponse{Job: jobStatus(created, nil), Created: true}, nil
}

func (e *kubeEngine) existingJob(ctx context.Context, s *settings, client kubernetes.Interface, name string) (*engine.CreateJobResponse, error) {
	job, pods, err := e.readJob(ctx, s, client, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.Conflict("a Job named %s exists in namespace %s but was not created by estela-go, or is being deleted; choose another name or retry", name, s.Namespace)
	}
	if err != nil {
		return nil, err
	}
	return &engine.CreateJobResponse{Job: jobStatus(job, pods), Created: false}, nil
}

// GetJob returns the status of a Job, or of a job StopJob deleted.
func (e *kubeEngine) GetJob(ctx context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	job, pods, err := e.readJob(ctx, s, client, req.Name)
	if errors.Is(err, errdefs.ErrNotFound) {
		if status, ok := e.stopped.get(req.Name, e.now()); ok {
			return &engine.GetJobResponse{Job: status}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return &engine.GetJobResponse{Job: jobStatus(job, pods)}, nil
}

// readJob returns the Job and its pods. A Job that estela-go did not create
// counts as not found, so the plugin never reports or deletes it.
func (e *kubeEngine) readJob(ctx context.Context, s *settings, client kubernetes.Interface, name string) (*batchv1.Job, []corev1.Pod, error) {
	if err := validateJobName(name); err != nil {
		return nil, nil, errdefs.NotFound("job %q not found", name)
	}
	job, err := client.BatchV1().Jobs(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, apiError(err, "job "+name)
	}
	if job.Labels[labelManagedBy] != managedBy {
		return nil, nil, errdefs.NotFound("job %s not found: the Job of that name in namespace %s was not created by estela-go", name, s.Namespace)
	}
	pods, err := client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelJobName + "=" + name})
	if err != nil {
		return nil, nil, apiError(err, "list pods of job "+name)
	}
	return job, pods.Items, nil
}

// ListJobs lists the Jobs and their pods in one call each, both selected by
// the requested labels.
func (e *kubeEngine) ListJobs(ctx context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	if err := validateLabelKeys(req.Labels); err != nil {
		return nil, err
	}

	options := metav1.ListOptions{LabelSelector: selector(req.Labels).String()}
	jobs, err := client.BatchV1().Jobs(s.Namespace).List(ctx, options)
	if err != nil {
		return nil, apiError(err, "list jobs")
	}
	pods, err := client.CoreV1().Pods(s.Namespace).List(ctx, options)
	if err != nil {
		return nil, apiError(err, "list pods")
	}

	podsByJob := map[string][]corev1.Pod{}
	for _, pod := range pods.Items {
		name := pod.Labels[labelJobName]
		podsByJob[name] = append(podsByJob[name], pod)
	}

	resp := &engine.ListJobsResponse{Jobs: []engine.JobStatus{}}
	listed := map[string]bool{}
	for i := range jobs.Items {
		status := jobStatus(&jobs.Items[i], podsByJob[jobs.Items[i].Name])
		// Sanitized label values can collide, so the exact labels decide.
		if containsLabels(status.Labels, req.Labels) {
			resp.Jobs = append(resp.Jobs, status)
			listed[status.Name] = true
		}
	}
	for _, status := range e.stopped.list(req.Labels, e.now()) {
		if !listed[status.Name] {
			resp.Jobs = append(resp.Jobs, status)
		}
	}
	return resp, nil
}

// StopJob records the stop on the Job, deletes it with foreground
// propagation and deletes its pods with the requested grace period. A job
// in a final state is returned unchanged, except one whose stop was
// recorded but whose deletion failed. The garbage collector deletes the
// pods too, with their own terminationGracePeriodSeconds (30 s by default),
// so a longer grace is cut to that.
func (e *kubeEngine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	job, pods, err := e.readJob(ctx, s, client, req.Name)
	if errors.Is(err, errdefs.ErrNotFound) {
		if status, ok := e.stopped.get(req.Name, e.now()); ok {
			return &engine.StopJobResponse{Job: status}, nil
		}
	}
	if err != nil {
		return nil, err
	}

	status := jobStatus(job, pods)
	recordedAt, stopRecorded := stopTime(job)
	// A recorded stop whose deletion failed is finished here, at its first time.
	retry := stopRecorded && job.DeletionTimestamp == nil && status.State == engine.JobStopped
	if status.State.Final() && !retry {
		return &engine.StopJobResponse{Job: status}, nil
	}

	stoppedAt := e.now().UTC().Truncate(time.Second)
	if retry && !recordedAt.IsZero() {
		stoppedAt = recordedAt
	}
	status.State, status.Reason, status.FinishedAt = engine.JobStopped, reasonStopped, stoppedAt

	// The record comes first so that a watch finds it when the deletion arrives.
	e.stopped.add(status, e.now())
	if err := e.deleteJob(ctx, s, client, job, pods, stoppedAt, req.Grace); err != nil {
		e.stopped.remove(req.Name)
		return nil, err
	}
	e.logger.Info("job stopped", "job", req.Name, "grace", req.Grace)
	return &engine.StopJobResponse{Job: status}, nil
}

func (e *kubeEngine) deleteJob(ctx context.Context, s *settings, client kubernetes.Interface, job *batchv1.Job, pods []corev1.Pod, at time.Time, grace time.Duration) error {
	jobs := client.BatchV1().Jobs(s.Namespace)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotationStopRequested: at.Format(time.RFC3339)}}})
	if _, err := jobs.Patch(ctx, job.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return apiError(err, "record the stop of job "+job.Name)
	}
	err := jobs.Delete(ctx, job.Name, deleteOptions(job.UID, metav1.DeletePropagationForeground))
	if err != nil && !apierrors.IsNotFound(err) {
		return apiError(err, "delete job "+job.Name)
	}
	options := metav1.DeleteOptions{}
	if grace > 0 {
		options.GracePeriodSeconds = deadlineSeconds(grace)
	}
	for _, pod := range pods {
		err := client.CoreV1().Pods(s.Namespace).Delete(ctx, pod.Name, options)
		if err != nil && !apierrors.IsNotFound(err) {
			// The garbage collector deletes the pod anyway, with the pod's own grace period.
			e.logger.Warn("cannot delete pod of stopped job", "job", job.Name, "pod", pod.Name, "error", err)
		}
	}
	return nil
}

func deleteOptions(uid types.UID, propagation metav1.DeletionPropagation) metav1.DeleteOptions {
	options := metav1.DeleteOptions{PropagationPolicy: ptr.To(propagation)}
	if uid != "" {
		// The precondition makes sure a Job created again under the same name
		// since it was read is left alone.
		options.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	return options
}

// DeleteJob deletes the Job with background propagation, so it is gone at
// once and the garbage collector deletes its pods after. It also removes
// the record of a job that StopJob deleted, which ends that job for the
// watches too.
func (e *kubeEngine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	wasStopped := e.stopped.forget(req.Name)
	job, _, err := e.readJob(ctx, s, client, req.Name)
	if errors.Is(err, errdefs.ErrNotFound) && wasStopped {
		return &engine.DeleteJobResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	err = client.BatchV1().Jobs(s.Namespace).Delete(ctx, job.Name, deleteOptions(job.UID, metav1.DeletePropagationBackground))
	if err != nil && !(apierrors.IsNotFound(err) && wasStopped) {
		return nil, apiError(err, "delete job "+req.Name)
	}
	e.logger.Debug("job deleted", "job", req.Name)
	return &engine.DeleteJobResponse{}, nil
}
