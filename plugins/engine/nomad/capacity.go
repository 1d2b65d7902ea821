package main

import (
	"context"
	"slices"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Capacity sums, over the ready and eligible nodes of the configured
// datacenters, what Nomad can allocate (node resources minus the node's
// reserved resources) and what the live allocations of every namespace on
// those nodes hold. CPU converts from MHz to millis with mhz_per_core. It
// makes two calls: the nodes with their resources, and the allocations of
// every namespace with theirs.
func (e *nomadEngine) Capacity(ctx context.Context, _ *engine.CapacityRequest) (*engine.CapacityResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	q := queryOptions(ctx)
	q.Params = map[string]string{"resources": "true"}
	nodes, _, err := client.Nodes().List(q)
	if err != nil {
		return nil, nomadError(err, "list nodes")
	}
	resp := &engine.CapacityResponse{}
	counted := map[string]bool{}
	for _, node := range nodes {
		if !schedulable(node, s.Datacenters) || node.NodeResources == nil {
			continue
		}
		counted[node.ID] = true
		resp.Nodes++
		cpu, memoryMB := node.NodeResources.Cpu.CpuShares, node.NodeResources.Memory.MemoryMB
		if r := node.ReservedResources; r != nil {
			cpu -= int64(r.Cpu.CpuShares)
			memoryMB -= int64(r.Memory.MemoryMB)
		}
		resp.AllocatableCPUMillis += s.millis(max(cpu, 0))
		resp.AllocatableMemoryBytes += max(memoryMB, 0) * mib
	}
	if err := addRequested(ctx, client, s, counted, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// schedulable reports whether Nomad may place new jobs of the plugin on node.
func schedulable(node *api.NodeListStub, datacenters []string) bool {
	if node.Status != "ready" || node.SchedulingEligibility != "eligible" || node.Drain {
		return false
	}
	return slices.Contains(datacenters, "*") || slices.Contains(datacenters, node.Datacenter)
}

// addRequested adds the resources of the live allocations on the counted nodes.
func addRequested(ctx context.Context, client *api.Client, s *settings, counted map[string]bool, resp *engine.CapacityResponse) error {
	q := queryOptions(ctx)
	q.Namespace = "*"
	q.Params = map[string]string{"resources": "true", "task_states": "false"}
	allocs, _, err := client.Allocations().List(q)
	if err != nil {
		return nomadError(err, "list allocations")
	}
	for _, a := range allocs {
		live := a.ClientStatus == allocPending || a.ClientStatus == allocRunning
		if !live || !counted[a.NodeID] || a.AllocatedResources == nil {
			continue
		}
		for _, task := range a.AllocatedResources.Tasks {
			resp.RequestedCPUMillis += s.millis(task.Cpu.CpuShares)
			resp.RequestedMemoryBytes += task.Memory.MemoryMB * mib
		}
	}
	return nil
}

// millis converts MHz to CPU millis with the configured clock per core.
func (s *settings) millis(mhz int64) int64 {
	return mhz * 1000 / int64(s.MHzPerCore)
}
