package engine

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/estela-go/estela-go/sdk/pluginapi"
	enginev1 "github.com/estela-go/estela-go/sdk/proto/engine/v1"
)

func infoToProto(info *pluginapi.Info) *enginev1.GetInfoResponse {
	return &enginev1.GetInfoResponse{
		Name:         info.Name,
		Version:      info.Version,
		ApiVersions:  info.APIVersions,
		Capabilities: info.Capabilities,
	}
}

func infoFromProto(resp *enginev1.GetInfoResponse) *pluginapi.Info {
	return &pluginapi.Info{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		APIVersions:  resp.GetApiVersions(),
		Capabilities: resp.GetCapabilities(),
	}
}

func diagnosticsToProto(diagnostics []pluginapi.Diagnostic) []*enginev1.Diagnostic {
	out := make([]*enginev1.Diagnostic, 0, len(diagnostics))
	for _, d := range diagnostics {
		severity := enginev1.Severity_SEVERITY_ERROR
		if d.Severity == pluginapi.SeverityWarning {
			severity = enginev1.Severity_SEVERITY_WARNING
		}
		out = append(out, &enginev1.Diagnostic{Severity: severity, Summary: d.Summary, Detail: d.Detail, Path: d.Path})
	}
	return out
}

// diagnosticsFromProto reads an unspecified severity as an error, so a
// diagnostic from a careless plugin never lets bad settings pass.
func diagnosticsFromProto(diagnostics []*enginev1.Diagnostic) []pluginapi.Diagnostic {
	var out []pluginapi.Diagnostic
	for _, d := range diagnostics {
		severity := pluginapi.SeverityError
		if d.GetSeverity() == enginev1.Severity_SEVERITY_WARNING {
			severity = pluginapi.SeverityWarning
		}
		out = append(out, pluginapi.Diagnostic{Severity: severity, Summary: d.GetSummary(), Detail: d.GetDetail(), Path: d.GetPath()})
	}
	return out
}

func specToProto(spec JobSpec) *enginev1.JobSpec {
	return &enginev1.JobSpec{
		Name:        spec.Name,
		ArtifactRef: spec.ArtifactRef,
		Command:     spec.Command,
		Env:         spec.Env,
		Labels:      spec.Labels,
		Resources: &enginev1.Resources{
			CpuRequestMillis:   spec.Resources.CPURequestMillis,
			CpuLimitMillis:     spec.Resources.CPULimitMillis,
			MemoryRequestBytes: spec.Resources.MemoryRequestBytes,
			MemoryLimitBytes:   spec.Resources.MemoryLimitBytes,
		},
		MaxRuntime: durationToProto(spec.MaxRuntime),
	}
}

func specFromProto(spec *enginev1.JobSpec) JobSpec {
	resources := spec.GetResources()
	return JobSpec{
		Name:        spec.GetName(),
		ArtifactRef: spec.GetArtifactRef(),
		Command:     spec.GetCommand(),
		Env:         spec.GetEnv(),
		Labels:      spec.GetLabels(),
		Resources: Resources{
			CPURequestMillis:   resources.GetCpuRequestMillis(),
			CPULimitMillis:     resources.GetCpuLimitMillis(),
			MemoryRequestBytes: resources.GetMemoryRequestBytes(),
			MemoryLimitBytes:   resources.GetMemoryLimitBytes(),
		},
		MaxRuntime: durationFromProto(spec.GetMaxRuntime()),
	}
}

var stateToProto = map[JobState]enginev1.JobState{
	JobPending:   enginev1.JobState_JOB_STATE_PENDING,
	JobRunning:   enginev1.JobState_JOB_STATE_RUNNING,
	JobSucceeded: enginev1.JobState_JOB_STATE_SUCCEEDED,
	JobFailed:    enginev1.JobState_JOB_STATE_FAILED,
	JobStopped:   enginev1.JobState_JOB_STATE_STOPPED,
}

var stateFromProto = map[enginev1.JobState]JobState{
	enginev1.JobState_JOB_STATE_PENDING:   JobPending,
	enginev1.JobState_JOB_STATE_RUNNING:   JobRunning,
	enginev1.JobState_JOB_STATE_SUCCEEDED: JobSucceeded,
	enginev1.JobState_JOB_STATE_FAILED:    JobFailed,
	enginev1.JobState_JOB_STATE_STOPPED:   JobStopped,
}

// statusToProto fails on a state outside the JobState constants, because the
// wire has no way to carry it.
func statusToProto(job JobStatus) (*enginev1.JobStatus, error) {
	state, ok := stateToProto[job.State]
	if !ok {
		return nil, fmt.Errorf("job %q has invalid state %q", job.Name, job.State)
	}
	return &enginev1.JobStatus{
		Name:       job.Name,
		State:      state,
		Reason:     job.Reason,
		ExitCode:   job.ExitCode,
		Labels:     job.Labels,
		StartedAt:  timeToProto(job.StartedAt),
		FinishedAt: timeToProto(job.FinishedAt),
	}, nil
}

// statusFromProto maps a state this SDK does not know (from a newer plugin)
// to the empty JobState, which the host must treat as unknown.
func statusFromProto(job *enginev1.JobStatus) JobStatus {
	return JobStatus{
		Name:       job.GetName(),
		State:      stateFromProto[job.GetState()],
		Reason:     job.GetReason(),
		ExitCode:   job.GetExitCode(),
		Labels:     job.GetLabels(),
		StartedAt:  timeFromProto(job.GetStartedAt()),
		FinishedAt: timeFromProto(job.GetFinishedAt()),
	}
}

func durationToProto(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func durationFromProto(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func capacityToProto(resp *CapacityResponse) *enginev1.CapacityResponse {
	return &enginev1.CapacityResponse{
		Nodes:                  resp.Nodes,
		AllocatableCpuMillis:   resp.AllocatableCPUMillis,
		AllocatableMemoryBytes: resp.AllocatableMemoryBytes,
		RequestedCpuMillis:     resp.RequestedCPUMillis,
		RequestedMemoryBytes:   resp.RequestedMemoryBytes,
	}
}

func capacityFromProto(resp *enginev1.CapacityResponse) *CapacityResponse {
	return &CapacityResponse{
		Nodes:                  resp.GetNodes(),
		AllocatableCPUMillis:   resp.GetAllocatableCpuMillis(),
		AllocatableMemoryBytes: resp.GetAllocatableMemoryBytes(),
		RequestedCPUMillis:     resp.GetRequestedCpuMillis(),
		RequestedMemoryBytes:   resp.GetRequestedMemoryBytes(),
	}
}

// buildImageToProto leaves the registry unset when it has no field set, as
// the contract describes a registry that needs no login.
func buildImageToProto(req *BuildImageRequest) *enginev1.BuildImageRequest {
	out := &enginev1.BuildImageRequest{
		ProjectId:    req.ProjectID,
		DeployId:     req.DeployID,
		Image:        req.Image,
		ArchiveUrl:   req.ArchiveURL,
		ArchiveToken: req.ArchiveToken,
		ApiHost:      req.APIHost,
		ReportToken:  req.ReportToken,
		Timeout:      durationToProto(req.Timeout),
	}
	if req.Registry != (RegistryAuth{}) {
		out.Registry = &enginev1.RegistryAuth{
			Server:   req.Registry.Server,
			Username: req.Registry.Username,
			Secret:   req.Registry.Secret,
		}
	}
	return out
}

func buildImageFromProto(req *enginev1.BuildImageRequest) *BuildImageRequest {
	registry := req.GetRegistry()
	return &BuildImageRequest{
		ProjectID:    req.GetProjectId(),
		DeployID:     req.GetDeployId(),
		Image:        req.GetImage(),
		ArchiveURL:   req.GetArchiveUrl(),
		ArchiveToken: req.GetArchiveToken(),
		Registry: RegistryAuth{
			Server:   registry.GetServer(),
			Username: registry.GetUsername(),
			Secret:   registry.GetSecret(),
		},
		APIHost:     req.GetApiHost(),
		ReportToken: req.GetReportToken(),
		Timeout:     durationFromProto(req.GetTimeout()),
	}
}
