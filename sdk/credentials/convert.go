package credentials

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/estela-go/estela-go/sdk/pluginapi"
	credentialsv1 "github.com/estela-go/estela-go/sdk/proto/credentials/v1"
)

func infoToProto(info *pluginapi.Info) *credentialsv1.GetInfoResponse {
	return &credentialsv1.GetInfoResponse{
		Name:         info.Name,
		Version:      info.Version,
		ApiVersions:  info.APIVersions,
		Capabilities: info.Capabilities,
	}
}

func infoFromProto(resp *credentialsv1.GetInfoResponse) *pluginapi.Info {
	return &pluginapi.Info{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		APIVersions:  resp.GetApiVersions(),
		Capabilities: resp.GetCapabilities(),
	}
}

func diagnosticsToProto(diagnostics []pluginapi.Diagnostic) []*credentialsv1.Diagnostic {
	out := make([]*credentialsv1.Diagnostic, 0, len(diagnostics))
	for _, d := range diagnostics {
		severity := credentialsv1.Severity_SEVERITY_ERROR
		if d.Severity == pluginapi.SeverityWarning {
			severity = credentialsv1.Severity_SEVERITY_WARNING
		}
		out = append(out, &credentialsv1.Diagnostic{Severity: severity, Summary: d.Summary, Detail: d.Detail, Path: d.Path})
	}
	return out
}

// diagnosticsFromProto reads an unspecified severity as an error, so a
// diagnostic from a careless plugin never lets bad settings pass.
func diagnosticsFromProto(diagnostics []*credentialsv1.Diagnostic) []pluginapi.Diagnostic {
	var out []pluginapi.Diagnostic
	for _, d := range diagnostics {
		severity := pluginapi.SeverityError
		if d.GetSeverity() == credentialsv1.Severity_SEVERITY_WARNING {
			severity = pluginapi.SeverityWarning
		}
		out = append(out, pluginapi.Diagnostic{Severity: severity, Summary: d.GetSummary(), Detail: d.GetDetail(), Path: d.GetPath()})
	}
	return out
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
