package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

func fakeNode(id, dc, status string, cpu, memoryMB int64) *api.NodeListStub {
	return &api.NodeListStub{
		ID: id, Datacenter: dc, Status: status, SchedulingEligibility: "eligible",
		NodeResources:     &api.NodeResources{Cpu: api.NodeCpuResources{CpuShares: cpu}, Memory: api.NodeMemoryResources{MemoryMB: memoryMB}},
		ReservedResources: &api.NodeReservedResources{Cpu: api.NodeReservedCpuResources{CpuShares: 400}, Memory: api.NodeReservedMemoryResources{MemoryMB: 512}},
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	a.nodes = []*api.NodeListStub{
		fakeNode("node-1", "dc1", "ready", 8400, 16896),
		fakeNode("node-2", "dc2", "ready", 8400, 16896), // another datacenter
		fakeNode("node-3", "dc1", "down", 8400, 16896),  // not ready
	}
	e := newTestEngine(t, a, map[string]any{"mhz_per_core": 2000})
	spec := sampleSpec("sj-1-p")
	createJob(t, e, spec)                                 // running: 1024 MHz, 1536 MiB
	createJob(t, e, shellSpec("job-done", "exit 0", nil)) // finished: not counted

	got, err := e.Capacity(t.Context(), &engine.CapacityRequest{})
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}

	want := &engine.CapacityResponse{
		Nodes:                  1,
		AllocatableCPUMillis:   (8400 - 400) * 1000 / 2000,
		AllocatableMemoryBytes: (16896 - 512) << 20,
		RequestedCPUMillis:     1024 * 1000 / 2000,
		RequestedMemoryBytes:   1536 << 20,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("capacity mismatch (-want +got):\n%s", diff)
	}
	if calls := a.callLog(); !containsCall(calls, "GET /v1/nodes") || !containsCall(calls, "GET /v1/allocations") {
		t.Errorf("calls = %v, want the node and allocation lists", calls)
	}
}

func containsCall(calls []string, call string) bool {
	for _, c := range calls {
		if c == call {
			return true
		}
	}
	return false
}
