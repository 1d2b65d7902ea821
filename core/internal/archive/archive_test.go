package archive

import (
	"archive/zip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name    string
	content string
	mode    fs.FileMode
}

func writeZip(t *testing.T, entries ...entry) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "project.zip")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(e.content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return file
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"flat project", []entry{{name: "scrapy.cfg"}, {name: "pkg/settings.py"}}, ""},
		{"one top folder", []entry{{name: "proj/"}, {name: "proj/scrapy.cfg"}, {name: "proj/pkg/spiders/a.py"}}, ""},
		{"traversal", []entry{{name: "scrapy.cfg"}, {name: "../evil.py"}}, "leaves the project folder"},
		{"nested traversal", []entry{{name: "scrapy.cfg"}, {name: "pkg/../../evil.py"}}, "leaves the project folder"},
		{"absolute path", []entry{{name: "/etc/cron.d/x"}}, "absolute path"},
		{"symlink", []entry{{name: "scrapy.cfg"}, {name: "link", content: "/etc/passwd", mode: fs.ModeSymlink | 0o777}}, "symbolic link"},
		{"no scrapy.cfg", []entry{{name: "pkg/settings.py"}}, "no scrapy.cfg"},
		{"two top folders", []entry{{name: "a/scrapy.cfg"}, {name: "b/x.py"}}, "no scrapy.cfg"},
		{"too large", []entry{{name: "scrapy.cfg", content: strings.Repeat("x", 2048)}}, "more than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(writeZip(t, tt.entries...), 1024)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Check = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckNotZip(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "x.zip")
	_ = os.WriteFile(file, []byte("not a zip"), 0o600)
	if err := Check(file, 1024); !errors.Is(err, ErrInvalid) {
		t.Errorf("Check = %v, want ErrInvalid", err)
	}
}
