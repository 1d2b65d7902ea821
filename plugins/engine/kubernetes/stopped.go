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
// Jobs vanish from the API server once the pods are gone. Watches
// subscribe to learn when an entry is dropped, which is when the job stops
// existing for the host.
//
// NOTE: the record lives in this process only. After a plugin restart, or
// on another replica, GetJob of a stopped job whose Job is gone returns
// errdefs.ErrNotFound.
type stoppedJobs struct {
	mu          sync.Mutex
	jobs        map[string]stoppedJob
	subscribers map[int]func(name string)
	nextID      int
}

type stoppedJob struct {
	status  engine.JobStatus
	addedAt time.Time
}

func newStoppedJobs() *stoppedJobs {
	return &stoppedJobs{jobs: map[string]stoppedJob{}, subscribers: map[int]func(string){}}
}

// add records status. It drops expired entries and, when full, the oldest.
func (s *stoppedJobs) add(status engine.JobStatus, now time.Time) {
	s.mu.Lock()
	s.jobs[status.Name] = stoppedJob{status: status, addedAt: now}
	var forgotten []string
	oldest := ""
	for name, job := range s.jobs {
		if now.Sub(job.addedAt) > stoppedRetention {
			delete(s.jobs, name)
			forgotten = append(forgotten, name)
		} else if oldest == "" || job.addedAt.Before(s.jobs[oldest].addedAt) {
			oldest = name
		}
	}
	if len(s.jobs) > maxStoppedJobs {
		delete(s.jobs, oldest)
		forgotten = append(forgotten, oldest)
	}
	notify := s.subscriberList()
	s.mu.Unlock()
	for _, name := range forgotten {
		for _, fn := range notify {
			fn(name)
		}
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

// remove drops name without telling the subscribers, for a job that
// exists again or whose stop failed, and reports whether it was recorded.
func (s *stoppedJobs) remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[name]
	delete(s.jobs, name)
	return ok
}

// forget drops name and notifies the subscribers, for a deleted job, and
// reports whether it was recorded.
func (s *stoppedJobs) forget(name string) bool {
	if !s.remove(name) {
		return false
	}
	s.mu.Lock()
	notify := s.subscriberList()
	s.mu.Unlock()
	for _, fn := range notify {
		fn(name)
	}
	return true
}

// subscribe calls fn with the name of every forgotten entry until
// unsubscribe is called. fn must not block.
func (s *stoppedJobs) subscribe(fn func(name string)) (unsubscribe func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.subscribers[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subscribers, id)
	}
}

// subscriberList returns the subscribers; callers hold s.mu.
func (s *stoppedJobs) subscriberList() []func(string) {
	out := make([]func(string), 0, len(s.subscribers))
	for _, fn := range s.subscribers {
		out = append(out, fn)
	}
	return out
}
