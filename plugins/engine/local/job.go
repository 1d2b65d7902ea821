package main

import (
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
)

// reasonUnknownExit is the reason of a job whose process ended while no
// engine process was its parent, so its exit status is lost.
const reasonUnknownExit = "exit status unknown: the engine restarted while the job ran"

// job is one of the engine's jobs, running or finished.
type job struct {
	name       string
	recordPath string
	logPath    string
	// proc is nil for a job that was already finished when loaded.
	proc process
	// done is closed once the job has reached its final state.
	done chan struct{}

	// persistMu serializes the changes that are written to recordPath, so
	// the file always ends with the latest state. It is taken before mu.
	persistMu sync.Mutex
	mu        sync.Mutex
	rec       jobRecord
	timedOut  bool // true once MaxRuntime passed and the engine stopped it
}

func newJob(rec jobRecord, recordPath, logPath string, proc process) *job {
	j := &job{name: rec.Name, recordPath: recordPath, logPath: logPath, proc: proc, rec: rec, done: make(chan struct{})}
	if proc == nil {
		close(j.done)
	}
	return j
}

// status returns a copy of the job's status.
func (j *job) status() engine.JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	return engine.JobStatus{
		Name:       j.rec.Name,
		State:      j.rec.State,
		Reason:     j.rec.Reason,
		ExitCode:   j.rec.ExitCode,
		Labels:     maps.Clone(j.rec.Labels),
		StartedAt:  j.rec.StartedAt,
		FinishedAt: j.rec.FinishedAt,
	}
}

func (j *job) record() jobRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	rec := j.rec
	rec.Labels = maps.Clone(rec.Labels)
	return rec
}

func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// matches reports whether every selector pair is among the job's labels.
func (j *job) matches(selector map[string]string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k, v := range selector {
		if got, ok := j.rec.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// requestStop marks the job as stopped on request and records the mark,
// unless the job already finished or ran out of time. It reports whether
// the mark was set.
func (j *job) requestStop() (bool, error) {
	j.persistMu.Lock()
	defer j.persistMu.Unlock()
	j.mu.Lock()
	if j.rec.State.Final() || j.timedOut {
		j.mu.Unlock()
		return false, nil
	}
	j.rec.StopRequested = true
	rec := j.rec
	rec.Labels = maps.Clone(rec.Labels)
	j.mu.Unlock()
	return true, writeRecord(j.recordPath, rec)
}

// expire marks the job as out of time, unless a stop was already requested.
func (j *job) expire() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.rec.State.Final() || j.rec.StopRequested {
		return false
	}
	j.timedOut = true
	return true
}

// finish sets the final state from how the process ended. It writes the
// record before it changes the state in memory, so a final state seen
// through GetJob is already on disk.
func (j *job) finish(exit exitStatus, now time.Time) (jobRecord, error) {
	j.persistMu.Lock()
	defer j.persistMu.Unlock()
	j.mu.Lock()
	rec := j.rec
	rec.Labels = maps.Clone(rec.Labels)
	timedOut := j.timedOut
	j.mu.Unlock()

	rec.FinishedAt = now
	rec.ExitCode = exit.code
	rec.State, rec.Reason = finalState(rec, timedOut, exit)
	err := writeRecord(j.recordPath, rec)

	j.mu.Lock()
	j.rec = rec
	j.mu.Unlock()
	return rec, err
}

func finalState(rec jobRecord, timedOut bool, exit exitStatus) (engine.JobState, string) {
	switch {
	case rec.StopRequested:
		return engine.JobStopped, "stopped on request"
	case timedOut:
		return engine.JobFailed, fmt.Sprintf("ran longer than its maximum runtime of %s", rec.MaxRuntime)
	case !exit.known:
		return engine.JobFailed, reasonUnknownExit
	case exit.signal != 0:
		return engine.JobFailed, fmt.Sprintf("killed by signal %d", int(exit.signal))
	case exit.code == 0:
		return engine.JobSucceeded, "exited with code 0"
	}
	return engine.JobFailed, fmt.Sprintf("exited with code %d", exit.code)
}
