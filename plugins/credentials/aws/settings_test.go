package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// diagnosticPaths returns the paths of the diagnostics of one severity.
func diagnosticPaths(resp *pluginapi.ConfigureResponse, severity pluginapi.Severity) []string {
	var paths []string
	for _, d := range resp.Diagnostics {
		if d.Severity == severity {
			paths = append(paths, d.Path)
		}
	}
	return paths
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		config   string
		errors   []string
		warnings []string
	}{
		{"minimal", `{"bucket":"b-1","region":"eu-west-1"}`, nil, nil},
		{"custom endpoint without region", `{"bucket":"b-1","endpoint":"http://127.0.0.1:9000"}`, nil, nil},
		{"full", `{"bucket":"b.1","prefix":"a/","region":"eu-west-1","endpoint":"https://s3.test","use_path_style":false,"ecr":{"registry_id":"123456789012","region":"us-east-1","endpoint":"https://ecr.test"}}`, nil, nil},
		{"empty input", ``, []string{"bucket"}, nil},
		{"missing bucket", `{"region":"eu-west-1"}`, []string{"bucket"}, nil},
		{"not an object", `[1]`, []string{""}, nil},
		{"invalid bucket", `{"bucket":"Bad_Bucket","region":"eu-west-1"}`, []string{"bucket"}, nil},
		{"bucket not a string", `{"bucket":5}`, []string{"bucket"}, nil},
		{"path style not a boolean", `{"bucket":"b-1","use_path_style":"yes"}`, []string{"use_path_style"}, nil},
		{"nested wrong type", `{"bucket":"b-1","ecr":{"region":3}}`, []string{"ecr.region"}, nil},
		{"unknown keys", `{"bucket":"b-1","region":"eu-west-1","colour":1,"ecr":{"port":1}}`, []string{"colour", "ecr.port"}, nil},
		{"endpoint without scheme", `{"bucket":"b-1","endpoint":"minio:9000"}`, []string{"endpoint"}, nil},
		{"ecr endpoint not http", `{"bucket":"b-1","region":"eu-west-1","ecr":{"endpoint":"ftp://ecr.test"}}`, []string{"ecr.endpoint"}, nil},
		{"invalid registry id", `{"bucket":"b-1","region":"eu-west-1","ecr":{"registry_id":"12ab"}}`, []string{"ecr.registry_id"}, nil},
		{"prefix with leading slash", `{"bucket":"b-1","region":"eu-west-1","prefix":"/projects/"}`, []string{"prefix"}, nil},
		{"prefix without trailing slash", `{"bucket":"b-1","region":"eu-west-1","prefix":"projects"}`, nil, []string{"prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := testProvider()
			resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(tt.config)})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if diff := cmp.Diff(tt.errors, diagnosticPaths(resp, pluginapi.SeverityError)); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, diagnosticPaths(resp, pluginapi.SeverityWarning)); diff != "" {
				t.Errorf("warning paths mismatch (-want +got):\n%s", diff)
			}
			_, err = p.current()
			if configured := err == nil; configured != (tt.errors == nil) {
				t.Errorf("configured = %v, want %v", configured, tt.errors == nil)
			}
		})
	}
}

func TestConfigureMissingRegion(t *testing.T) {
	t.Parallel()
	if os.Getenv("AWS_REGION") != "" || os.Getenv("AWS_DEFAULT_REGION") != "" {
		t.Skip("AWS_REGION or AWS_DEFAULT_REGION is set in the environment")
	}
	resp, err := testProvider().Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"bucket":"b-1"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if diff := cmp.Diff([]string{"region"}, diagnosticPaths(resp, pluginapi.SeverityError)); diff != "" {
		t.Errorf("error paths mismatch (-want +got):\n%s", diff)
	}
}

func TestInvalidSettingsKeepPrevious(t *testing.T) {
	t.Parallel()
	p := testProvider()
	configure(t, p, map[string]any{"bucket": "first", "region": "eu-west-1"})
	resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"bucket":""}`)})
	if err != nil || !resp.HasErrors() {
		t.Fatalf("Configure with an empty bucket = %+v, %v; want error diagnostics", resp, err)
	}
	st, err := p.current()
	if err != nil {
		t.Fatalf("current: %v", err)
	}
	if st.bucket != "first" {
		t.Errorf("bucket = %q, want the previous %q", st.bucket, "first")
	}
}

func TestSettingsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		config        string
		wantPrefix    string
		wantPathStyle bool
	}{
		{"aws", `{}`, "projects/", false},
		{"custom endpoint", `{"endpoint":"http://minio:9000"}`, "projects/", true},
		{"endpoint with virtual hosts", `{"endpoint":"http://minio:9000","use_path_style":false}`, "projects/", false},
		{"path style on aws", `{"use_path_style":true}`, "projects/", true},
		{"empty prefix", `{"prefix":""}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s settings
			if err := json.Unmarshal([]byte(tt.config), &s); err != nil {
				t.Fatal(err)
			}
			if got := s.prefix(); got != tt.wantPrefix {
				t.Errorf("prefix = %q, want %q", got, tt.wantPrefix)
			}
			if got := s.usePathStyle(); got != tt.wantPathStyle {
				t.Errorf("usePathStyle = %v, want %v", got, tt.wantPathStyle)
			}
		})
	}
}
