package main

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Capacity sums the allocatable CPU and memory of the Ready, schedulable
// nodes that match node_selector, and the requests of the pods that use
// them: the running and pending pods bound to those nodes in every
// namespace, plus the plugin's own pods that wait for a node. Pod requests
// are computed as the scheduler does, init containers and pod overhead
// included.
func (e *kubeEngine) Capacity(ctx context.Context, _ *engine.CapacityRequest) (*engine.CapacityResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(s.NodeSelector).String()})
	if err != nil {
		return nil, apiError(err, "list nodes")
	}

	resp := &engine.CapacityResponse{}
	usable := map[string]bool{}
	for i := range nodes.Items {
		node := &nodes.Items[i]
		if !nodeUsable(node) {
			continue
		}
		usable[node.Name] = true
		resp.Nodes++
		resp.AllocatableCPUMillis += node.Status.Allocatable.Cpu().MilliValue()
		resp.AllocatableMemoryBytes += node.Status.Allocatable.Memory().Value()
	}

	// NOTE: this lists every live pod of the cluster in one call, as
	// estela's dispatcher did. On clusters with many thousands of pods, a
	// pod informer would be cheaper.
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Succeeded,status.phase!=Failed"})
	if err != nil {
		return nil, apiError(err, "list pods")
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !usesNodes(pod, usable, s.Namespace) {
			continue
		}
		requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
		resp.RequestedCPUMillis += requests.Cpu().MilliValue()
		resp.RequestedMemoryBytes += requests.Memory().Value()
	}
	return resp, nil
}

// nodeUsable reports whether new pods can run on node.
func nodeUsable(node *corev1.Node) bool {
	if node.Spec.Unschedulable {
		return false
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// usesNodes reports whether pod takes room on the usable nodes. The phase
// check repeats the field selector, which fake clientsets ignore.
func usesNodes(pod *corev1.Pod, usable map[string]bool, namespace string) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Spec.NodeName != "" {
		return usable[pod.Spec.NodeName]
	}
	return pod.Namespace == namespace && pod.Labels[labelManagedBy] == managedBy
}
