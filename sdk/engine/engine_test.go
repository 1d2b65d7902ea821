package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// fakeEngine echoes its requests back in its responses, so a test can check
// that every field crossed the boundary. When err is set, every method
// returns it instead.
type fakeEngine struct {
	err error
	// block makes GetJob wait for its context to end; canceled receives
	// the context error it saw.
	block    bool
	canceled chan error
	// badState makes GetJob return a state outside the JobState constants.
	badState bool
}

var startedAt = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

func (f *fakeEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &pluginapi.Info{Name: "fake", Version: "1.2.3", APIVersions: []int32{1}, Capabilities: []string{"logs"}}, nil
}

func (f *fakeEngine) Configure(_ context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	resp := &pluginapi.ConfigureResponse{}
	resp.AddError("data_dir", "missing", string(req.Config))
	resp.AddWarning("python", "old", "")
	return resp, nil
}

// PrepareArtifact returns the archive's size and SHA-256 as ArtifactRef.
func (f *fakeEngine) PrepareArtifact(_ context.Context, req *PrepareArtifactRequest) (*PrepareArtifactResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	h := sha256.New()
	n, err := io.Copy(h, req.Archive)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	ref := fmt.Sprintf("%s/%d/%d/%s", req.ProjectID, req.DeployID, n, hex.EncodeToString(h.Sum(nil)))
	return &PrepareArtifactResponse{ArtifactRef: ref, ProjectType: "scrapy", Spiders: []string{"a", "b"}}, nil
}

func (f *fakeEngine) CreateJob(_ context.Context, req *CreateJobRequest) (*CreateJobResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	// Reason carries what the plugin received, for the test to compare.
	reason := fmt.Sprintf("%s %v %v %v %+v %v", req.Spec.ArtifactRef, req.Spec.Command, req.Spec.Env,
		req.Spec.Labels, req.Spec.Resources, req.Spec.MaxRuntime)
	job := JobStatus{Name: req.Spec.Name, State: JobRunning, Reason: reason, Labels: req.Spec.Labels, StartedAt: startedAt}
	return &CreateJobResponse{Job: job, Created: true}, nil
}

func (f *fakeEngine) GetJob(ctx context.Context, req *GetJobRequest) (*GetJobResponse, error) {
	if f.block {
		<-ctx.Done()
		f.canceled <- ctx.Err()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	state := JobFailed
	if f.badState {
		state = "EXPLODED"
	}
	return &GetJobResponse{Job: JobStatus{
		Name: req.Name, State: state, Reason: "exited with code 3", ExitCode: 3,
		StartedAt: startedAt, FinishedAt: startedAt.Add(time.Minute),
	}}, nil
}

func (f *fakeEngine) ListJobs(_ context.Context, req *ListJobsRequest) (*ListJobsResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &ListJobsResponse{Jobs: []JobStatus{
		{Name: "one", State: JobPending, Labels: req.Labels},
		{Name: "two", State: JobSucceeded, Labels: req.Labels, StartedAt: startedAt, FinishedAt: startedAt},
	}}, nil
}

func (f *fakeEngine) StopJob(_ context.Context, req *StopJobRequest) (*StopJobResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &StopJobResponse{Job: JobStatus{Name: req.Name, State: JobStopped, Reason: req.Grace.String()}}, nil
}

func (f *fakeEngine) DeleteJob(context.Context, *DeleteJobRequest) (*DeleteJobResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &DeleteJobResponse{}, nil
}

// connect serves impl over an in-process gRPC connection and returns the
// host's Engine.
func connect(t *testing.T, impl Engine) Engine {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &Plugin{Impl: impl}})
	// Close also stops the server, through go-plugin's controller service;
	// stopping it here too would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense engine: %v", err)
	}
	return raw.(Engine)
}

func TestGetInfoRoundTrip(t *testing.T) {
	t.Parallel()
	got, err := connect(t, &fakeEngine{}).GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	want := &pluginapi.Info{Name: "fake", Version: "1.2.3", APIVersions: []int32{1}, Capabilities: []string{"logs"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetInfo mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigureRoundTrip(t *testing.T) {
	t.Parallel()
	got, err := connect(t, &fakeEngine{}).Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	want := &pluginapi.ConfigureResponse{Diagnostics: []pluginapi.Diagnostic{
		{Severity: pluginapi.SeverityError, Summary: "missing", Detail: `{"a":1}`, Path: "data_dir"},
		{Severity: pluginapi.SeverityWarning, Summary: "old", Path: "python"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Configure mismatch (-want +got):\n%s", diff)
	}
	if !errors.Is(got.Err(), errdefs.ErrInvalid) {
		t.Errorf("Err() = %v, want ErrInvalid", got.Err())
	}
}

func randomBytes(size int) []byte {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, uint64(size)))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func TestPrepareArtifactStreamsArchive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"small", 10},
		{"several megabytes", 5<<20 + 17},
	}
	eng := connect(t, &fakeEngine{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := randomBytes(tt.size)
			sum := sha256.Sum256(data)
			got, err := eng.PrepareArtifact(t.Context(), &PrepareArtifactRequest{ProjectID: "p-1", DeployID: 42, Archive: bytes.NewReader(data)})
			if err != nil {
				t.Fatalf("PrepareArtifact: %v", err)
			}
			want := &PrepareArtifactResponse{
				ArtifactRef: fmt.Sprintf("p-1/42/%d/%s", tt.size, hex.EncodeToString(sum[:])),
				ProjectType: "scrapy",
				Spiders:     []string{"a", "b"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("PrepareArtifact mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// earlyFailEngine rejects the archive after its first bytes, before the
// client has sent it all.
type earlyFailEngine struct{ fakeEngine }

func (e *earlyFailEngine) PrepareArtifact(_ context.Context, req *PrepareArtifactRequest) (*PrepareArtifactResponse, error) {
	if _, err := req.Archive.Read(make([]byte, 10)); err != nil {
		return nil, err
	}
	return nil, errdefs.Invalid("zip: not a valid zip file")
}

func TestPrepareArtifactEarlyErrorReachesClient(t *testing.T) {
	t.Parallel()
	eng := connect(t, &earlyFailEngine{})
	_, err := eng.PrepareArtifact(t.Context(), &PrepareArtifactRequest{ProjectID: "p", DeployID: 1, Archive: bytes.NewReader(randomBytes(8 << 20))})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("error = %v, want ErrInvalid", err)
	}
	if err.Error() != "zip: not a valid zip file" {
		t.Errorf("message = %q", err.Error())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestPrepareArtifactArchiveReadError(t *testing.T) {
	t.Parallel()
	eng := connect(t, &fakeEngine{})
	_, err := eng.PrepareArtifact(t.Context(), &PrepareArtifactRequest{ProjectID: "p", DeployID: 1, Archive: failingReader{}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Errorf("error = %v, want the reader's error", err)
	}
	_, err = eng.PrepareArtifact(t.Context(), &PrepareArtifactRequest{ProjectID: "p", DeployID: 1})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("nil archive: error = %v, want ErrInvalid", err)
	}
}

func TestCreateJobRoundTrip(t *testing.T) {
	t.Parallel()
	spec := JobSpec{
		Name:        "job-1",
		ArtifactRef: "/srv/a",
		Command:     []string{"estela-crawl", "--x"},
		Env:         map[string]string{"TOKEN": "t"},
		Labels:      map[string]string{"project": "p"},
		Resources:   Resources{CPURequestMillis: 1, CPULimitMillis: 2, MemoryRequestBytes: 3, MemoryLimitBytes: 4},
		MaxRuntime:  90 * time.Second,
	}
	got, err := connect(t, &fakeEngine{}).CreateJob(t.Context(), &CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	want := &CreateJobResponse{Created: true, Job: JobStatus{
		Name:      "job-1",
		State:     JobRunning,
		Reason:    "/srv/a [estela-crawl --x] map[TOKEN:t] map[project:p] {CPURequestMillis:1 CPULimitMillis:2 MemoryRequestBytes:3 MemoryLimitBytes:4} 1m30s",
		Labels:    map[string]string{"project": "p"},
		StartedAt: startedAt,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateJob mismatch (-want +got):\n%s", diff)
	}
}

func TestJobQueriesRoundTrip(t *testing.T) {
	t.Parallel()
	eng := connect(t, &fakeEngine{})
	tests := []struct {
		name string
		call func(context.Context) (any, error)
		want any
	}{
		{
			"get",
			func(ctx context.Context) (any, error) { return eng.GetJob(ctx, &GetJobRequest{Name: "j"}) },
			&GetJobResponse{Job: JobStatus{Name: "j", State: JobFailed, Reason: "exited with code 3", ExitCode: 3,
				StartedAt: startedAt, FinishedAt: startedAt.Add(time.Minute)}},
		},
		{
			"list",
			func(ctx context.Context) (any, error) {
				return eng.ListJobs(ctx, &ListJobsRequest{Labels: map[string]string{"k": "v"}})
			},
			&ListJobsResponse{Jobs: []JobStatus{
				{Name: "one", State: JobPending, Labels: map[string]string{"k": "v"}},
				{Name: "two", State: JobSucceeded, Labels: map[string]string{"k": "v"}, StartedAt: startedAt, FinishedAt: startedAt},
			}},
		},
		{
			"stop",
			func(ctx context.Context) (any, error) {
				return eng.StopJob(ctx, &StopJobRequest{Name: "j", Grace: 1500 * time.Millisecond})
			},
			&StopJobResponse{Job: JobStatus{Name: "j", State: JobStopped, Reason: "1.5s"}},
		},
		{
			"delete",
			func(ctx context.Context) (any, error) { return eng.DeleteJob(ctx, &DeleteJobRequest{Name: "j"}) },
			&DeleteJobResponse{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.call(t.Context())
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTypedErrorsCrossBoundary(t *testing.T) {
	t.Parallel()
	sentinels := []error{errdefs.ErrNotFound, errdefs.ErrInvalid, errdefs.ErrUnavailable, errdefs.ErrConflict, errdefs.ErrUnimplemented}
	for _, sentinel := range sentinels {
		t.Run(sentinel.Error(), func(t *testing.T) {
			t.Parallel()
			eng := connect(t, &fakeEngine{err: fmt.Errorf("job x: %w", sentinel)})
			calls := map[string]func(context.Context) error{
				"GetInfo": func(ctx context.Context) error { _, err := eng.GetInfo(ctx); return err },
				"Configure": func(ctx context.Context) error {
					_, err := eng.Configure(ctx, &pluginapi.ConfigureRequest{})
					return err
				},
				"PrepareArtifact": func(ctx context.Context) error {
					_, err := eng.PrepareArtifact(ctx, &PrepareArtifactRequest{Archive: bytes.NewReader(nil)})
					return err
				},
				"CreateJob": func(ctx context.Context) error { _, err := eng.CreateJob(ctx, &CreateJobRequest{}); return err },
				"GetJob":    func(ctx context.Context) error { _, err := eng.GetJob(ctx, &GetJobRequest{}); return err },
				"ListJobs":  func(ctx context.Context) error { _, err := eng.ListJobs(ctx, &ListJobsRequest{}); return err },
				"StopJob":   func(ctx context.Context) error { _, err := eng.StopJob(ctx, &StopJobRequest{}); return err },
				"DeleteJob": func(ctx context.Context) error { _, err := eng.DeleteJob(ctx, &DeleteJobRequest{}); return err },
			}
			for name, call := range calls {
				err := call(t.Context())
				if !errors.Is(err, sentinel) {
					t.Errorf("%s: error = %v, want %v", name, err, sentinel)
				}
				if errors.Is(err, errdefs.ErrUnreachable) {
					t.Errorf("%s: plugin error reads as unreachable: %v", name, err)
				}
				if err != nil && err.Error() != "job x: "+sentinel.Error() {
					t.Errorf("%s: message = %q", name, err.Error())
				}
			}
		})
	}
}

func TestInvalidStateIsInternalError(t *testing.T) {
	t.Parallel()
	_, err := connect(t, &fakeEngine{badState: true}).GetJob(t.Context(), &GetJobRequest{Name: "j"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`invalid state "EXPLODED"`)) {
		t.Errorf("error = %v, want one naming the invalid state", err)
	}
}

func TestCancellationReachesPlugin(t *testing.T) {
	t.Parallel()
	fake := &fakeEngine{block: true, canceled: make(chan error, 1)}
	eng := connect(t, fake)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := eng.GetJob(ctx, &GetJobRequest{Name: "j"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("client error = %v, want context.DeadlineExceeded", err)
	}
	select {
	case got := <-fake.canceled:
		if got == nil {
			t.Error("plugin context ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("plugin context was not canceled")
	}
}

func TestDeadPluginIsUnreachable(t *testing.T) {
	t.Parallel()
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &Plugin{Impl: &fakeEngine{}}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense engine: %v", err)
	}
	server.Stop()
	_, err = raw.(Engine).GetJob(t.Context(), &GetJobRequest{Name: "j"})
	if !errors.Is(err, errdefs.ErrUnreachable) {
		t.Errorf("error = %v, want ErrUnreachable", err)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("error = %v, want ErrUnavailable", err)
	}
}
