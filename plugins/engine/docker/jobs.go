package main

import (
	"context"
	"errors"
	"math"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// PrepareArtifact is not supported: this engine lists the build_image
// capability, so the host builds deploys with BuildImage.
func (e *dockerEngine) PrepareArtifact(context.Context, *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	return nil, errdefs.Invalid("the docker engine does not prepare artifacts from an archive: it builds deploys into images with BuildImage (capability %q)", engine.CapabilityBuildImage)
}

// CreateJob creates and starts the job's container, or returns the existing
// job with the same name.
func (e *dockerEngine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	s, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	cr, err := jobContainer(s, req.Spec)
	if err != nil {
		return nil, err
	}
	id, err := e.createContainer(ctx, docker, s, cr)
	if cerrdefs.IsConflict(err) {
		return e.existingJob(ctx, docker, cr.Name)
	}
	if err != nil {
		return nil, err
	}
	st, err := e.startContainer(ctx, docker, id, cr.Name)
	if err != nil {
		return nil, err
	}
	e.logger.Info("job created", "job", cr.Name, "container_id", shortID(id), "image", cr.Config.Image)
	return &engine.CreateJobResponse{Job: st, Created: true}, nil
}

// createContainer creates the container, pulling its image first when the
// pull policy requires it. It returns the raw client error on a name conflict.
func (e *dockerEngine) createContainer(ctx context.Context, docker *client.Client, s *settings, cr containerRequest) (string, error) {
	if s.Pull == pullAlways {
		if err := e.pullImage(ctx, docker, cr.Config.Image); err != nil {
			return "", err
		}
	}
	created, err := docker.ContainerCreate(ctx, cr.Config, cr.Host, nil, nil, cr.Name)
	if cerrdefs.IsNotFound(err) && s.Pull == pullMissing {
		if err := e.pullImage(ctx, docker, cr.Config.Image); err != nil {
			return "", err
		}
		created, err = docker.ContainerCreate(ctx, cr.Config, cr.Host, nil, nil, cr.Name)
	}
	switch {
	case cerrdefs.IsConflict(err):
		return "", err
	case cerrdefs.IsNotFound(err):
		return "", errdefs.Invalid("create container %s: image %s is not on the Docker daemon and the pull policy is %q: %v", cr.Name, cr.Config.Image, s.Pull, err)
	case err != nil:
		return "", daemonError(err, "create container %s", cr.Name)
	}
	for _, warning := range created.Warnings {
		e.logger.Warn("docker warning on container create", "job", cr.Name, "warning", warning)
	}
	return created.ID, nil
}

// startContainer starts a created container and returns the job's status.
// A container that the daemon created but cannot start (for example because
// the command is not in the image) is a failed job, not a failed call. When
// the daemon records no error for it, the container is removed instead, so
// that the host's retry creates it again.
func (e *dockerEngine) startContainer(ctx context.Context, docker *client.Client, id, name string) (engine.JobStatus, error) {
	startErr := docker.ContainerStart(ctx, id, container.StartOptions{})
	if startErr != nil && client.IsErrConnectionFailed(startErr) {
		return engine.JobStatus{}, daemonError(startErr, "start container %s", name)
	}
	inspected, err := docker.ContainerInspect(ctx, id)
	if err != nil {
		return engine.JobStatus{}, daemonError(err, "inspect container %s", name)
	}
	st := containerStatus(inspected)
	if startErr == nil {
		e.watchDeadline(docker, inspected)
		return st, nil
	}
	if st.State == engine.JobFailed {
		return st, nil
	}
	if err := docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		e.logger.Error("cannot remove container that failed to start", "job", name, "container_id", shortID(id), "error", err)
	}
	return engine.JobStatus{}, daemonError(startErr, "start container %s", name)
}

// existingJob returns the job whose container already has the name. A job
// container that was created but never started, because an earlier
// CreateJob failed between create and start, is started now.
func (e *dockerEngine) existingJob(ctx context.Context, docker *client.Client, name string) (*engine.CreateJobResponse, error) {
	c, err := inspectJob(ctx, docker, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.Conflict("a container named %s exists but was not created by the estela docker engine: rename or remove it", name)
	}
	if err != nil {
		return nil, err
	}
	st := containerStatus(c)
	if c.State != nil && c.State.Status == container.StateCreated && c.State.Error == "" {
		if st, err = e.startContainer(ctx, docker, c.ID, name); err != nil {
			return nil, err
		}
	}
	st, err = withStopMarker(ctx, docker, c.ID, st)
	if err != nil {
		return nil, err
	}
	return &engine.CreateJobResponse{Job: st, Created: false}, nil
}

// GetJob returns the status of the job's container.
func (e *dockerEngine) GetJob(ctx context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	_, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	st, _, err := jobStatusByName(ctx, docker, req.Name)
	if err != nil {
		return nil, err
	}
	return &engine.GetJobResponse{Job: st}, nil
}

// jobStatusByName inspects the job's container and returns the job's status
// and the container ID.
func jobStatusByName(ctx context.Context, docker *client.Client, name string) (engine.JobStatus, string, error) {
	c, err := inspectJob(ctx, docker, name)
	if err != nil {
		return engine.JobStatus{}, "", err
	}
	st, err := withStopMarker(ctx, docker, c.ID, containerStatus(c))
	return st, c.ID, err
}

// inspectJob inspects the container of the named job. The daemon also
// matches names against ID prefixes, so a container is the job's only when
// its job-name label is the name.
func inspectJob(ctx context.Context, docker *client.Client, name string) (container.InspectResponse, error) {
	if !containerNamePattern.MatchString(name) {
		return container.InspectResponse{}, errdefs.NotFound("job %q not found", name)
	}
	c, err := docker.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return c, errdefs.NotFound("job %q not found", name)
	}
	if err != nil {
		return c, daemonError(err, "inspect container %s", name)
	}
	if c.Config == nil || c.Config.Labels[labelJobName] != name {
		return c, errdefs.NotFound("job %q not found", name)
	}
	return c, nil
}

// withStopMarker applies the container's stop record to st. A running job
// needs no lookup, because a stop record changes only finished states.
func withStopMarker(ctx context.Context, docker *client.Client, id string, st engine.JobStatus) (engine.JobStatus, error) {
	if st.State == engine.JobRunning {
		return st, nil
	}
	rec, err := stopMarked(ctx, docker, id)
	if err != nil {
		return st, err
	}
	return applyStopMarker(st, rec), nil
}

// ListJobs lists the job containers whose labels contain req.Labels. A call
// costs one container list, one volume list for the stop records (skipped
// when every job runs) and one inspection per container whose state changed
// since this process last listed it.
func (e *dockerEngine) ListJobs(ctx context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	_, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	containers, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(req.Labels)})
	if err != nil {
		return nil, daemonError(err, "list containers")
	}
	var markers map[string]stopRecord
	if anyNotRunning(containers) {
		if markers, err = stopMarkedAll(ctx, docker); err != nil {
			return nil, err
		}
	}
	resp := &engine.ListJobsResponse{Jobs: make([]engine.JobStatus, 0, len(containers))}
	listed := make(map[string]bool, len(containers))
	for _, c := range containers {
		st, found, err := e.cachedStatus(ctx, docker, c)
		if err != nil {
			return nil, err
		}
		if found {
			listed[c.ID] = true
			resp.Jobs = append(resp.Jobs, applyStopMarker(st, markers[c.ID]))
		}
	}
	e.statuses.prune(req.Labels, listed)
	return resp, nil
}

func anyNotRunning(containers []container.Summary) bool {
	for _, c := range containers {
		if c.State != container.StateRunning {
			return true
		}
	}
	return false
}

// cachedStatus returns the status of a listed container, from the cache when
// its list state is unchanged. found is false when the container was removed
// after the list.
func (e *dockerEngine) cachedStatus(ctx context.Context, docker *client.Client, c container.Summary) (st engine.JobStatus, found bool, err error) {
	if st, ok := e.statuses.get(c.ID, c.State); ok {
		return st, true, nil
	}
	inspected, err := docker.ContainerInspect(ctx, c.ID)
	if cerrdefs.IsNotFound(err) {
		return st, false, nil
	}
	if err != nil {
		return st, false, daemonError(err, "inspect container %s", shortID(c.ID))
	}
	st = containerStatus(inspected)
	e.statuses.put(c.ID, c.State, st)
	return st, true, nil
}

// StopJob records the stop, then stops the container: SIGTERM, and SIGKILL
// after the grace period, rounded up to whole seconds because the Engine API
// takes seconds.
func (e *dockerEngine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	s, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	st, id, err := jobStatusByName(ctx, docker, req.Name)
	if err != nil {
		return nil, err
	}
	if st.State.Final() {
		return &engine.StopJobResponse{Job: st}, nil
	}

	if err := createStopMarker(ctx, docker, id, req.Name, stopByRequest); err != nil {
		return nil, err
	}
	grace := req.Grace
	if grace <= 0 {
		grace = s.StopGrace
	}
	seconds := int(math.Ceil(grace.Seconds()))
	if err := docker.ContainerStop(ctx, id, container.StopOptions{Timeout: &seconds}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, errdefs.NotFound("job %q not found", req.Name)
		}
		return nil, daemonError(err, "stop container %s", req.Name)
	}

	e.logger.Info("job stopped", "job", req.Name, "container_id", shortID(id), "grace", grace.String())
	st, _, err = jobStatusByName(ctx, docker, req.Name)
	if err != nil {
		return nil, err
	}
	return &engine.StopJobResponse{Job: st}, nil
}

// DeleteJob kills and removes the job's container and its stop record.
func (e *dockerEngine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	_, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	c, err := inspectJob(ctx, docker, req.Name)
	if err != nil {
		return nil, err
	}
	err = docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	if err != nil {
		return nil, daemonError(err, "remove container %s", req.Name)
	}
	e.statuses.remove(c.ID)
	e.deadlines.cancel(c.ID)
	if err := removeStopMarker(ctx, docker, c.ID); err != nil {
		return nil, err
	}
	e.logger.Info("job deleted", "job", req.Name, "container_id", shortID(c.ID))
	return &engine.DeleteJobResponse{}, nil
}

// shortID returns the 12-character form of a container ID that docker ps shows.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
