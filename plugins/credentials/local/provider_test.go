package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// configured returns a provider configured with data_dir in a temporary
// directory, plus the extra settings given.
func configured(t *testing.T, extra map[string]any) (*provider, string) {
	t.Helper()
	dataDir := t.TempDir()
	config := map[string]any{"data_dir": dataDir}
	for k, v := range extra {
		config[k] = v
	}
	raw, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(hclog.NewNullLogger())
	resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
	return p, dataDir
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		paths  []string
	}{
		{"valid", `{"data_dir":"DIR"}`, nil},
		{"valid with registry", `{"data_dir":"DIR","registry":{"server":"r","username":"u","password":"p"}}`, nil},
		{"empty input", ``, []string{"data_dir"}},
		{"missing data dir", `{}`, []string{"data_dir"}},
		{"not an object", `[1]`, []string{""}},
		{"wrong type", `{"data_dir":5}`, []string{"data_dir"}},
		{"unknown keys", `{"data_dir":"DIR","colour":1,"registry":{"server":"r","username":"u","password":"p","port":1}}`, []string{"colour", "registry.port"}},
		{"incomplete registry", `{"data_dir":"DIR","registry":{"server":"r"}}`, []string{"registry.username", "registry.password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			config := strings.ReplaceAll(tt.config, "DIR", t.TempDir())
			p := newProvider(hclog.NewNullLogger())
			resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(config)})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			var paths []string
			for _, d := range resp.Diagnostics {
				if d.Severity == pluginapi.SeverityError {
					paths = append(paths, d.Path)
				}
			}
			if diff := cmp.Diff(tt.paths, paths); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s", diff)
			}
			_, err = p.current()
			if configuredOK := err == nil; configuredOK != (tt.paths == nil) {
				t.Errorf("configured = %v, want %v", configuredOK, tt.paths == nil)
			}
		})
	}
}

func TestPasswordNeverInDiagnostics(t *testing.T) {
	t.Parallel()
	p := newProvider(hclog.NewNullLogger())
	config := `{"data_dir":"` + t.TempDir() + `","registry":{"password":"hunter2-secret"}}`
	resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(config)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if !resp.HasErrors() {
		t.Fatal("incomplete registry accepted")
	}
	if text := fmtDiagnostics(resp); strings.Contains(text, "hunter2") {
		t.Errorf("diagnostics contain the password: %s", text)
	}
}

func fmtDiagnostics(resp *pluginapi.ConfigureResponse) string {
	raw, _ := json.Marshal(resp)
	return string(raw)
}

func TestCallsBeforeConfigureAreUnavailable(t *testing.T) {
	t.Parallel()
	p := newProvider(hclog.NewNullLogger())
	_, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("RegistryAuth error = %v, want ErrUnavailable", err)
	}
	err = p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: "p", DeployID: 1}, io.Discard)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetProject error = %v, want ErrUnavailable", err)
	}
}

func TestRegistryAuth(t *testing.T) {
	t.Parallel()
	registry := map[string]any{"server": "registry.test:5000", "username": "bot", "password": "pw"}
	withRegistry, _ := configured(t, map[string]any{"registry": registry})
	without, _ := configured(t, nil)
	tests := []struct {
		name     string
		p        *provider
		registry string
		want     *credentials.RegistryAuthResponse
		wantErr  error
	}{
		{"default registry", withRegistry, "", &credentials.RegistryAuthResponse{Server: "registry.test:5000", Username: "bot", Secret: "pw"}, nil},
		{"named registry", withRegistry, "registry.test:5000", &credentials.RegistryAuthResponse{Server: "registry.test:5000", Username: "bot", Secret: "pw"}, nil},
		{"other registry", withRegistry, "docker.io", nil, errdefs.ErrNotFound},
		{"none configured", without, "", nil, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{Registry: tt.registry})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RegistryAuth mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPutGetDeleteProject(t *testing.T) {
	t.Parallel()
	p, dataDir := configured(t, nil)
	data := bytes.Repeat([]byte("zipdata"), 100_000)
	sum := sha256.Sum256(data)

	put, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "proj-1", DeployID: 7, Archive: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutProject: %v", err)
	}
	want := &credentials.PutProjectResponse{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	if diff := cmp.Diff(want, put); diff != "" {
		t.Errorf("PutProject mismatch (-want +got):\n%s", diff)
	}
	stored, err := os.ReadFile(filepath.Join(dataDir, "projects", "proj-1", "7.zip"))
	if err != nil || !bytes.Equal(stored, data) {
		t.Errorf("stored file differs from the archive (read error %v)", err)
	}

	var got bytes.Buffer
	if err := p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: "proj-1", DeployID: 7}, &got); err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", got.Len(), len(data))
	}

	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	err = p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: "proj-1", DeployID: 7}, io.Discard)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Errorf("second DeleteProject: %v", err)
	}
}

func TestDeleteAllDeploys(t *testing.T) {
	t.Parallel()
	p, dataDir := configured(t, nil)
	for _, deployID := range []int64{1, 2} {
		if _, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: deployID, Archive: strings.NewReader("x")}); err != nil {
			t.Fatalf("PutProject %d: %v", deployID, err)
		}
	}
	if _, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "other", DeployID: 1, Archive: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutProject other: %v", err)
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "projects", "p")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("project directory still there: %v", err)
	}
	if err := p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: "other", DeployID: 1}, io.Discard); err != nil {
		t.Errorf("other project was deleted too: %v", err)
	}
}

type failAfter struct{ n int }

func (f *failAfter) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(b), f.n)
	f.n -= n
	return n, nil
}

func TestFailedPutLeavesNoFile(t *testing.T) {
	t.Parallel()
	p, dataDir := configured(t, nil)
	_, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: &failAfter{n: 1000}})
	if err == nil {
		t.Fatal("PutProject succeeded with a failing archive reader")
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "projects", "p"))
	if err != nil {
		t.Fatalf("read project directory: %v", err)
	}
	if len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func TestInvalidIDs(t *testing.T) {
	t.Parallel()
	p, _ := configured(t, nil)
	tests := []struct {
		name      string
		projectID string
		deployID  int64
	}{
		{"empty project", "", 1},
		{"upper case", "Proj", 1},
		{"traversal", "../x", 1},
		{"slash", "a/b", 1},
		{"zero deploy", "p", 0},
		{"negative deploy", "p", -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: tt.projectID, DeployID: tt.deployID, Archive: strings.NewReader("x")})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("PutProject error = %v, want ErrInvalid", err)
			}
			err = p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: tt.projectID, DeployID: tt.deployID}, io.Discard)
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("GetProject error = %v, want ErrInvalid", err)
			}
		})
	}
	_, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "../x"})
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("DeleteProject error = %v, want ErrInvalid", err)
	}
}

func TestGetInfo(t *testing.T) {
	t.Parallel()
	got, err := newProvider(hclog.NewNullLogger()).GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	want := &pluginapi.Info{Name: "local", Version: version, APIVersions: []int32{1}}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("GetInfo mismatch (-want +got):\n%s", diff)
	}
}
