package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Reasons of the job states, as JobStatus.Reason.
const (
	reasonStopped = "stopped by request"
	reasonOOM     = "killed because it used more memory than its limit (out of memory)"
)

// Stop markers. Docker cannot change a container's labels, so a stop is
// recorded as an empty volume named stopMarkerPrefix + container ID,
// labelled labelStoppedContainer, with the kind of stop under
// labelStopReason. The record lives on the daemon, so every plugin process
// connected to it, and this one after a restart, reads it. DeleteJob
// removes it with the container.
const (
	stopMarkerPrefix      = "estela-stopped-"
	labelStoppedContainer = labelPrefix + "stopped-container"
	labelStopReason       = labelPrefix + "stop-reason"
)

// stopRecord is the stop record of a container: noStop when there is none,
// stopByRequest after StopJob, and otherwise the reason of a stop by the
// engine, which makes the job FAILED.
type stopRecord string

const (
	noStop        stopRecord = ""
	stopByRequest stopRecord = "request"
)

func stopMarkerName(containerID string) string {
	return stopMarkerPrefix + containerID
}

// createStopMarker records the stop of the container. Creating an existing
// volume returns it unchanged, so a repeated stop succeeds and the first
// record stays.
func createStopMarker(ctx context.Context, docker *client.Client, containerID, name string, rec stopRecord) error {
	_, err := docker.VolumeCreate(ctx, volume.CreateOptions{
		Name:   stopMarkerName(containerID),
		Labels: map[string]string{labelStoppedContainer: containerID, labelJobName: name, labelStopReason: string(rec)},
	})
	if err != nil {
		return daemonError(err, "record the stop of job %s", name)
	}
	return nil
}

// stopMarked returns the stop record of the container.
func stopMarked(ctx context.Context, docker *client.Client, containerID string) (stopRecord, error) {
	v, err := docker.VolumeInspect(ctx, stopMarkerName(containerID))
	if cerrdefs.IsNotFound(err) {
		return noStop, nil
	}
	if err != nil {
		return noStop, daemonError(err, "read the stop record of container %s", containerID)
	}
	return recordOf(v.Labels), nil
}

// stopMarkedAll returns the stop records of every container, by container
// ID, in one call.
func stopMarkedAll(ctx context.Context, docker *client.Client) (map[string]stopRecord, error) {
	resp, err := docker.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", labelStoppedContainer))})
	if err != nil {
		return nil, daemonError(err, "list stop records")
	}
	records := make(map[string]stopRecord, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if id := v.Labels[labelStoppedContainer]; id != "" {
			records[id] = recordOf(v.Labels)
		}
	}
	return records, nil
}

func recordOf(labels map[string]string) stopRecord {
	if reason := labels[labelStopReason]; reason != "" {
		return stopRecord(reason)
	}
	return stopByRequest
}

// removeStopMarker deletes the stop record of a container, if any.
func removeStopMarker(ctx context.Context, docker *client.Client, containerID string) error {
	err := docker.VolumeRemove(ctx, stopMarkerName(containerID), true)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return daemonError(err, "remove the stop record of container %s", containerID)
	}
	return nil
}

// containerStatus returns the job status of an inspected container, before
// stop records are applied (see applyStopMarker).
func containerStatus(c container.InspectResponse) engine.JobStatus {
	labels := map[string]string{}
	if c.Config != nil {
		labels = c.Config.Labels
	}
	st := engine.JobStatus{Name: labels[labelJobName], Labels: jobLabels(labels)}
	if c.ContainerJSONBase == nil || c.State == nil {
		st.State = engine.JobPending
		return st
	}
	state := c.State
	st.StartedAt = parseDockerTime(state.StartedAt)
	switch state.Status {
	case container.StateCreated:
		st.State = engine.JobPending
		st.StartedAt = time.Time{}
		if state.Error != "" {
			st.State, st.Reason = engine.JobFailed, "failed to start: "+state.Error
			st.ExitCode = int32(state.ExitCode)
			st.FinishedAt = firstSet(parseDockerTime(state.FinishedAt), parseDockerTime(c.Created))
		}
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		st.State = engine.JobRunning
	case container.StateExited, container.StateRemoving:
		finished(&st, state)
	case container.StateDead:
		st.State, st.Reason = engine.JobFailed, "the container is dead: "+state.Error
		st.ExitCode = int32(state.ExitCode)
		st.FinishedAt = firstSet(parseDockerTime(state.FinishedAt), time.Now())
	default:
		st.State, st.Reason = engine.JobPending, fmt.Sprintf("unknown container state %q", state.Status)
	}
	return st
}

func finished(st *engine.JobStatus, state *container.State) {
	st.ExitCode = int32(state.ExitCode)
	st.FinishedAt = firstSet(parseDockerTime(state.FinishedAt), time.Now())
	switch {
	case state.OOMKilled:
		st.State, st.Reason = engine.JobFailed, reasonOOM
	case state.ExitCode == 0:
		st.State = engine.JobSucceeded
	default:
		st.State, st.Reason = engine.JobFailed, fmt.Sprintf("exited with code %d", state.ExitCode)
		if state.Error != "" {
			st.Reason += ": " + state.Error
		}
	}
}

// applyStopMarker turns a job that StopJob stopped into STOPPED, and one the
// engine stopped into FAILED with the record's reason, once its container
// no longer runs. A job that finished before the stop has no record, so it
// keeps its state.
func applyStopMarker(st engine.JobStatus, rec stopRecord) engine.JobStatus {
	if rec == noStop || st.State == engine.JobRunning {
		return st
	}
	st.State, st.Reason = engine.JobStopped, reasonStopped
	if rec != stopByRequest {
		st.State, st.Reason = engine.JobFailed, string(rec)
	}
	if st.FinishedAt.IsZero() {
		st.FinishedAt = time.Now()
	}
	return st
}

// parseDockerTime parses the daemon's RFC 3339 times; the daemon writes
// "0001-01-01T00:00:00Z" for unset ones, which gives the zero time.
func parseDockerTime(value string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t.UTC()
}

func firstSet(times ...time.Time) time.Time {
	for _, t := range times {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// statusCache keeps the status of each container inspected by ListJobs,
// together with the list state ("running", "exited", ...) it was read at.
// The list gives no exit code, OOM flag or times, so ListJobs inspects a
// container only when its list state differs from the cached one, which is
// once per state a container goes through in this process. A created container is never
// cached, because a failed start leaves it "created" with an error.
type statusCache struct {
	mu      sync.Mutex
	entries map[string]cachedStatus
}

type cachedStatus struct {
	listState string
	status    engine.JobStatus
}

func (c *statusCache) get(id, listState string) (engine.JobStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, ok := c.entries[id]
	if !ok || entry.listState != listState {
		return engine.JobStatus{}, false
	}
	return entry.status, true
}

func (c *statusCache) put(id, listState string, st engine.JobStatus) {
	if listState == container.StateCreated {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[id] = cachedStatus{listState: listState, status: st}
}

func (c *statusCache) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

// prune removes the entries whose labels contain selector but whose
// container is not in listed: the containers a list by selector no longer
// returns, because they were removed.
func (c *statusCache) prune(selector map[string]string, listed map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, entry := range c.entries {
		if !listed[id] && containsLabels(entry.status.Labels, selector) {
			delete(c.entries, id)
		}
	}
}

func containsLabels(labels, selector map[string]string) bool {
	for key, value := range selector {
		if got, ok := labels[key]; !ok || got != value {
			return false
		}
	}
	return true
}

// labelFilter selects the job containers whose labels contain selector.
func labelFilter(selector map[string]string) filters.Args {
	args := filters.NewArgs(filters.Arg("label", labelJobName))
	for _, key := range sortedKeys(selector) {
		args.Add("label", key+"="+selector[key])
	}
	return args
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
