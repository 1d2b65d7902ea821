package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
)

// jobFixture is a Job as the API server returns it, before any condition.
func jobFixture(name string, conditions ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   "default",
			UID:         types.UID("uid-" + name),
			Labels:      map[string]string{labelManagedBy: managedBy, "estela/job": "12"},
			Annotations: map[string]string{annotationLabels: `{"estela/job":"12"}`},
		},
		Status: batchv1.JobStatus{Conditions: conditions},
	}
}

func condition(kind batchv1.JobConditionType, reason string, minute int) batchv1.JobCondition {
	return batchv1.JobCondition{Type: kind, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: at(minute)}
}

// podFixture is the pod the Job controller creates for jobFixture(job).
func podFixture(job, name string, phase corev1.PodPhase, state corev1.ContainerState) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			Namespace:         "default",
			CreationTimestamp: at(0),
			Labels:            map[string]string{labelManagedBy: managedBy, "estela/job": "12", labelJobName: job},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job, UID: types.UID("uid-" + job), Controller: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: jobContainer, Image: "registry.example.com/p:1"}}},
		Status: corev1.PodStatus{
			Phase:             phase,
			ContainerStatuses: []corev1.ContainerStatus{{Name: jobContainer, Image: "registry.example.com/p:1", State: state}},
		},
	}
}

func running(minute int) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(minute)}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, StartedAt: at(1), FinishedAt: at(5)}}
}

func waiting(reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

func TestJobStatus(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"estela/job": "12"}
	failed := func(reason string) *batchv1.Job {
		return jobFixture("sj", condition(batchv1.JobFailed, reason, 6))
	}
	tests := []struct {
		name string
		job  *batchv1.Job
		pods []corev1.Pod
		want engine.JobStatus
	}{
		{
			"no pod yet", jobFixture("sj"), nil,
			engine.JobStatus{State: engine.JobPending},
		},
		{
			"container creating", jobFixture("sj"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodPending, waiting("ContainerCreating", ""))},
			engine.JobStatus{State: engine.JobPending},
		},
		{
			"image pull back-off", jobFixture("sj"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodPending, waiting("ImagePullBackOff", `Back-off pulling image "registry.example.com/p:1"`))},
			engine.JobStatus{State: engine.JobPending, Reason: `the image registry.example.com/p:1 could not be pulled: Back-off pulling image "registry.example.com/p:1"`},
		},
		{
			"unschedulable", jobFixture("sj"),
			[]corev1.Pod{func() corev1.Pod {
				pod := podFixture("sj", "sj-a", corev1.PodPending, corev1.ContainerState{})
				pod.Status.ContainerStatuses = nil
				pod.Status.Conditions = []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient memory.",
				}}
				return pod
			}()},
			engine.JobStatus{State: engine.JobPending, Reason: "no node can run the job yet: 0/3 nodes are available: 3 Insufficient memory."},
		},
		{
			"init container running", jobFixture("sj"),
			[]corev1.Pod{func() corev1.Pod {
				pod := podFixture("sj", "sj-a", corev1.PodPending, waiting("PodInitializing", ""))
				pod.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: downloaderContainer, State: terminated("Completed", 0)},
					{Name: kanikoContainer, State: running(2)},
				}
				return pod
			}()},
			engine.JobStatus{State: engine.JobPending, Reason: "init container kaniko-builder is running"},
		},
		{
			"running", jobFixture("sj"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodRunning, running(2))},
			engine.JobStatus{State: engine.JobRunning, StartedAt: at(2).Time},
		},
		{
			"pod ended before the condition", jobFixture("sj"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodSucceeded, terminated("Completed", 0))},
			engine.JobStatus{State: engine.JobRunning, StartedAt: at(1).Time},
		},
		{
			"succeeded",
			func() *batchv1.Job {
				job := jobFixture("sj", condition(batchv1.JobComplete, "CompletionsReached", 6))
				job.Status.CompletionTime = ptr.To(at(5))
				return job
			}(),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodSucceeded, terminated("Completed", 0))},
			engine.JobStatus{State: engine.JobSucceeded, StartedAt: at(1).Time, FinishedAt: at(5).Time},
		},
		{
			"success criteria met", jobFixture("sj", condition(batchv1.JobSuccessCriteriaMet, "CompletionsReached", 6)),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodSucceeded, terminated("Completed", 0))},
			engine.JobStatus{State: engine.JobSucceeded, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"exit code", failed("BackoffLimitExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 3))},
			engine.JobStatus{State: engine.JobFailed, Reason: "the job exited with code 3", ExitCode: 3, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"failure target", jobFixture("sj", condition(batchv1.JobFailureTarget, "BackoffLimitExceeded", 6)),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 3))},
			engine.JobStatus{State: engine.JobFailed, Reason: "the job exited with code 3", ExitCode: 3, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"out of memory", failed("BackoffLimitExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("OOMKilled", 137))},
			engine.JobStatus{State: engine.JobFailed, Reason: reasonOOMKilled, ExitCode: 137, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"killed", failed("BackoffLimitExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 137))},
			engine.JobStatus{State: engine.JobFailed, Reason: reasonKilled, ExitCode: 137, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"deadline exceeded", failed("DeadlineExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 143))},
			engine.JobStatus{State: engine.JobFailed, Reason: reasonDeadline, ExitCode: 143, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"evicted", failed("BackoffLimitExceeded"),
			[]corev1.Pod{func() corev1.Pod {
				pod := podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 137))
				pod.Status.Reason = "Evicted"
				return pod
			}()},
			engine.JobStatus{State: engine.JobFailed, Reason: reasonEvicted, ExitCode: 137, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"other termination reason", failed("BackoffLimitExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("ContainerCannotRun", 128))},
			engine.JobStatus{State: engine.JobFailed, Reason: "the job stopped unexpectedly (ContainerCannotRun)", ExitCode: 128, StartedAt: at(1).Time, FinishedAt: at(6).Time},
		},
		{
			"image never pulled", failed("BackoffLimitExceeded"),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, waiting("ErrImagePull", "manifest unknown"))},
			engine.JobStatus{State: engine.JobFailed, Reason: "the image registry.example.com/p:1 could not be pulled: manifest unknown", FinishedAt: at(6).Time},
		},
		{
			"init container failed", failed("BackoffLimitExceeded"),
			[]corev1.Pod{func() corev1.Pod {
				pod := podFixture("sj", "sj-a", corev1.PodFailed, waiting("PodInitializing", ""))
				pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: downloaderContainer, State: terminated("Error", 1)}}
				return pod
			}()},
			engine.JobStatus{State: engine.JobFailed, Reason: "the job could not be prepared: init container project-downloader failed: the job exited with code 1", FinishedAt: at(6).Time},
		},
		{
			"failed without pod", failed("BackoffLimitExceeded"), nil,
			engine.JobStatus{State: engine.JobFailed, Reason: "the job stopped unexpectedly (BackoffLimitExceeded)", FinishedAt: at(6).Time},
		},
		{
			"failed without reason", failed(""), nil,
			engine.JobStatus{State: engine.JobFailed, Reason: reasonUnknownFailure, FinishedAt: at(6).Time},
		},
		{
			"stop requested",
			func() *batchv1.Job {
				job := jobFixture("sj")
				job.Annotations[annotationStopRequested] = at(3).UTC().Format(time.RFC3339)
				return job
			}(),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodRunning, running(2))},
			engine.JobStatus{State: engine.JobStopped, Reason: reasonStopped, StartedAt: at(2).Time, FinishedAt: at(3).Time},
		},
		{
			"stopped after failing to stop",
			func() *batchv1.Job {
				job := failed("BackoffLimitExceeded")
				job.Annotations[annotationStopRequested] = at(3).UTC().Format(time.RFC3339)
				return job
			}(),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 143))},
			engine.JobStatus{State: engine.JobStopped, Reason: reasonStopped, ExitCode: 143, StartedAt: at(1).Time, FinishedAt: at(3).Time},
		},
		{
			"deleted by someone else",
			func() *batchv1.Job {
				job := jobFixture("sj")
				job.DeletionTimestamp = ptr.To(at(4))
				return job
			}(),
			[]corev1.Pod{podFixture("sj", "sj-a", corev1.PodRunning, running(2))},
			engine.JobStatus{State: engine.JobStopped, Reason: reasonDeletedElsewhere, StartedAt: at(2).Time, FinishedAt: at(4).Time},
		},
		{
			"pod of an earlier job ignored", jobFixture("sj"),
			[]corev1.Pod{func() corev1.Pod {
				pod := podFixture("sj", "sj-old", corev1.PodFailed, terminated("Error", 1))
				pod.OwnerReferences[0].UID = "uid-earlier"
				pod.CreationTimestamp = at(9)
				return pod
			}()},
			engine.JobStatus{State: engine.JobPending},
		},
		{
			"newest pod counts", jobFixture("sj"),
			[]corev1.Pod{
				func() corev1.Pod {
					pod := podFixture("sj", "sj-b", corev1.PodRunning, running(4))
					pod.CreationTimestamp = at(3)
					return pod
				}(),
				podFixture("sj", "sj-a", corev1.PodFailed, terminated("Error", 1)),
			},
			engine.JobStatus{State: engine.JobRunning, StartedAt: at(4).Time},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			want.Name, want.Labels = "sj", labels
			got := jobStatus(tt.job, tt.pods)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobStatusLabelsWithoutAnnotation(t *testing.T) {
	t.Parallel()
	job := jobFixture("sj")
	delete(job.Annotations, annotationLabels)
	got := jobStatus(job, nil).Labels
	if diff := cmp.Diff(job.Labels, got); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
}
