package main

import (
	"context"
	"errors"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// PrepareArtifact is not supported: Nomad runs images that were built and
// pushed elsewhere, for example by the docker engine's BuildImage.
func (e *nomadEngine) PrepareArtifact(context.Context, *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	return nil, errdefs.Invalid("the nomad engine does not build deploys: it runs images built and pushed elsewhere, for example by the docker engine's BuildImage")
}

func queryOptions(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func writeOptions(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// CreateJob registers the job, or returns the existing job with the same
// name. The registration enforces job modify index 0, so that of two
// concurrent calls only one registers and the other returns that job.
func (e *nomadEngine) CreateJob(ctx context.Context, req *engine.CreateJobRequest) (*engine.CreateJobResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	job, err := nomadJob(s, req.Spec)
	if err != nil {
		return nil, err
	}
	existing, err := e.existingJob(ctx, client, req.Spec.Name)
	if existing != nil || err != nil {
		return existing, err
	}
	_, _, err = client.Jobs().EnforceRegister(job, 0, writeOptions(ctx))
	if err != nil && strings.Contains(err.Error(), "job already exists") {
		return e.existingJob(ctx, client, req.Spec.Name)
	}
	if err != nil {
		return nil, nomadError(err, "register job %s", req.Spec.Name)
	}
	e.logger.Info("job registered", "job", req.Spec.Name, "image", req.Spec.ArtifactRef)
	labels, _ := jobLabels(job.Meta)
	st := engine.JobStatus{Name: req.Spec.Name, State: engine.JobPending, Labels: labels}
	return &engine.CreateJobResponse{Job: st, Created: true}, nil
}

// existingJob returns the job registered under name with Created false, nil
// when there is none, or ErrConflict when a job the plugin did not register
// has the name.
func (e *nomadEngine) existingJob(ctx context.Context, client *api.Client, name string) (*engine.CreateJobResponse, error) {
	st, err := jobStatusByName(ctx, client, name)
	if errors.Is(err, errNotOurs) {
		return nil, errdefs.Conflict("a Nomad job named %s exists but was not registered by the estela nomad engine: rename or purge it", name)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &engine.CreateJobResponse{Job: st, Created: false}, nil
}

// errNotOurs marks a job that exists but lacks the plugin's meta. It wraps
// ErrNotFound, because for every call but CreateJob such a job does not exist.
var errNotOurs = errors.Join(errdefs.ErrNotFound, errors.New("not registered by this plugin"))

// readJob reads the job the plugin registered under name: one call.
func readJob(ctx context.Context, client *api.Client, name string) (*api.Job, error) {
	if !jobNamePattern.MatchString(name) {
		return nil, errdefs.NotFound("job %q not found", name)
	}
	job, _, err := client.Jobs().Info(name, queryOptions(ctx))
	if isNotFound(err) {
		return nil, errdefs.NotFound("job %q not found", name)
	}
	if err != nil {
		return nil, nomadError(err, "read job %s", name)
	}
	if _, ours := jobLabels(job.Meta); !ours {
		return nil, errNotOurs
	}
	return job, nil
}

// jobStatusByName reads a job and its allocations: two calls.
func jobStatusByName(ctx context.Context, client *api.Client, name string) (engine.JobStatus, error) {
	view, err := jobViewByName(ctx, client, name)
	if err != nil {
		return engine.JobStatus{}, err
	}
	return jobStatus(view), nil
}

func jobViewByName(ctx context.Context, client *api.Client, name string) (jobView, error) {
	job, err := readJob(ctx, client, name)
	if err != nil {
		return jobView{}, err
	}
	allocs, _, err := client.Jobs().Allocations(name, false, queryOptions(ctx))
	if err != nil {
		return jobView{}, nomadError(err, "list allocations of job %s", name)
	}
	return viewOfJob(job, allocs), nil
}

// GetJob returns the job's status from the job and its allocations.
func (e *nomadEngine) GetJob(ctx context.Context, req *engine.GetJobRequest) (*engine.GetJobResponse, error) {
	_, client, err := e.current()
	if err != nil {
		return nil, err
	}
	st, err := jobStatusByName(ctx, client, req.Name)
	if err != nil {
		return nil, unwrapNotOurs(err, req.Name)
	}
	return &engine.GetJobResponse{Job: st}, nil
}

// unwrapNotOurs words a foreign job as a job that is not found.
func unwrapNotOurs(err error, name string) error {
	if errors.Is(err, errNotOurs) {
		return errdefs.NotFound("job %q not found", name)
	}
	return err
}

// ListJobs makes two calls whatever the number of jobs: the jobs of the
// namespace with their meta, filtered here by the labels in the meta, and,
// when any job matches, the allocations of the namespace with their task
// states. Run the plugin in a namespace of its own (setting namespace) to
// keep both lists short.
func (e *nomadEngine) ListJobs(ctx context.Context, req *engine.ListJobsRequest) (*engine.ListJobsResponse, error) {
	_, client, err := e.current()
	if err != nil {
		return nil, err
	}
	stubs, err := listOwnJobs(ctx, client, req.Labels)
	if err != nil {
		return nil, err
	}
	resp := &engine.ListJobsResponse{Jobs: make([]engine.JobStatus, 0, len(stubs))}
	if len(stubs) == 0 {
		return resp, nil
	}
	allocs, err := allocationsByJob(ctx, client)
	if err != nil {
		return nil, err
	}
	for _, stub := range stubs {
		resp.Jobs = append(resp.Jobs, jobStatus(viewOfStub(stub, allocs[stub.ID])))
	}
	return resp, nil
}

// listOwnJobs returns the jobs the plugin registered whose labels contain selector.
func listOwnJobs(ctx context.Context, client *api.Client, selector map[string]string) ([]*api.JobListStub, error) {
	opts := &api.JobListOptions{Fields: &api.JobListFields{Meta: true}}
	stubs, _, err := client.Jobs().ListOptions(opts, queryOptions(ctx))
	if err != nil {
		return nil, nomadError(err, "list jobs")
	}
	var own []*api.JobListStub
	for _, stub := range stubs {
		if labels, ours := jobLabels(stub.Meta); ours && containsLabels(labels, selector) {
			own = append(own, stub)
		}
	}
	return own, nil
}

// allocationsByJob lists the allocations of the namespace by job ID.
func allocationsByJob(ctx context.Context, client *api.Client) (map[string][]*api.AllocationListStub, error) {
	q := queryOptions(ctx)
	q.Params = map[string]string{"task_states": "true"}
	allocs, _, err := client.Allocations().List(q)
	if err != nil {
		return nil, nomadError(err, "list allocations")
	}
	byJob := map[string][]*api.AllocationListStub{}
	for _, a := range allocs {
		byJob[a.JobID] = append(byJob[a.JobID], a)
	}
	return byJob, nil
}

// StopJob stops the job: Nomad deregisters it without purging it, so it
// stays readable, and kills its task with the job's kill_timeout.
// NOTE: req.Grace is not applied, because Nomad takes the kill timeout from
// the job, which CreateJob set from stop_grace.
func (e *nomadEngine) StopJob(ctx context.Context, req *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	_, client, err := e.current()
	if err != nil {
		return nil, err
	}
	view, err := jobViewByName(ctx, client, req.Name)
	if err != nil {
		return nil, unwrapNotOurs(err, req.Name)
	}
	if st := jobStatus(view); st.State.Final() {
		return &engine.StopJobResponse{Job: st}, nil
	}

	if _, _, err := client.Jobs().Deregister(req.Name, false, writeOptions(ctx)); err != nil {
		return nil, nomadError(err, "stop job %s", req.Name)
	}
	e.logger.Info("job stopped", "job", req.Name)
	view.Stop = true
	return &engine.StopJobResponse{Job: jobStatus(view)}, nil
}

// DeleteJob deregisters the job with purge, which kills its task and
// removes the job from Nomad.
func (e *nomadEngine) DeleteJob(ctx context.Context, req *engine.DeleteJobRequest) (*engine.DeleteJobResponse, error) {
	_, client, err := e.current()
	if err != nil {
		return nil, err
	}
	if _, err := readJob(ctx, client, req.Name); err != nil {
		return nil, unwrapNotOurs(err, req.Name)
	}
	_, _, err = client.Jobs().Deregister(req.Name, true, writeOptions(ctx))
	if isNotFound(err) {
		return nil, errdefs.NotFound("job %q not found", req.Name)
	}
	if err != nil {
		return nil, nomadError(err, "purge job %s", req.Name)
	}
	e.logger.Info("job purged", "job", req.Name)
	return &engine.DeleteJobResponse{}, nil
}
