package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Reasons of the job states, as JobStatus.Reason.
const (
	reasonStopped  = "stopped by request"
	reasonStopping = "stopping"
	reasonOOM      = "killed because it used more memory than its limit (out of memory)"
	reasonLost     = "the node running it was lost"
	reasonNoAlloc  = "the job ended without an allocation"
)

// Allocation client statuses, as Nomad reports them.
const (
	allocPending  = "pending"
	allocRunning  = "running"
	allocComplete = "complete"
	allocFailed   = "failed"
	allocLost     = "lost"
	allocUnknown  = "unknown"
)

// jobView is the input of jobStatus: a job and its allocations.
type jobView struct {
	ID          string
	Status      string // the job's status: pending, running or dead
	Stop        bool   // true once the job was stopped (deregistered without purge)
	Meta        map[string]string
	CreateIndex uint64
	Allocs      []*api.AllocationListStub
}

func viewOfJob(job *api.Job, allocs []*api.AllocationListStub) jobView {
	return jobView{
		ID: deref(job.ID), Status: deref(job.Status), Stop: deref(job.Stop), Meta: job.Meta,
		CreateIndex: deref(job.CreateIndex), Allocs: allocs,
	}
}

func viewOfStub(stub *api.JobListStub, allocs []*api.AllocationListStub) jobView {
	return jobView{ID: stub.ID, Status: stub.Status, Stop: stub.Stop, Meta: stub.Meta, CreateIndex: stub.CreateIndex, Allocs: allocs}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// jobStatus maps a job and its latest allocation to a job status. The task
// events of the allocation give the reasons of failures.
func jobStatus(v jobView) engine.JobStatus {
	labels, _ := jobLabels(v.Meta)
	st := engine.JobStatus{Name: v.ID, Labels: labels}
	alloc := latestAlloc(v.Allocs, v.CreateIndex)
	task := taskState(alloc)
	if task != nil {
		st.StartedAt = nonZero(task.StartedAt)
	}
	switch {
	case v.Stop && alloc != nil && alloc.ClientStatus == allocRunning:
		st.State, st.Reason = engine.JobRunning, reasonStopping
	case v.Stop:
		st.State, st.Reason = engine.JobStopped, reasonStopped
		st.ExitCode, st.FinishedAt = terminatedCode(task), finishedAt(alloc, task)
	case alloc == nil && v.Status == "dead":
		st.State, st.Reason = engine.JobFailed, reasonNoAlloc
	case alloc == nil:
		st.State = engine.JobPending
	default:
		allocStatus(&st, alloc, task)
	}
	return st
}

func allocStatus(st *engine.JobStatus, alloc *api.AllocationListStub, task *api.TaskState) {
	switch alloc.ClientStatus {
	case allocPending:
		st.State = engine.JobPending
	case allocRunning:
		st.State = engine.JobRunning
	case allocUnknown:
		st.State, st.Reason = engine.JobRunning, "the node running it is disconnected, so its state is unknown"
	case allocComplete:
		st.State, st.FinishedAt = engine.JobSucceeded, finishedAt(alloc, task)
		if alloc.DesiredStatus != "run" {
			st.State, st.Reason = engine.JobStopped, "the allocation was stopped: "+alloc.DesiredDescription
		}
	case allocFailed:
		st.State, st.FinishedAt = engine.JobFailed, finishedAt(alloc, task)
		st.Reason, st.ExitCode = failure(task)
	case allocLost:
		st.State, st.Reason, st.FinishedAt = engine.JobFailed, reasonLost, finishedAt(alloc, task)
	default:
		st.State, st.Reason = engine.JobPending, fmt.Sprintf("unknown allocation status %q", alloc.ClientStatus)
	}
}

// latestAlloc returns the newest allocation of the job registration that
// created at createIndex. Allocations of an earlier job with the same ID,
// which a namespace-wide list also returns, are older than it.
func latestAlloc(allocs []*api.AllocationListStub, createIndex uint64) *api.AllocationListStub {
	var latest *api.AllocationListStub
	for _, a := range allocs {
		if a.CreateIndex < createIndex {
			continue
		}
		if latest == nil || a.CreateIndex > latest.CreateIndex {
			latest = a
		}
	}
	return latest
}

func taskState(alloc *api.AllocationListStub) *api.TaskState {
	if alloc == nil {
		return nil
	}
	return alloc.TaskStates[taskName]
}

// failure returns the reason and exit code of a failed task from its
// latest event that explains a failure.
func failure(task *api.TaskState) (string, int32) {
	if task == nil {
		return "the allocation failed", 0
	}
	for i := len(task.Events) - 1; i >= 0; i-- {
		e := task.Events[i]
		switch e.Type {
		case api.TaskTerminated:
			return terminatedReason(e), int32(e.ExitCode)
		case api.TaskDriverFailure:
			return driverFailure(e), 0
		case api.TaskSetupFailure:
			return "task setup failed: " + firstNonEmpty(e.SetupError, e.DisplayMessage), 0
		case api.TaskFailedValidation:
			return "the task is invalid: " + firstNonEmpty(e.ValidationError, e.DisplayMessage), 0
		case api.TaskArtifactDownloadFailed:
			return "artifact download failed: " + firstNonEmpty(e.DownloadError, e.DisplayMessage), 0
		case api.TaskKilled:
			return "killed: " + firstNonEmpty(e.KillError, e.KillReason, e.DisplayMessage, "no reason given"), 0
		}
	}
	return "the task failed", 0
}

func terminatedReason(e *api.TaskEvent) string {
	switch {
	case e.Details["oom_killed"] == "true":
		return reasonOOM
	case e.Signal != 0:
		return fmt.Sprintf("killed by signal %d", e.Signal)
	}
	return fmt.Sprintf("exited with code %d", e.ExitCode)
}

// driverFailure words a docker driver failure; a failed image pull gets its
// own sentence because it is the common one.
func driverFailure(e *api.TaskEvent) string {
	msg := firstNonEmpty(e.DriverError, e.DisplayMessage, "no details given")
	if strings.Contains(strings.ToLower(msg), "pull") {
		return "cannot pull the image: " + msg
	}
	return "the docker driver failed: " + msg
}

func terminatedCode(task *api.TaskState) int32 {
	if task == nil {
		return 0
	}
	for i := len(task.Events) - 1; i >= 0; i-- {
		if task.Events[i].Type == api.TaskTerminated {
			return int32(task.Events[i].ExitCode)
		}
	}
	return 0
}

func finishedAt(alloc *api.AllocationListStub, task *api.TaskState) time.Time {
	if task != nil && !task.FinishedAt.IsZero() {
		return task.FinishedAt.UTC()
	}
	if alloc != nil && alloc.ModifyTime != 0 {
		return time.Unix(0, alloc.ModifyTime).UTC()
	}
	return time.Now().UTC()
}

func nonZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
