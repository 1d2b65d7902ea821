package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestPlanExtraction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []zipEntry
		limit   int64
		want    []string // extracted names, when valid
		wantErr string   // part of the ErrInvalid message, when invalid
	}{
		{
			name:    "flat project",
			entries: projectFiles(""),
			want:    []string{"scrapy.cfg", "demo/__init__.py", "demo/settings.py"},
		},
		{
			name:    "top folder stripped",
			entries: append([]zipEntry{{name: "myproj/", mode: fs.ModeDir | 0o755}}, projectFiles("myproj/")...),
			want:    []string{"scrapy.cfg", "demo/__init__.py", "demo/settings.py"},
		},
		{
			name:    "macOS metadata ignored",
			entries: append(projectFiles("myproj/"), zipEntry{name: "__MACOSX/myproj/._scrapy.cfg"}),
			want:    []string{"scrapy.cfg", "demo/__init__.py", "demo/settings.py"},
		},
		{
			name:    "two top folders",
			entries: append(projectFiles("a/"), zipEntry{name: "b/readme"}),
			wantErr: "no scrapy.cfg",
		},
		{
			name:    "no scrapy.cfg",
			entries: []zipEntry{{name: "demo/settings.py"}},
			wantErr: "no scrapy.cfg",
		},
		{
			name:    "parent traversal",
			entries: projectFiles("", zipEntry{name: "../evil.py"}),
			wantErr: `"../evil.py"`,
		},
		{
			name:    "nested traversal",
			entries: projectFiles("", zipEntry{name: "demo/../../evil.py"}),
			wantErr: `"demo/../../evil.py"`,
		},
		{
			name:    "backslash traversal",
			entries: projectFiles("", zipEntry{name: `..\evil.py`}),
			wantErr: `"..\\evil.py"`,
		},
		{
			name:    "absolute path",
			entries: projectFiles("", zipEntry{name: "/etc/cron.d/evil"}),
			wantErr: `"/etc/cron.d/evil"`,
		},
		{
			name:    "symlink",
			entries: projectFiles("", zipEntry{name: "demo/link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}),
			wantErr: `"demo/link" is a symbolic link`,
		},
		{
			name:    "over the size limit",
			entries: projectFiles("", zipEntry{name: "big.bin", body: strings.Repeat("x", 2000)}),
			limit:   1000,
			wantErr: `more than the limit of 1000 bytes (reached at entry "big.bin")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := makeZip(t, tt.entries...)
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("read test zip: %v", err)
			}
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			planned, err := planExtraction(zr, limit)
			if tt.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("error = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", err.Error(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planExtraction: %v", err)
			}
			var names []string
			for _, e := range planned {
				names = append(names, e.name)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("entries mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractEntriesWritesFiles(t *testing.T) {
	t.Parallel()
	data := makeZip(t, projectFiles("p/", zipEntry{name: "run.sh", body: "#!/bin/sh\n", mode: 0o755})...)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	planned, err := planExtraction(zr, 1<<20)
	if err != nil {
		t.Fatalf("planExtraction: %v", err)
	}
	dir := t.TempDir()
	if err := extractEntries(planned, dir, 1<<20); err != nil {
		t.Fatalf("extractEntries: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "demo", "settings.py"))
	if err != nil || string(got) != "BOT_NAME = 'demo'\n" {
		t.Errorf("demo/settings.py = %q, %v", got, err)
	}
	info, err := os.Stat(filepath.Join(dir, "run.sh"))
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v, %v; want 0755", info.Mode(), err)
	}
}

func TestExtractEntriesEnforcesBudget(t *testing.T) {
	t.Parallel()
	data := makeZip(t, projectFiles("", zipEntry{name: "big.bin", body: strings.Repeat("y", 5000)})...)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	planned, err := planExtraction(zr, 1<<20)
	if err != nil {
		t.Fatalf("planExtraction: %v", err)
	}
	// A budget below the declared sizes stands for a zip whose headers
	// understate them.
	err = extractEntries(planned, t.TempDir(), 1000)
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), `"big.bin"`) {
		t.Errorf("error = %v, want ErrInvalid naming big.bin", err)
	}
}
