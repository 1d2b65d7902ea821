package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// adoptTimeout bounds the search for running jobs with a maximum runtime
// that Configure starts.
const adoptTimeout = time.Minute

// deadlines holds a timer per running job container with a maximum
// runtime. Docker has no such limit, so the plugin stops the job itself
// when the timer fires. CreateJob sets the timer, and Configure sets it
// again for the jobs that run when the plugin (re)starts. When several
// plugin processes share a daemon, each stops the job, and the first stop
// record stays.
type deadlines struct {
	mu     sync.Mutex
	timers map[string]*time.Timer // by container ID
}

func (d *deadlines) set(id string, after time.Duration, fire func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.timers[id]; ok {
		old.Stop()
	}
	d.timers[id] = time.AfterFunc(max(after, 0), fire)
}

func (d *deadlines) cancel(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.timers[id]; ok {
		t.Stop()
		delete(d.timers, id)
	}
}

// maxRuntimeOf returns the maximum runtime a job container was created
// with, or 0 for none.
func maxRuntimeOf(c container.InspectResponse) time.Duration {
	if c.Config == nil {
		return 0
	}
	d, err := time.ParseDuration(c.Config.Labels[labelMaxRuntime])
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// watchDeadline sets the timer of a running job container that has a
// maximum runtime.
func (e *dockerEngine) watchDeadline(docker *client.Client, c container.InspectResponse) {
	limit := maxRuntimeOf(c)
	if limit == 0 || c.State == nil || c.State.Status != container.StateRunning {
		return
	}
	name := c.Config.Labels[labelJobName]
	started := firstSet(parseDockerTime(c.State.StartedAt), time.Now())
	id := c.ID
	e.deadlines.set(id, time.Until(started.Add(limit)), func() { e.enforceDeadline(docker, id, name, limit) })
}

// enforceDeadline records the timeout and stops the job, unless it no
// longer runs.
func (e *dockerEngine) enforceDeadline(docker *client.Client, id, name string, limit time.Duration) {
	e.deadlines.cancel(id)
	grace := defaultStopGrace
	if s, _, err := e.current(); err == nil {
		grace = s.StopGrace
	}
	ctx, cancel := context.WithTimeout(e.background, grace+time.Minute)
	defer cancel()
	c, err := docker.ContainerInspect(ctx, id)
	if err != nil || c.State == nil || c.State.Status != container.StateRunning {
		return
	}
	reason := stopRecord(fmt.Sprintf("ran longer than its maximum runtime of %s", limit))
	if err := createStopMarker(ctx, docker, id, name, reason); err != nil {
		e.logger.Error("cannot record the timeout of a job", "job", name, "container_id", shortID(id), "error", err)
		return
	}
	seconds := int(math.Ceil(grace.Seconds()))
	if err := docker.ContainerStop(ctx, id, container.StopOptions{Timeout: &seconds}); err != nil {
		e.logger.Error("cannot stop a job past its maximum runtime", "job", name, "container_id", shortID(id), "error", err)
		return
	}
	e.logger.Info("job stopped at its maximum runtime", "job", name, "container_id", shortID(id), "max_runtime", limit.String())
}

// adoptDeadlines sets the timers of the running job containers that have a
// maximum runtime, in the background.
func (e *dockerEngine) adoptDeadlines(docker *client.Client) {
	e.adopting.Add(1)
	go func() {
		defer e.adopting.Done()
		ctx, cancel := context.WithTimeout(e.background, adoptTimeout)
		defer cancel()
		running, err := docker.ContainerList(ctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", labelMaxRuntime), filters.Arg("label", labelJobName)),
		})
		if err != nil {
			e.logger.Warn("cannot list running jobs to enforce their maximum runtime", "error", err)
			return
		}
		for _, c := range running {
			inspected, err := docker.ContainerInspect(ctx, c.ID)
			if err != nil {
				e.logger.Warn("cannot inspect a running job to enforce its maximum runtime", "container_id", shortID(c.ID), "error", err)
				continue
			}
			e.watchDeadline(docker, inspected)
		}
	}()
}
