package main

import (
	"sync"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Bounds of what stoppedJobs keeps: a day, as long as Kubernetes keeps a
// finished Job by default, and at most maxStoppedJobs entries.
const (
	stoppedRetention = 24 * time.Hour
	maxStoppedJobs   = 10000
)

// stoppedJobs keeps the status of the jobs StopJob deleted, because their
// Jobs vanish from the API server once the pods are gone.
//
// NOTE: the record lives in this process only. After a plugin restart, or
// on another replica, GetJob of a stopped job whose Job is gone returns
// errdefs.ErrNotFound.
type stoppedJobs struct {
	mu   sync.Mutex
	jobs map[string]stoppedJob
}

type stoppedJob struct {
	status  engine.JobStatus
	addedAt time.Time
}

func newStoppedJobs() *stoppedJobs {
	return &stoppedJobs{jobs: map[string]stoppedJob{}}
}

// add records status, dropping expired entries and, when full, the oldest.
func (s *stoppedJobs) add(status engine.JobStatus, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[status.Name] = stoppedJob{status: status, addedAt: now}
	oldest := ""
	for name, job := range s.jobs {
		if now.Sub(job.addedAt) > stoppedRetention {
			delete(s.jobs, name)
		} else if oldest == "" || job.addedAt.Before(s.jobs[oldest].addedAt) {
			oldest = name
		}
	}
	if len(s.jobs) > maxStoppedJobs {
		delete(s.jobs, oldest)
	}
}

func (s *stoppedJobs) get(name string, now time.Time) (engine.JobStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[name]
	if !ok || now.Sub(job.addedAt) > stoppedRetention {
		return engine.JobStatus{}, false
	}
	return job.status, true
}

// list returns the unexpired entries whose labels contain want.
func (s *stoppedJobs) list(want map[string]string, now time.Time) []engine.JobStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []engine.JobStatus
	for _, job := range s.jobs {
		if now.Sub(job.addedAt) <= stoppedRetention && containsLabels(job.status.Labels, want) {
			out = append(out, job.status)
		}
	}
	return out
}

// remove forgets name and reports whether it was recorded.
func (s *stoppedJobs) remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[name]
	delete(s.jobs, name)
	return ok
}
