package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

func TestJobStatus(t *testing.T) {
	t.Parallel()
	started := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	finished := time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
	alloc := func(client, desired string, events ...*api.TaskEvent) *api.AllocationListStub {
		return &api.AllocationListStub{
			ID: "a1", JobID: "sj-1-p", ClientStatus: client, DesiredStatus: desired, CreateIndex: 20,
			TaskStates: map[string]*api.TaskState{taskName: {StartedAt: started, FinishedAt: finished, Events: events}},
		}
	}
	terminated := func(code int, details map[string]string) *api.TaskEvent {
		return &api.TaskEvent{Type: api.TaskTerminated, ExitCode: code, Details: details}
	}
	notRestarting := &api.TaskEvent{Type: api.TaskNotRestarting}
	cases := []struct {
		name   string
		status string
		stop   bool
		allocs []*api.AllocationListStub
		want   engine.JobStatus
	}{
		{name: "no allocation yet", status: "pending", want: engine.JobStatus{State: engine.JobPending}},
		{name: "dead without allocation", status: "dead", want: engine.JobStatus{State: engine.JobFailed, Reason: reasonNoAlloc}},
		{
			name: "pending", status: "pending", allocs: []*api.AllocationListStub{alloc("pending", "run")},
			want: engine.JobStatus{State: engine.JobPending, StartedAt: started},
		},
		{
			name: "running", status: "running", allocs: []*api.AllocationListStub{alloc("running", "run")},
			want: engine.JobStatus{State: engine.JobRunning, StartedAt: started},
		},
		{
			name: "complete", status: "dead", allocs: []*api.AllocationListStub{alloc("complete", "run", terminated(0, nil))},
			want: engine.JobStatus{State: engine.JobSucceeded, StartedAt: started, FinishedAt: finished},
		},
		{
			name: "exit code", status: "dead", allocs: []*api.AllocationListStub{alloc("failed", "run", terminated(3, nil), notRestarting)},
			want: engine.JobStatus{State: engine.JobFailed, Reason: "exited with code 3", ExitCode: 3, StartedAt: started, FinishedAt: finished},
		},
		{
			name: "out of memory", status: "dead",
			allocs: []*api.AllocationListStub{alloc("failed", "run", terminated(137, map[string]string{"oom_killed": "true"}), notRestarting)},
			want:   engine.JobStatus{State: engine.JobFailed, Reason: reasonOOM, ExitCode: 137, StartedAt: started, FinishedAt: finished},
		},
		{
			name: "image pull failure", status: "dead",
			allocs: []*api.AllocationListStub{alloc("failed", "run", &api.TaskEvent{Type: api.TaskDriverFailure, DriverError: "Failed to pull `x:1`: manifest unknown"}, notRestarting)},
			want:   engine.JobStatus{State: engine.JobFailed, Reason: "cannot pull the image: Failed to pull `x:1`: manifest unknown", StartedAt: started, FinishedAt: finished},
		},
		{
			name: "driver failure", status: "dead",
			allocs: []*api.AllocationListStub{alloc("failed", "run", &api.TaskEvent{Type: api.TaskDriverFailure, DriverError: "invalid cap_drop"})},
			want:   engine.JobStatus{State: engine.JobFailed, Reason: "the docker driver failed: invalid cap_drop", StartedAt: started, FinishedAt: finished},
		},
		{
			name: "lost", status: "dead", allocs: []*api.AllocationListStub{alloc("lost", "run")},
			want: engine.JobStatus{State: engine.JobFailed, Reason: reasonLost, StartedAt: started, FinishedAt: finished},
		},
		{
			name: "stopping", status: "running", stop: true, allocs: []*api.AllocationListStub{alloc("running", "stop")},
			want: engine.JobStatus{State: engine.JobRunning, Reason: reasonStopping, StartedAt: started},
		},
		{
			name: "stopped", status: "dead", stop: true, allocs: []*api.AllocationListStub{alloc("complete", "stop", terminated(143, nil))},
			want: engine.JobStatus{State: engine.JobStopped, Reason: reasonStopped, ExitCode: 143, StartedAt: started, FinishedAt: finished},
		},
		{
			name: "allocation of an earlier job", status: "pending",
			allocs: []*api.AllocationListStub{{ID: "old", ClientStatus: "failed", CreateIndex: 5}},
			want:   engine.JobStatus{State: engine.JobPending},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			view := jobView{ID: "sj-1-p", Status: c.status, Stop: c.stop, CreateIndex: 10, Allocs: c.allocs,
				Meta: map[string]string{metaLabels: `{"estela/job":"1"}`}}
			want := c.want
			want.Name, want.Labels = "sj-1-p", map[string]string{"estela/job": "1"}
			if diff := cmp.Diff(want, jobStatus(view)); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLatestAllocation(t *testing.T) {
	t.Parallel()
	allocs := []*api.AllocationListStub{{ID: "old", CreateIndex: 5}, {ID: "b", CreateIndex: 30}, {ID: "a", CreateIndex: 20}}

	got := latestAlloc(allocs, 10)

	if got == nil || got.ID != "b" {
		t.Errorf("latestAlloc = %+v, want b", got)
	}
}
