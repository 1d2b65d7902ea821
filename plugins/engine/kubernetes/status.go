package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Reasons of final states, worded for the people who read them in the web
// interface. They follow the messages of estela's reconcile task.
const (
	reasonOOMKilled        = "the job used more memory than its limit (OOMKilled)"
	reasonDeadline         = "the job ran longer than its maximum runtime"
	reasonEvicted          = "the node ran out of resources and evicted the job"
	reasonKilled           = "the job was killed with SIGKILL (exit code 137)"
	reasonUnknownFailure   = "the job stopped due to an unexpected error"
	reasonStopped          = "the job was stopped on request"
	reasonDeletedElsewhere = "the Job was deleted outside estela"
)

// imagePullReasons are waiting reasons of a container whose image the
// kubelet cannot pull. The kubelet keeps retrying, so the job stays PENDING
// with the reason filled in; max_runtime or the host ends it.
var imagePullReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName"}

// jobStatus derives the engine's view of a Job from the Job and its pods.
// The Job's conditions decide final states, and the newest pod decides
// between PENDING and RUNNING and explains failures.
func jobStatus(job *batchv1.Job, pods []corev1.Pod) engine.JobStatus {
	status := engine.JobStatus{Name: job.Name, Labels: reportedLabels(job.Annotations, job.Labels)}
	pod := newestPod(job, pods)
	main := mainContainerState(pod)
	failed := finalCondition(job, batchv1.JobFailed, batchv1.JobFailureTarget)
	stoppedAt, stopRequested := stopTime(job)
	switch succeeded := finalCondition(job, batchv1.JobComplete, batchv1.JobSuccessCriteriaMet); {
	case succeeded != nil:
		status.State = engine.JobSucceeded
		status.FinishedAt = completionTime(job, succeeded)
	case stopRequested:
		status.State, status.Reason, status.FinishedAt = engine.JobStopped, reasonStopped, stoppedAt
	case failed != nil:
		status.State = engine.JobFailed
		status.Reason = failureReason(failed, pod, main)
		status.FinishedAt = failed.LastTransitionTime.Time
	case job.DeletionTimestamp != nil:
		status.State, status.Reason, status.FinishedAt = engine.JobStopped, reasonDeletedElsewhere, job.DeletionTimestamp.Time
	case pod != nil && pod.Status.Phase != corev1.PodPending:
		// A pod that ended before the Job controller set a condition still
		// counts as running: the condition follows within seconds.
		status.State = engine.JobRunning
	default:
		status.State = engine.JobPending
		status.Reason = pendingReason(pod)
	}
	if status.State != engine.JobPending {
		status.StartedAt = startTime(pod, main)
	}
	if main.Terminated != nil {
		status.ExitCode = main.Terminated.ExitCode
	}
	return status
}

// newestPod returns the most recently created pod of job, ignoring pods of
// an earlier Job with the same name, or nil.
func newestPod(job *batchv1.Job, pods []corev1.Pod) *corev1.Pod {
	var newest *corev1.Pod
	for i := range pods {
		pod := &pods[i]
		if owner := controllerUID(pod); job.UID != "" && owner != "" && owner != job.UID {
			continue
		}
		if newest == nil || newest.CreationTimestamp.Before(&pod.CreationTimestamp) ||
			newest.CreationTimestamp.Equal(&pod.CreationTimestamp) && pod.Name > newest.Name {
			newest = pod
		}
	}
	return newest
}

func controllerUID(pod *corev1.Pod) types.UID {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return ref.UID
		}
	}
	return ""
}

// mainContainerState returns the state of the pod's first container, which
// is jobcontainer in spider jobs and the deploy reporter in builds.
func mainContainerState(pod *corev1.Pod) corev1.ContainerState {
	if pod == nil || len(pod.Spec.Containers) == 0 {
		return corev1.ContainerState{}
	}
	name := pod.Spec.Containers[0].Name
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == name {
			return cs.State
		}
	}
	return corev1.ContainerState{}
}

func finalCondition(job *batchv1.Job, types ...batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Status == corev1.ConditionTrue && slices.Contains(types, c.Type) {
			return c
		}
	}
	return nil
}

func completionTime(job *batchv1.Job, condition *batchv1.JobCondition) time.Time {
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.Time
	}
	return condition.LastTransitionTime.Time
}

// stopTime returns the time StopJob recorded on the Job, if any.
func stopTime(job *batchv1.Job) (time.Time, bool) {
	raw, ok := job.Annotations[annotationStopRequested]
	if !ok {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, true
	}
	return at, true
}

func startTime(pod *corev1.Pod, main corev1.ContainerState) time.Time {
	switch {
	case main.Running != nil:
		return main.Running.StartedAt.Time
	case main.Terminated != nil:
		return main.Terminated.StartedAt.Time
	case pod != nil && pod.Status.StartTime != nil:
		return pod.Status.StartTime.Time
	default:
		return time.Time{}
	}
}

// failureReason explains a Failed condition, from the most specific fact
// available: the Job's deadline, the pod's eviction, a failed init
// container, the main container's termination, an image it never pulled.
func failureReason(condition *batchv1.JobCondition, pod *corev1.Pod, main corev1.ContainerState) string {
	if condition.Reason == batchv1.JobReasonDeadlineExceeded {
		return reasonDeadline
	}
	if pod == nil {
		return unexpectedReason(condition.Reason)
	}
	if pod.Status.Reason == "Evicted" {
		return reasonEvicted
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("the job could not be prepared: init container %s failed: %s", cs.Name, terminationReason(t))
		}
	}
	if main.Terminated != nil {
		return terminationReason(main.Terminated)
	}
	if reason := imagePullReason(pod); reason != "" {
		return reason
	}
	return unexpectedReason(condition.Reason)
}

func terminationReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason == "OOMKilled":
		return reasonOOMKilled
	case t.ExitCode == 137:
		return reasonKilled
	case t.Reason == "" || t.Reason == "Error" || t.Reason == "Completed":
		return fmt.Sprintf("the job exited with code %d", t.ExitCode)
	default:
		return unexpectedReason(t.Reason)
	}
}

func unexpectedReason(reason string) string {
	if reason == "" {
		return reasonUnknownFailure
	}
	return fmt.Sprintf("the job stopped unexpectedly (%s)", reason)
}

// pendingReason explains why a pod does not run yet: a problem, or the
// init container at work, which distinguishes a build's download from its
// image build. It returns "" when there is nothing to report.
func pendingReason(pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	if reason := imagePullReason(pod); reason != "" {
		return reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "no node can run the job yet: " + c.Message
		}
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.State.Running != nil {
			return "init container " + cs.Name + " is running"
		}
	}
	return ""
}

// imagePullReason describes the first container of pod whose image cannot
// be pulled, or returns "".
func imagePullReason(pod *corev1.Pod) string {
	statuses := slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && slices.Contains(imagePullReasons, w.Reason) {
			message := strings.TrimSpace(w.Message)
			if message == "" {
				message = w.Reason
			}
			return fmt.Sprintf("the image %s could not be pulled: %s", cs.Image, message)
		}
	}
	return ""
}
