// Package engine is the Go interface of an estela engine plugin: the
// component that prepares uploaded projects and runs spiders as jobs on an
// orchestrator (local processes, Docker, Kubernetes, Nomad).
//
// A plugin author implements Engine and calls Serve from main. The host gets
// an Engine too, from the go-plugin client, and calls it as if it were local.
// Errors keep their errdefs type across the process boundary.
package engine

import (
	"context"
	"io"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Engine is the interface an engine plugin implements. The host calls GetInfo and
// Configure before anything else. Implementations must be safe for
// concurrent use, and return errors built with package errdefs so that the
// host can tell them apart.
type Engine interface {
	// GetInfo returns the plugin's name, version, API versions and capabilities.
	GetInfo(ctx context.Context) (*pluginapi.Info, error)
	// Configure validates the settings and applies them when they are valid.
	Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error)
	// PrepareArtifact turns an uploaded project archive (a zip) into something jobs can run from
	// (local: an unpacked directory; image engines later: a built image) and lists its spiders.
	PrepareArtifact(ctx context.Context, req *PrepareArtifactRequest) (*PrepareArtifactResponse, error)
	// CreateJob starts a job. It is idempotent on Spec.Name.
	CreateJob(ctx context.Context, req *CreateJobRequest) (*CreateJobResponse, error)
	// GetJob returns a job's status, or errdefs.ErrNotFound for unknown names.
	GetJob(ctx context.Context, req *GetJobRequest) (*GetJobResponse, error)
	// ListJobs returns every job whose labels contain req.Labels.
	ListJobs(ctx context.Context, req *ListJobsRequest) (*ListJobsResponse, error)
	// StopJob stops a job, politely first and by force after the grace period.
	// Stopping a finished job returns its status unchanged.
	StopJob(ctx context.Context, req *StopJobRequest) (*StopJobResponse, error)
	// DeleteJob stops the job if it runs and removes it, or returns
	// errdefs.ErrNotFound for unknown names.
	DeleteJob(ctx context.Context, req *DeleteJobRequest) (*DeleteJobResponse, error)
}

// PrepareArtifactRequest carries one deploy's project archive.
type PrepareArtifactRequest struct {
	// ProjectID is the project id: lower-case letters, digits and dashes.
	ProjectID string
	// DeployID is the deploy id, greater than zero.
	DeployID int64
	// Archive is the zip archive. Over gRPC it streams in chunks, so the
	// plugin reads it as it arrives and should not expect Seek.
	Archive io.Reader
}

// PrepareArtifactResponse describes a prepared artifact.
type PrepareArtifactResponse struct {
	// ArtifactRef is the reference CreateJob accepts in JobSpec.ArtifactRef.
	ArtifactRef string
	// ProjectType is the kind of project found, for example "scrapy".
	ProjectType string
	// Spiders lists the names of the project's spiders.
	Spiders []string
}

// Resources bounds what a job may use. Zero means "not set".
type Resources struct {
	CPURequestMillis   int64
	CPULimitMillis     int64
	MemoryRequestBytes int64
	MemoryLimitBytes   int64
}

// JobSpec describes a job to start.
type JobSpec struct {
	// Name is unique among the engine's jobs.
	Name string
	// ArtifactRef is a reference returned by PrepareArtifact.
	ArtifactRef string
	// Command is the program and its arguments.
	Command []string
	// Env holds the job's environment variables. Values may contain tokens:
	// never log them.
	Env map[string]string
	// Labels are kept with the job for ListJobs.
	Labels    map[string]string
	Resources Resources
	// MaxRuntime is the longest the job may run; zero means no limit.
	MaxRuntime time.Duration
}

// CreateJobRequest is a request to start a job.
type CreateJobRequest struct {
	Spec JobSpec
}

// CreateJobResponse returns the status of the job.
type CreateJobResponse struct {
	Job JobStatus
	// Created is false when a job with that name already existed.
	Created bool
}

// JobState is the stage of a job's life.
type JobState string

// Job states. PENDING and RUNNING are live; the others are final.
const (
	JobPending   JobState = "PENDING"
	JobRunning   JobState = "RUNNING"
	JobSucceeded JobState = "SUCCEEDED"
	JobFailed    JobState = "FAILED"
	JobStopped   JobState = "STOPPED"
)

// Final reports whether s is a state a job never leaves.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobStopped
}

// JobStatus is the engine's view of a job.
type JobStatus struct {
	Name  string
	State JobState
	// Reason explains the state in words, for example "exited with code 3".
	Reason string
	// ExitCode is the process's exit code when it is known, else 0.
	ExitCode int32
	Labels   map[string]string
	// StartedAt is zero until the job runs.
	StartedAt time.Time
	// FinishedAt is zero until the job reaches a final state.
	FinishedAt time.Time
}

// GetJobRequest names a job.
type GetJobRequest struct {
	Name string
}

// GetJobResponse returns a job's status.
type GetJobResponse struct {
	Job JobStatus
}

// ListJobsRequest selects jobs by labels.
type ListJobsRequest struct {
	// Labels must all be among a job's labels; empty selects every job.
	Labels map[string]string
}

// ListJobsResponse returns the selected jobs in no particular order.
type ListJobsResponse struct {
	Jobs []JobStatus
}

// StopJobRequest names the job to stop.
type StopJobRequest struct {
	Name string
	// Grace is the time between the polite stop signal and the forced kill;
	// zero means the engine's default.
	Grace time.Duration
}

// StopJobResponse returns the job's status after the stop request.
type StopJobResponse struct {
	Job JobStatus
}

// DeleteJobRequest names the job to delete.
type DeleteJobRequest struct {
	Name string
}

// DeleteJobResponse has no fields yet.
type DeleteJobResponse struct{}
