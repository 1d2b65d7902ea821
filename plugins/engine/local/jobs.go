package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// jobNamePattern keeps job names safe as file names.
var jobNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$`)

// CreateJob starts the job's process, or returns the existing job with the
// same name. With max_running_jobs reached it starts nothing and returns an
// error wrapping errdefs.ErrAtCapacity, so the host keeps the job queued.
func (e *localEngine) CreateJob(_ context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	spec := req.Spec
	if !jobNamePattern.MatchString(spec.Name) {
		return nil, errdefs.Invalid("invalid job name %q: use up to 200 letters, digits, '.', '_' and '-', starting with a letter or digit", spec.Name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, errdefs.Unavailable("local engine is not configured: the host must call Configure first")
	}
	if existing, ok := e.jobs[spec.Name]; ok {
		return &engine.CreateJobResponse{Job: existing.status(), Created: false}, nil
	}
	if limit := e.settings.MaxRunningJobs; limit > 0 {
		running := 0
		for _, j := range e.jobs {
			if !j.finished() {
				running++
			}
		}
		if running >= limit {
			return nil, errdefs.AtCapacity("max_running_jobs (%d) reached: the job waits until a running job ends", limit)
		}
	}
	j, err := e.startJob(e.settings, spec)
	if err != nil {
		return nil, fmt.Errorf("start job %s: %w", spec.Name, err)
	}
	e.jobs[spec.Name] = j
	go e.watch(j, e.settings.StopGrace)
	return &engine.CreateJobResponse{Job: j.status(), Created: true}, nil
}

// startJob starts the process in its own process group, with output
// appended to the job's log file, and records it. It sets no parent-death
// signal, so jobs outlive a crash of the plugin.
func (e *localEngine) startJob(s *settings, spec engine.JobSpec) (*job, error) {
	cmd, err := jobCommand(s, spec)
	if err != nil {
		return nil, err
	}
	recordPath, logPath := jobPaths(s, spec.Name)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, errdefs.Invalid("cannot start %q: %v", spec.Command[0], err)
	}
	proc := &childProcess{cmd: cmd}
	_, ticks, err := readProcStat(cmd.Process.Pid)
	rec := newRecord(spec, cmd.Process.Pid, ticks)
	if err == nil {
		err = writeRecord(recordPath, rec)
	}
	if err != nil {
		// A job without a record would be lost by a restart.
		_ = proc.signal(syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("record job: %w", err)
	}
	e.logger.Info("job started", "job", spec.Name, "pid", cmd.Process.Pid)
	return newJob(rec, recordPath, logPath, proc), nil
}

func newRecord(spec engine.JobSpec, pid int, ticks uint64) jobRecord {
	return jobRecord{
		Name:              spec.Name,
		Labels:            spec.Labels,
		PID:               pid,
		ProcessStartTicks: ticks,
		State:             engine.JobRunning,
		StartedAt:         time.Now().UTC(),
		MaxRuntime:        spec.MaxRuntime,
	}
}

// jobCommand builds the job's command: a name of a script in
// job_side_dir/bin runs that script with the configured Python, and any
// other command runs as is.
func jobCommand(s *settings, spec engine.JobSpec) (*exec.Cmd, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errdefs.Invalid("job %s has no command", spec.Name)
	}
	info, err := os.Stat(spec.ArtifactRef)
	if spec.ArtifactRef == "" || err != nil || !info.IsDir() {
		return nil, errdefs.Invalid("artifact %q of job %s is not a directory: prepare the deploy first", spec.ArtifactRef, spec.Name)
	}
	args := spec.Command
	if script := filepath.Join(s.JobSideDir, "bin", args[0]); !strings.Contains(args[0], "/") && isRegularFile(script) {
		args = append([]string{s.Python, script}, args[1:]...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = spec.ArtifactRef
	cmd.Env = jobEnv(spec.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

func isRegularFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// watch waits for the job's process to exit, enforcing its maximum runtime,
// and records the final state.
func (e *localEngine) watch(j *job, grace time.Duration) {
	rec := j.record()
	if rec.MaxRuntime > 0 {
		remaining := time.Until(rec.StartedAt.Add(rec.MaxRuntime))
		timer := time.AfterFunc(max(remaining, 0), func() {
			if j.expire() {
				e.logger.Info("job ran out of time", "job", rec.Name, "max_runtime", rec.MaxRuntime.String())
				e.terminate(j, grace)
			}
		})
		defer timer.Stop()
	}
	exit := j.proc.wait()
	if exit.known {
		// Like a container runtime, end what the main process left running
		// in its group. Linux does not reuse a pid as a new process group id
		// while that group has members. Adopted processes are skipped, as
		// their pid is only checked against /proc while the main process runs.
		_ = j.proc.signal(syscall.SIGKILL)
	}
	e.finishJob(j, exit)
}

// finishJob records the job's final state and closes j.done.
func (e *localEngine) finishJob(j *job, exit exitStatus) {
	rec, err := j.finish(exit, time.Now().UTC())
	if err != nil {
		e.logger.Error("cannot record final job state", "job", rec.Name, "error", err)
	}
	close(j.done)
	e.logger.Info("job exited", "job", rec.Name, "pid", rec.PID, "state", string(rec.State), "reason", rec.Reason)
}

// terminate sends SIGTERM to the job's process group, then SIGKILL if the
// job is still running after grace.
func (e *localEngine) terminate(j *job, grace time.Duration) {
	if err := j.proc.signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		e.logger.Warn("cannot send SIGTERM to job", "job", j.name, "error", err)
	}
	go func() {
		select {
		case <-j.done:
		case <-time.After(grace):
			_ = j.proc.signal(syscall.SIGKILL)
		}
	}()
}

func (e *localEngine) lookup(name string) (*job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, errdefs.Unavailable("local engine is not configured: the host must call Configure first")
	}
	j, ok := e.jobs[name]
	if !ok {
		return nil, errdefs.NotFound("job %q not found", name)
	}
	return j, nil
}

func (e *localEngine) GetJob(_ context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	j, err := e.lookup(req.Name)
	if err != nil {
		return nil, err
	}
	return &engine.GetJobResponse{Job: j.status()}, nil
}

func (e *localEngine) ListJobs(_ context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, errdefs.Unavailable("local engine is not configured: the host must call Configure first")
	}
	jobs := []engine.JobStatus{}
	for _, j := range e.jobs {
		if j.matches(req.Labels) {
			jobs = append(jobs, j.status())
		}
	}
	return &engine.ListJobsResponse{Jobs: jobs}, nil
}

// StopJob stops a running job and waits until it exits, or until ctx ends;
// the forced kill after the grace period happens either way.
func (e *localEngine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	j, err := e.lookup(req.Name)
	if err != nil {
		return nil, err
	}
	grace := req.Grace
	if grace <= 0 {
		s, err := e.current()
		if err != nil {
			return nil, err
		}
		grace = s.StopGrace
	}
	e.stop(ctx, j, grace)
	return &engine.StopJobResponse{Job: j.status()}, nil
}

func (e *localEngine) stop(ctx context.Context, j *job, grace time.Duration) {
	requested, err := j.requestStop()
	if err != nil {
		e.logger.Error("cannot record stop request", "job", j.name, "error", err)
	}
	if requested {
		e.logger.Info("stopping job", "job", j.name, "pid", j.record().PID, "grace", grace.String())
		e.terminate(j, grace)
	}
	select {
	case <-j.done:
	case <-ctx.Done():
	}
}

// DeleteJob stops the job if it runs, then removes it from the engine and
// deletes its record and log.
func (e *localEngine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	j, err := e.lookup(req.Name)
	if err != nil {
		return nil, err
	}
	s, err := e.current()
	if err != nil {
		return nil, err
	}
	e.stop(ctx, j, s.StopGrace)
	if !j.finished() {
		return nil, errdefs.Unavailable("job %q is still stopping: retry the delete", req.Name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jobs[req.Name] != j {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	for _, path := range []string{j.recordPath, j.logPath} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("delete job %s: %w", req.Name, err)
		}
	}
	delete(e.jobs, req.Name)
	e.logger.Info("job deleted", "job", req.Name)
	return &engine.DeleteJobResponse{}, nil
}
