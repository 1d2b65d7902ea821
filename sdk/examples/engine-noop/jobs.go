package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// job is one job of the engine. Its status's Labels map is never changed
// after creation, so statuses returned by value may share it.
type job struct {
	status    engine.JobStatus
	resources engine.Resources
	// timer ends the job; nil when the job runs until stopped or is final.
	timer *time.Timer
}

// outcome is the final state, exit code and reason of a job.
type outcome struct {
	state    engine.JobState
	exitCode int32
	reason   string
}

// plan is the run that a job's command requests: its outcome after duration,
// or no end at all when forever is set.
type plan struct {
	duration time.Duration
	forever  bool
	end      outcome
}

func exited(code int32) outcome {
	state := engine.JobSucceeded
	if code != 0 {
		state = engine.JobFailed
	}
	return outcome{state: state, exitCode: code, reason: fmt.Sprintf("exited with code %d", code)}
}

// parsePlan reads the noop-exit and noop-sleep commands described in the
// package documentation. Any other command succeeds after jobDuration.
func parsePlan(command []string, jobDuration time.Duration) (plan, error) {
	p := plan{duration: jobDuration, end: exited(0)}
	if len(command) == 0 {
		return p, nil
	}
	args := command[1:]
	var err error
	switch command[0] {
	case "noop-exit":
		if len(args) == 0 || len(args) > 2 {
			return p, errdefs.Invalid("command noop-exit needs CODE [DURATION], got %q", args)
		}
		code, convErr := strconv.ParseInt(args[0], 10, 32)
		if convErr != nil {
			return p, errdefs.Invalid("command noop-exit: invalid exit code %q", args[0])
		}
		p.end = exited(int32(code))
		if len(args) == 2 {
			p.duration, err = parseDurationArg("noop-exit", args[1])
		}
	case "noop-sleep":
		switch len(args) {
		case 0:
			p.forever = true
		case 1:
			p.duration, err = parseDurationArg("noop-sleep", args[0])
		default:
			return p, errdefs.Invalid("command noop-sleep needs at most one DURATION, got %q", args)
		}
	}
	return p, err
}

func parseDurationArg(command, arg string) (time.Duration, error) {
	d, err := time.ParseDuration(arg)
	if err != nil || d < 0 {
		return 0, errdefs.Invalid("command %s: invalid duration %q, want a Go duration such as \"1.5s\"", command, arg)
	}
	return d, nil
}

// CreateJob starts the job's timer, or ends the job at once when its
// duration is zero. It is idempotent on the job name.
func (e *noopEngine) CreateJob(_ context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	spec := req.Spec
	if spec.Name == "" {
		return nil, errdefs.Invalid("job name is missing")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if j, ok := e.jobs[spec.Name]; ok {
		return &engine.CreateJobResponse{Job: j.status}, nil
	}
	p, err := parsePlan(spec.Command, e.settings.JobDuration)
	if err != nil {
		return nil, err
	}
	if spec.MaxRuntime > 0 && (p.forever || spec.MaxRuntime < p.duration) {
		p = plan{duration: spec.MaxRuntime, end: outcome{
			state: engine.JobFailed, reason: fmt.Sprintf("max runtime %s exceeded", spec.MaxRuntime),
		}}
	}

	now := time.Now()
	j := &job{
		status: engine.JobStatus{
			Name:      spec.Name,
			State:     engine.JobRunning,
			Labels:    maps.Clone(spec.Labels),
			StartedAt: now,
		},
		resources: spec.Resources,
	}
	e.jobs[spec.Name] = j
	e.addRequested(j.resources, 1)
	switch {
	case p.forever:
		e.notifyLocked(j.status, false)
	case p.duration == 0:
		e.finishLocked(j, p.end, now)
	default:
		e.notifyLocked(j.status, false)
		j.timer = time.AfterFunc(p.duration, func() { e.timerFired(j, p.end) })
	}
	return &engine.CreateJobResponse{Job: j.status, Created: true}, nil
}

// timerFired ends j unless it was stopped or deleted since its timer started.
func (e *noopEngine) timerFired(j *job, end outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j.status.State.Final() || e.jobs[j.status.Name] != j {
		return
	}
	e.finishLocked(j, end, time.Now())
}

// finishLocked puts the running job j in its final state. e.mu must be held.
func (e *noopEngine) finishLocked(j *job, end outcome, now time.Time) {
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.status.State = end.state
	j.status.ExitCode = end.exitCode
	j.status.Reason = end.reason
	j.status.FinishedAt = now
	e.addRequested(j.resources, -1)
	e.notifyLocked(j.status, false)
}

// addRequested adds (sign 1) or removes (sign -1) a running job's resources
// from the sum that Capacity reports. e.mu must be held.
func (e *noopEngine) addRequested(r engine.Resources, sign int64) {
	e.requested.CPURequestMillis += sign * r.CPURequestMillis
	e.requested.MemoryRequestBytes += sign * r.MemoryRequestBytes
}

func (e *noopEngine) GetJob(_ context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.Name]
	if !ok {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	return &engine.GetJobResponse{Job: j.status}, nil
}

// ListJobs copies the matching statuses under the lock: one pass over the
// jobs, with no allocation per job beyond the returned slice.
func (e *noopEngine) ListJobs(_ context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	capacity := len(e.jobs)
	if len(req.Labels) > 0 {
		capacity = 0
	}
	jobs := make([]engine.JobStatus, 0, capacity)
	for _, j := range e.jobs {
		if containsLabels(j.status.Labels, req.Labels) {
			jobs = append(jobs, j.status)
		}
	}
	return &engine.ListJobsResponse{Jobs: jobs}, nil
}

// StopJob ends a running job at once as STOPPED: there is no process to
// wait for, so the grace period does not matter.
func (e *noopEngine) StopJob(_ context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.Name]
	if !ok {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	if !j.status.State.Final() {
		e.finishLocked(j, outcome{state: engine.JobStopped, reason: "stopped by request"}, time.Now())
	}
	return &engine.StopJobResponse{Job: j.status}, nil
}

func (e *noopEngine) DeleteJob(_ context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.Name]
	if !ok {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	if !j.status.State.Final() {
		e.finishLocked(j, outcome{state: engine.JobStopped, reason: "deleted while running"}, time.Now())
	}
	delete(e.jobs, req.Name)
	e.notifyLocked(j.status, true)
	return &engine.DeleteJobResponse{}, nil
}

// containsLabels reports whether labels contains every pair of selector.
func containsLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
