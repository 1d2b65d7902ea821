package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// tarFiles converts archive and returns the tar's entries, name → content.
func tarFiles(t *testing.T, archive []byte) (string, map[string]string, error) {
	t.Helper()
	bc, err := openBuildContext(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return "", nil, err
	}
	var buf bytes.Buffer
	if err := bc.writeTar(&buf); err != nil {
		return "", nil, err
	}
	files := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return bc.dockerfile, files, nil
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		data, _ := io.ReadAll(tr)
		if hdr.Typeflag == tar.TypeSymlink {
			data = []byte("-> " + hdr.Linkname)
		}
		files[hdr.Name] = string(data)
	}
}

func TestBuildContextRoot(t *testing.T) {
	t.Parallel()
	const dockerfile = "FROM python:3.12\n"
	cases := []struct {
		name           string
		entries        []zipEntry
		wantDockerfile string
		want           map[string]string
	}{
		{
			name:           "archive root",
			entries:        []zipEntry{{".estela/Dockerfile-estela", dockerfile}, {"scrapy.cfg", "cfg"}},
			wantDockerfile: ".estela/Dockerfile-estela",
			want:           map[string]string{".estela/Dockerfile-estela": dockerfile, "scrapy.cfg": "cfg"},
		},
		{
			name:           "top-level directory",
			entries:        []zipEntry{{"proj/.estela/Dockerfile-estela", dockerfile}, {"proj/scrapy.cfg", "cfg"}},
			wantDockerfile: ".estela/Dockerfile-estela",
			want:           map[string]string{".estela/Dockerfile-estela": dockerfile, "scrapy.cfg": "cfg"},
		},
		{
			name:           "nested project beside other files",
			entries:        []zipEntry{{"README.md", "readme"}, {"src/proj/.estela/Dockerfile-estela", dockerfile}, {"src/proj/scrapy.cfg", "cfg"}},
			wantDockerfile: ".estela/Dockerfile-estela",
			want:           map[string]string{".estela/Dockerfile-estela": dockerfile, "scrapy.cfg": "cfg"},
		},
		{
			name:           "plain Dockerfile",
			entries:        []zipEntry{{"proj/Dockerfile", dockerfile}, {"proj/scrapy.cfg", "cfg"}},
			wantDockerfile: "Dockerfile",
			want:           map[string]string{"Dockerfile": dockerfile, "scrapy.cfg": "cfg"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			gotDockerfile, got, err := tarFiles(t, makeZip(t, c.entries...))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			if gotDockerfile != c.wantDockerfile {
				t.Errorf("dockerfile = %q, want %q", gotDockerfile, c.wantDockerfile)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("tar mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildContextRejects(t *testing.T) {
	t.Parallel()
	cases := map[string][]byte{
		"not a zip":     []byte("plain text"),
		"no dockerfile": makeZip(t, zipEntry{"proj/scrapy.cfg", "cfg"}),
		"traversal":     makeZip(t, zipEntry{".estela/Dockerfile-estela", "FROM x"}, zipEntry{"../evil.py", "x"}),
		"absolute":      makeZip(t, zipEntry{".estela/Dockerfile-estela", "FROM x"}, zipEntry{"/etc/cron.d/x", "x"}),
	}
	for name, archive := range cases {
		if _, _, err := tarFiles(t, archive); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestBuildContextKeepsModesAndLinks(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, mode fs.FileMode, body string) {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, body)
	}
	add(".estela/Dockerfile-estela", 0o644, "FROM x\n")
	add("bin/run.sh", 0o755, "#!/bin/sh\n")
	add("current", fs.ModeSymlink|0o777, "bin")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	bc, err := openBuildContext(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var out bytes.Buffer
	if err := bc.writeTar(&out); err != nil {
		t.Fatalf("writeTar: %v", err)
	}

	got := map[string]string{}
	tr := tar.NewReader(&out)
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		got[hdr.Name] = fs.FileMode(hdr.Mode).String() + " " + hdr.Linkname
	}
	want := map[string]string{
		".estela/Dockerfile-estela": "-rw-r--r-- ",
		"bin/run.sh":                "-rwxr-xr-x ",
		"current":                   "-rwxrwxrwx bin",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tar headers mismatch (-want +got):\n%s", diff)
	}
}
