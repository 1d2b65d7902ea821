package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/estela-go/estela-go/sdk/engine"
)

func nodeFixture(name, role string, ready bool, allocatable corev1.ResourceList) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"role": role}},
		Status: corev1.NodeStatus{
			Allocatable: allocatable,
			Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
		},
	}
}

// requestingPod returns a pod with one container per request.
func requestingPod(namespace, name, node string, phase corev1.PodPhase, requests ...corev1.ResourceList) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, r := range requests {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: r}})
	}
	return pod
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	cordoned := nodeFixture("spider-c", "spider", true, resourceListOf("4", "16Gi"))
	cordoned.Spec.Unschedulable = true
	withInit := requestingPod("default", "init", "spider-a", corev1.PodPending, resourceListOf("100m", "100Mi"))
	withInit.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: resourceListOf("1", "1Gi")}}}
	ours := requestingPod("default", "sj-9-7-x", "", corev1.PodPending, resourceListOf("512m", "1152Mi"))
	ours.Labels = map[string]string{labelManagedBy: managedBy}
	objects := []runtime.Object{
		nodeFixture("spider-a", "spider", true, resourceListOf("4", "16Gi")),
		nodeFixture("spider-b", "spider", true, resourceListOf("2", "8Gi")),
		nodeFixture("spider-down", "spider", false, resourceListOf("8", "32Gi")),
		cordoned,
		nodeFixture("system", "system", true, resourceListOf("8", "32Gi")),
		// Counted: live pods on usable nodes in any namespace, and the plugin's unscheduled pods.
		requestingPod("default", "running", "spider-a", corev1.PodRunning, resourceListOf("500m", "1Gi"), resourceListOf("250m", "512Mi")),
		requestingPod("kube-system", "daemon", "spider-b", corev1.PodRunning, resourceListOf("100m", "128Mi")),
		withInit,
		ours,
		// Not counted: finished pods, pods of other nodes, other unscheduled pods.
		requestingPod("default", "done", "spider-a", corev1.PodSucceeded, resourceListOf("4", "8Gi")),
		requestingPod("default", "failed", "spider-b", corev1.PodFailed, resourceListOf("4", "8Gi")),
		requestingPod("default", "elsewhere", "system", corev1.PodRunning, resourceListOf("4", "8Gi")),
		requestingPod("default", "down", "spider-down", corev1.PodRunning, resourceListOf("4", "8Gi")),
		requestingPod("other", "waiting", "", corev1.PodPending, resourceListOf("4", "8Gi")),
	}

	e, client := newTestEngine(t, map[string]any{"node_selector": map[string]string{"role": "spider"}}, objects...)
	got, err := e.Capacity(t.Context(), &engine.CapacityRequest{})
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}

	want := &engine.CapacityResponse{
		Nodes:                  2,
		AllocatableCPUMillis:   6000,
		AllocatableMemoryBytes: 24 << 30,
		// 500m+250m, 100m, max(100m, 1 init), 512m
		RequestedCPUMillis: 750 + 100 + 1000 + 512,
		// 1Gi+512Mi, 128Mi, max(100Mi, 1Gi init), 1152Mi
		RequestedMemoryBytes: (1024 + 512 + 128 + 1024 + 1152) << 20,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("capacity mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"list nodes", "list pods"}, actionsOf(client)); diff != "" {
		t.Errorf("API calls mismatch (-want +got):\n%s", diff)
	}
}
