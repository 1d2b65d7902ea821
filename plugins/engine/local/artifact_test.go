package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestPrepareArtifact(t *testing.T) {
	t.Parallel()
	e, dataDir := newTestEngine(t)
	tests := []struct {
		name     string
		deployID int64
		entries  []zipEntry
		spiders  []string
	}{
		{"flat", 1, projectFiles(""), []string{"alpha", "beta"}},
		{"top folder", 2, projectFiles("proj/", zipEntry{name: "spiders.txt", body: "one\ntwo\nthree\n"}), []string{"one", "two", "three"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{
				ProjectID: "proj-1", DeployID: tt.deployID, Archive: bytes.NewReader(makeZip(t, tt.entries...)),
			})
			if err != nil {
				t.Fatalf("PrepareArtifact: %v", err)
			}
			want := &engine.PrepareArtifactResponse{
				ArtifactRef: filepath.Join(dataDir, "artifacts", "proj-1", []string{"", "1", "2"}[tt.deployID]),
				ProjectType: "scrapy",
				Spiders:     tt.spiders,
			}
			if diff := cmp.Diff(want, resp); diff != "" {
				t.Errorf("PrepareArtifact mismatch (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(resp.ArtifactRef, "scrapy.cfg")); err != nil {
				t.Errorf("scrapy.cfg not at the artifact root: %v", err)
			}
		})
	}
}

func TestPrepareArtifactReplacesDeploy(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t)
	prepare := func(entries ...zipEntry) *engine.PrepareArtifactResponse {
		t.Helper()
		resp, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{
			ProjectID: "p", DeployID: 1, Archive: bytes.NewReader(makeZip(t, entries...)),
		})
		if err != nil {
			t.Fatalf("PrepareArtifact: %v", err)
		}
		return resp
	}
	first := prepare(projectFiles("", zipEntry{name: "old.txt"})...)
	second := prepare(projectFiles("", zipEntry{name: "new.txt"})...)
	if first.ArtifactRef != second.ArtifactRef {
		t.Errorf("artifact ref changed from %s to %s", first.ArtifactRef, second.ArtifactRef)
	}
	if _, err := os.Stat(filepath.Join(second.ArtifactRef, "old.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old.txt survived the replacement: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second.ArtifactRef, "new.txt")); err != nil {
		t.Errorf("new.txt missing: %v", err)
	}
}

func TestPrepareArtifactRejects(t *testing.T) {
	t.Parallel()
	e, dataDir := newTestEngine(t)
	tests := []struct {
		name      string
		projectID string
		deployID  int64
		archive   []byte
		wantErr   string
	}{
		{"not a zip", "p", 1, []byte("this is not a zip"), "not a valid zip file"},
		{"traversal", "p", 1, makeZip(t, projectFiles("", zipEntry{name: "../../x"})...), `"../../x"`},
		{"describe fails", "p", 1, makeZip(t, projectFiles("", zipEntry{name: "describe-fail"})...), "ImportError: No module named 'missing_dependency'"},
		{"invalid project id", "../p", 1, makeZip(t, projectFiles("")...), "invalid project id"},
		{"invalid deploy id", "p", 0, makeZip(t, projectFiles("")...), "invalid deploy id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{
				ProjectID: tt.projectID, DeployID: tt.deployID, Archive: bytes.NewReader(tt.archive),
			})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err.Error(), tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dataDir, "artifacts", "p", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected archive left an artifact: %v", err)
	}
}

func TestParseDescription(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		out     string
		want    *projectDescription
		wantErr bool
	}{
		{"json only", `{"project_type":"scrapy","spiders":["a"]}`, &projectDescription{ProjectType: "scrapy", Spiders: []string{"a"}}, false},
		{"noise before", "hello\n{\"project_type\":\"scrapy\",\"spiders\":[]}\n\n", &projectDescription{ProjectType: "scrapy", Spiders: []string{}}, false},
		{"no spiders key", `{"project_type":"scrapy"}`, &projectDescription{ProjectType: "scrapy", Spiders: []string{}}, false},
		{"not json", "oops", nil, true},
		{"empty", "", nil, true},
		{"no type", `{"spiders":["a"]}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseDescription([]byte(tt.out))
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Errorf("error = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDescription: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  string
		n    int
		want string
	}{
		{"empty", "", 3, "no output"},
		{"fewer than n", "a\n\nb\n", 3, "a | b"},
		{"more than n", "1\n2\n3\n4\n", 2, "3 | 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := lastLines([]byte(tt.out), tt.n); got != tt.want {
				t.Errorf("lastLines = %q, want %q", got, tt.want)
			}
		})
	}
}
