package main

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
)

func TestContainerStatus(t *testing.T) {
	t.Parallel()
	const (
		started  = "2025-03-01T10:00:00.5Z"
		finished = "2025-03-01T10:05:00Z"
		unset    = "0001-01-01T00:00:00Z"
	)
	startedAt := time.Date(2025, 3, 1, 10, 0, 0, 500_000_000, time.UTC)
	finishedAt := time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
	cases := []struct {
		name  string
		state container.State
		rec   stopRecord
		want  engine.JobStatus
	}{
		{
			name:  "created",
			state: container.State{Status: "created", StartedAt: unset, FinishedAt: unset},
			want:  engine.JobStatus{State: engine.JobPending},
		},
		{
			name:  "created with start error",
			state: container.State{Status: "created", ExitCode: 127, Error: "exec: not found", StartedAt: unset, FinishedAt: finished},
			want:  engine.JobStatus{State: engine.JobFailed, Reason: "failed to start: exec: not found", ExitCode: 127, FinishedAt: finishedAt},
		},
		{
			name:  "running",
			state: container.State{Status: "running", Running: true, StartedAt: started, FinishedAt: unset},
			want:  engine.JobStatus{State: engine.JobRunning, StartedAt: startedAt},
		},
		{
			name:  "paused",
			state: container.State{Status: "paused", Paused: true, StartedAt: started, FinishedAt: unset},
			want:  engine.JobStatus{State: engine.JobRunning, StartedAt: startedAt},
		},
		{
			name:  "exited 0",
			state: container.State{Status: "exited", StartedAt: started, FinishedAt: finished},
			want:  engine.JobStatus{State: engine.JobSucceeded, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "exited 3",
			state: container.State{Status: "exited", ExitCode: 3, StartedAt: started, FinishedAt: finished},
			want:  engine.JobStatus{State: engine.JobFailed, Reason: "exited with code 3", ExitCode: 3, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "out of memory",
			state: container.State{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: started, FinishedAt: finished},
			want:  engine.JobStatus{State: engine.JobFailed, Reason: reasonOOM, ExitCode: 137, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "dead",
			state: container.State{Status: "dead", Dead: true, ExitCode: 1, Error: "device busy", StartedAt: started, FinishedAt: finished},
			want:  engine.JobStatus{State: engine.JobFailed, Reason: "the container is dead: device busy", ExitCode: 1, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "stopped",
			state: container.State{Status: "exited", ExitCode: 143, StartedAt: started, FinishedAt: finished},
			rec:   stopByRequest,
			want:  engine.JobStatus{State: engine.JobStopped, Reason: reasonStopped, ExitCode: 143, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "stopped at its maximum runtime",
			state: container.State{Status: "exited", ExitCode: 143, StartedAt: started, FinishedAt: finished},
			rec:   "ran longer than its maximum runtime of 1h0m0s",
			want:  engine.JobStatus{State: engine.JobFailed, Reason: "ran longer than its maximum runtime of 1h0m0s", ExitCode: 143, StartedAt: startedAt, FinishedAt: finishedAt},
		},
		{
			name:  "stopping",
			state: container.State{Status: "running", Running: true, StartedAt: started, FinishedAt: unset},
			rec:   stopByRequest,
			want:  engine.JobStatus{State: engine.JobRunning, StartedAt: startedAt},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			labels := map[string]string{labelJobName: "sj-1-p", labelJobLabels: `{"estela/job":"1"}`, "team": "data"}
			state := c.state
			inspected := container.InspectResponse{
				ContainerJSONBase: &container.ContainerJSONBase{ID: "abc", Name: "/sj-1-p", Created: started, State: &state},
				Config:            &container.Config{Labels: labels},
			}
			want := c.want
			want.Name, want.Labels = "sj-1-p", map[string]string{"estela/job": "1"}
			got := applyStopMarker(containerStatus(inspected), c.rec)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobLabelsWithoutJSONLabel(t *testing.T) {
	t.Parallel()
	got := jobLabels(map[string]string{labelJobName: "x", "estela/job": "1", "name": "x"})
	want := map[string]string{"estela/job": "1", "name": "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
}
