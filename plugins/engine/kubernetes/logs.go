package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// containerStartPoll is how often JobLogs with Follow checks whether the
// next container has started.
const containerStartPoll = time.Second

// JobLogs writes the output of the newest pod of the job. A spider job's
// pod has one container, written as is. A build pod's containers are
// written in the order they run, each after a "=== name ===" line, and
// TailLines applies to each. Without Follow, containers that have not
// started are left out; with Follow, JobLogs waits for each to start.
func (e *kubeEngine) JobLogs(ctx context.Context, req *engine.JobLogsRequest, w io.Writer) error {
	s, client, err := e.current()
	if err != nil {
		return err
	}
	job, pods, err := e.readJob(ctx, s, client, req.Name)
	if err != nil {
		return err
	}
	pod := newestPod(job, pods)
	if pod == nil {
		if req.Follow {
			return errdefs.Unavailable("job %s has no pod yet; retry once it runs", req.Name)
		}
		return nil
	}
	logs := &podLogs{client: client, namespace: s.Namespace, pod: pod, request: req, w: w}
	if len(pod.Spec.InitContainers) == 0 {
		return logs.write(ctx, pod.Spec.Containers[0].Name)
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if !req.Follow && !started(pod, c.Name) {
			continue
		}
		if _, err := fmt.Fprintf(w, "=== %s ===\n", c.Name); err != nil {
			return err
		}
		if err := logs.write(ctx, c.Name); err != nil {
			return err
		}
	}
	return nil
}

// podLogs writes the logs of one pod's containers.
type podLogs struct {
	client    kubernetes.Interface
	namespace string
	pod       *corev1.Pod
	request   *engine.JobLogsRequest
	w         io.Writer
}

func (l *podLogs) write(ctx context.Context, container string) error {
	if l.request.Follow {
		if err := l.waitStarted(ctx, container); err != nil {
			return err
		}
	} else if !started(l.pod, container) {
		return nil
	}
	options := &corev1.PodLogOptions{Container: container, Follow: l.request.Follow}
	if l.request.TailLines > 0 {
		options.TailLines = &l.request.TailLines
	}
	stream, err := l.client.CoreV1().Pods(l.namespace).GetLogs(l.pod.Name, options).Stream(ctx)
	if apierrors.IsBadRequest(err) {
		// The API server returns 400 for a container that is not running yet.
		return errdefs.Unavailable("logs of job %s: container %s: %s", l.request.Name, container, err)
	}
	if err != nil {
		return apiError(err, fmt.Sprintf("logs of job %s container %s", l.request.Name, container))
	}
	defer stream.Close()
	if _, err := io.Copy(l.w, stream); err != nil {
		return fmt.Errorf("copy logs of job %s: %w", l.request.Name, err)
	}
	return nil
}

// waitStarted polls the pod until container has started or the pod has
// ended, which are the states that have logs to read.
func (l *podLogs) waitStarted(ctx context.Context, container string) error {
	ticker := time.NewTicker(containerStartPoll)
	defer ticker.Stop()
	for !started(l.pod, container) && !podEnded(l.pod) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		pod, err := l.client.CoreV1().Pods(l.namespace).Get(ctx, l.pod.Name, metav1.GetOptions{})
		if err != nil {
			return apiError(err, "pod of job "+l.request.Name)
		}
		l.pod = pod
	}
	return nil
}

// started reports whether the container has run, so that it has logs.
func started(pod *corev1.Pod, container string) bool {
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if cs.Name == container {
				return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil
			}
		}
	}
	return false
}

func podEnded(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
