package credentials

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// memoryProvider keeps archives in memory. When err is set, every method
// returns it instead.
type memoryProvider struct {
	err error

	mu       sync.Mutex
	archives map[string][]byte
}

func archiveKey(projectID string, deployID int64) string {
	return fmt.Sprintf("%s/%d", projectID, deployID)
}

var expiresAt = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func (m *memoryProvider) GetInfo(context.Context) (*pluginapi.Info, error) {
	if m.err != nil {
		return nil, m.err
	}
	return &pluginapi.Info{Name: "memory", Version: "0.0.1", APIVersions: []int32{1}}, nil
}

func (m *memoryProvider) Configure(_ context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	if m.err != nil {
		return nil, m.err
	}
	resp := &pluginapi.ConfigureResponse{}
	resp.AddWarning("registry.server", "unused", string(req.Config))
	return resp, nil
}

func (m *memoryProvider) RegistryAuth(_ context.Context, req *RegistryAuthRequest) (*RegistryAuthResponse, error) {
	if m.err != nil {
		return nil, m.err
	}
	if req.Registry != "registry.test" {
		return nil, errdefs.NotFound("no credentials for registry %q", req.Registry)
	}
	return &RegistryAuthResponse{Server: req.Registry, Username: "u", Secret: "s", ExpiresAt: expiresAt}, nil
}

func (m *memoryProvider) PutProject(_ context.Context, req *PutProjectRequest) (*PutProjectResponse, error) {
	if m.err != nil {
		return nil, m.err
	}
	data, err := io.ReadAll(req.Archive)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.archives == nil {
		m.archives = map[string][]byte{}
	}
	m.archives[archiveKey(req.ProjectID, req.DeployID)] = data
	sum := sha256.Sum256(data)
	return &PutProjectResponse{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func (m *memoryProvider) GetProject(_ context.Context, req *GetProjectRequest, w io.Writer) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	data, ok := m.archives[archiveKey(req.ProjectID, req.DeployID)]
	m.mu.Unlock()
	if !ok {
		return errdefs.NotFound("project %s deploy %d not found", req.ProjectID, req.DeployID)
	}
	_, err := w.Write(data)
	return err
}

func (m *memoryProvider) DeleteProject(_ context.Context, req *DeleteProjectRequest) (*DeleteProjectResponse, error) {
	if m.err != nil {
		return nil, m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.archives, archiveKey(req.ProjectID, req.DeployID))
	return &DeleteProjectResponse{}, nil
}

// connect serves impl over an in-process gRPC connection and returns the
// host's Provider.
func connect(t *testing.T, impl Provider) Provider {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &Plugin{Impl: impl}})
	// Close also stops the server, through go-plugin's controller service;
	// stopping it here too would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatalf("dispense credentials: %v", err)
	}
	return raw.(Provider)
}

func randomBytes(size int) []byte {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(3, uint64(size)))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func TestGetInfoAndConfigureRoundTrip(t *testing.T) {
	t.Parallel()
	provider := connect(t, &memoryProvider{})
	info, err := provider.GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if diff := cmp.Diff(&pluginapi.Info{Name: "memory", Version: "0.0.1", APIVersions: []int32{1}}, info); diff != "" {
		t.Errorf("GetInfo mismatch (-want +got):\n%s", diff)
	}
	resp, err := provider.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	want := &pluginapi.ConfigureResponse{Diagnostics: []pluginapi.Diagnostic{
		{Severity: pluginapi.SeverityWarning, Summary: "unused", Detail: "{}", Path: "registry.server"},
	}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("Configure mismatch (-want +got):\n%s", diff)
	}
}

func TestRegistryAuthRoundTrip(t *testing.T) {
	t.Parallel()
	provider := connect(t, &memoryProvider{})
	got, err := provider.RegistryAuth(t.Context(), &RegistryAuthRequest{Registry: "registry.test"})
	if err != nil {
		t.Fatalf("RegistryAuth: %v", err)
	}
	want := &RegistryAuthResponse{Server: "registry.test", Username: "u", Secret: "s", ExpiresAt: expiresAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RegistryAuth mismatch (-want +got):\n%s", diff)
	}
	_, err = provider.RegistryAuth(t.Context(), &RegistryAuthRequest{Registry: "other"})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown registry: error = %v, want ErrNotFound", err)
	}
}

func TestProjectArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		deployID int64
		size     int
	}{
		{"empty", 1, 0},
		{"small", 2, 100},
		{"several megabytes", 3, 6<<20 + 5},
	}
	provider := connect(t, &memoryProvider{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := randomBytes(tt.size)
			sum := sha256.Sum256(data)
			put, err := provider.PutProject(t.Context(), &PutProjectRequest{ProjectID: "p", DeployID: tt.deployID, Archive: bytes.NewReader(data)})
			if err != nil {
				t.Fatalf("PutProject: %v", err)
			}
			if diff := cmp.Diff(&PutProjectResponse{Size: int64(tt.size), SHA256: hex.EncodeToString(sum[:])}, put); diff != "" {
				t.Errorf("PutProject mismatch (-want +got):\n%s", diff)
			}

			var got bytes.Buffer
			if err := provider.GetProject(t.Context(), &GetProjectRequest{ProjectID: "p", DeployID: tt.deployID}, &got); err != nil {
				t.Fatalf("GetProject: %v", err)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Errorf("GetProject returned %d bytes differing from the %d stored", got.Len(), len(data))
			}

			if _, err := provider.DeleteProject(t.Context(), &DeleteProjectRequest{ProjectID: "p", DeployID: tt.deployID}); err != nil {
				t.Fatalf("DeleteProject: %v", err)
			}
			err = provider.GetProject(t.Context(), &GetProjectRequest{ProjectID: "p", DeployID: tt.deployID}, io.Discard)
			if !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("GetProject after delete: error = %v, want ErrNotFound", err)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestGetProjectWriterError(t *testing.T) {
	t.Parallel()
	provider := connect(t, &memoryProvider{})
	if _, err := provider.PutProject(t.Context(), &PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: bytes.NewReader(randomBytes(1 << 20))}); err != nil {
		t.Fatalf("PutProject: %v", err)
	}
	err := provider.GetProject(t.Context(), &GetProjectRequest{ProjectID: "p", DeployID: 1}, failingWriter{})
	if err == nil || err.Error() != "write archive: disk full" {
		t.Errorf("error = %v, want the writer's error", err)
	}
}

func TestTypedErrorsCrossBoundary(t *testing.T) {
	t.Parallel()
	sentinels := []error{errdefs.ErrNotFound, errdefs.ErrInvalid, errdefs.ErrUnavailable, errdefs.ErrConflict, errdefs.ErrUnimplemented}
	for _, sentinel := range sentinels {
		t.Run(sentinel.Error(), func(t *testing.T) {
			t.Parallel()
			provider := connect(t, &memoryProvider{err: fmt.Errorf("project p: %w", sentinel)})
			calls := map[string]func(context.Context) error{
				"GetInfo": func(ctx context.Context) error { _, err := provider.GetInfo(ctx); return err },
				"Configure": func(ctx context.Context) error {
					_, err := provider.Configure(ctx, &pluginapi.ConfigureRequest{})
					return err
				},
				"RegistryAuth": func(ctx context.Context) error {
					_, err := provider.RegistryAuth(ctx, &RegistryAuthRequest{})
					return err
				},
				"PutProject": func(ctx context.Context) error {
					_, err := provider.PutProject(ctx, &PutProjectRequest{Archive: bytes.NewReader(randomBytes(1 << 20))})
					return err
				},
				"GetProject": func(ctx context.Context) error {
					return provider.GetProject(ctx, &GetProjectRequest{}, io.Discard)
				},
				"DeleteProject": func(ctx context.Context) error {
					_, err := provider.DeleteProject(ctx, &DeleteProjectRequest{})
					return err
				},
			}
			for name, call := range calls {
				err := call(t.Context())
				if !errors.Is(err, sentinel) {
					t.Errorf("%s: error = %v, want %v", name, err, sentinel)
				}
				if err != nil && err.Error() != "project p: "+sentinel.Error() {
					t.Errorf("%s: message = %q", name, err.Error())
				}
			}
		})
	}
}

// blockingProvider blocks GetProject until its context ends.
type blockingProvider struct {
	memoryProvider
	canceled chan error
}

func (b *blockingProvider) GetProject(ctx context.Context, _ *GetProjectRequest, _ io.Writer) error {
	<-ctx.Done()
	b.canceled <- ctx.Err()
	return ctx.Err()
}

func TestCancellationReachesPlugin(t *testing.T) {
	t.Parallel()
	fake := &blockingProvider{canceled: make(chan error, 1)}
	provider := connect(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := provider.GetProject(ctx, &GetProjectRequest{ProjectID: "p", DeployID: 1}, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
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
