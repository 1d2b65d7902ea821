package engine

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Capabilities an engine lists in Info.Capabilities when it implements the matching optional
// interface. The host calls an optional method only when the capability is listed; a plugin
// built before a method existed answers Unimplemented, which the host treats as "absent".
const (
	// CapabilityWatchJobs: the engine implements JobWatcher.
	CapabilityWatchJobs = "watch_jobs"
	// CapabilityJobLogs: the engine implements LogStreamer.
	CapabilityJobLogs = "job_logs"
	// CapabilityCapacity: the engine implements CapacityReporter.
	CapabilityCapacity = "capacity"
	// CapabilityBuildImage: the engine implements ImageBuilder, and deploys go through
	// BuildImage instead of PrepareArtifact.
	CapabilityBuildImage = "build_image"
)

// Supports reports whether info lists capability. A host calls an optional
// method only when the plugin's Info supports its capability; a nil info
// supports nothing.
func Supports(info *pluginapi.Info, capability string) bool {
	return info != nil && slices.Contains(info.Capabilities, capability)
}

// JobWatcher streams job changes, so the host learns of them without polling.
type JobWatcher interface {
	// WatchJobs sends an event for every job whose labels contain req.Labels: first one per
	// existing job, then one per change, until ctx ends or send returns an error.
	WatchJobs(ctx context.Context, req *WatchJobsRequest, send func(JobEvent) error) error
}

// WatchJobsRequest selects the jobs to watch.
type WatchJobsRequest struct {
	Labels map[string]string
}

// JobEvent is a change of one job.
type JobEvent struct {
	Job JobStatus
	// Deleted is true when the job no longer exists on the engine.
	Deleted bool
}

// LogStreamer reads the output of a job's process.
type LogStreamer interface {
	// JobLogs writes the job's output to w, the last TailLines lines when TailLines > 0, and
	// keeps writing new output while the job runs when Follow is true. Unknown jobs give
	// errdefs.ErrNotFound.
	JobLogs(ctx context.Context, req *JobLogsRequest, w io.Writer) error
}

// JobLogsRequest selects a job's output.
type JobLogsRequest struct {
	Name      string
	Follow    bool
	TailLines int64
}

// CapacityReporter tells how much room the engine has for more jobs.
type CapacityReporter interface {
	Capacity(ctx context.Context, req *CapacityRequest) (*CapacityResponse, error)
}

// CapacityRequest asks for the engine's capacity.
type CapacityRequest struct{}

// CapacityResponse sums what the engine's nodes can give and what is already requested.
type CapacityResponse struct {
	Nodes                  int32
	AllocatableCPUMillis   int64
	AllocatableMemoryBytes int64
	RequestedCPUMillis     int64
	RequestedMemoryBytes   int64
}

// ImageBuilder builds a deploy into a container image on the engine's own infrastructure.
// The build runs asynchronously: it downloads the archive from ArchiveURL, builds and pushes
// Image, then runs estela-report-deploy from the new image, which reports the deploy's status
// and spiders to ReportURL. The host learns the outcome from that report.
type ImageBuilder interface {
	BuildImage(ctx context.Context, req *BuildImageRequest) (*BuildImageResponse, error)
}

// BuildImageRequest describes one image build.
type BuildImageRequest struct {
	ProjectID string
	DeployID  int64
	// Image is the reference to build and push, tagged per deploy so that every deploy's image
	// stays runnable.
	Image string
	// ArchiveURL serves the project zip to a GET with "Authorization: Token <ArchiveToken>".
	ArchiveURL   string
	ArchiveToken string
	// Registry holds the credentials to push Image with; empty when the registry needs none.
	Registry RegistryAuth
	// APIHost is the API's base URL for estela-report-deploy, and ReportToken its token.
	APIHost     string
	ReportToken string
	// Timeout bounds the whole build; zero means the engine's default.
	Timeout time.Duration
}

// RegistryAuth is a container registry login.
type RegistryAuth struct {
	Server   string
	Username string
	Secret   string
}

// BuildImageResponse names what was started.
type BuildImageResponse struct {
	// BuildName is the engine's name of the build (a Kubernetes Job, a container), for logs.
	BuildName string
	Image     string
}
