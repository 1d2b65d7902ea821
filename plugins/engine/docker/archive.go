package main

import (
	"archive/tar"
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Dockerfiles of a project archive, relative to the project root.
const (
	estelaDockerfile = ".estela/Dockerfile-estela"
	plainDockerfile  = "Dockerfile"
)

// Limits of a deploy archive, against archives that expand without bound.
const (
	maxArchiveBytes  = 512 << 20
	maxContextBytes  = 2 << 30
	maxSymlinkTarget = 4096
)

// buildContext is a project archive ready to be sent as a Docker build
// context. The project root is the directory that contains
// .estela/Dockerfile-estela (the shallowest one when there are several).
// An archive without it may have a Dockerfile at its root instead. The root
// is then the single top-level directory when every entry is inside one (as
// `estela deploy` zips a project), else the archive root. Entries outside
// the project root are left out of the context.
type buildContext struct {
	files      []*zip.File
	root       string // "" or a directory prefix ending in "/"
	dockerfile string // relative to root
}

// openBuildContext reads the archive's directory and finds its project root
// and Dockerfile. Every error wraps errdefs.ErrInvalid.
func openBuildContext(r io.ReaderAt, size int64) (*buildContext, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, errdefs.Invalid("the deploy archive is not a zip file: %v", err)
	}
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, err
		}
	}
	bc := &buildContext{files: zr.File}
	if root, ok := estelaRoot(zr.File); ok {
		bc.root, bc.dockerfile = root, estelaDockerfile
		return bc, nil
	}
	bc.root = singleTopDir(zr.File)
	if !hasFile(zr.File, bc.root+plainDockerfile) {
		return nil, errdefs.Invalid("the deploy archive has no %s (and no %s at its root): add it to the project", estelaDockerfile, plainDockerfile)
	}
	bc.dockerfile = plainDockerfile
	return bc, nil
}

// checkEntryName rejects names that would leave the build context.
func checkEntryName(name string) error {
	clean := path.Clean(strings.ReplaceAll(name, `\`, "/"))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return errdefs.Invalid("the deploy archive has the unsafe entry %q: entries must stay inside the archive", name)
	}
	return nil
}

func estelaRoot(files []*zip.File) (string, bool) {
	root, found := "", false
	for _, f := range files {
		name := entryName(f)
		if name != estelaDockerfile && !strings.HasSuffix(name, "/"+estelaDockerfile) {
			continue
		}
		candidate := strings.TrimSuffix(name, estelaDockerfile)
		if !found || strings.Count(candidate, "/") < strings.Count(root, "/") {
			root, found = candidate, true
		}
	}
	return root, found
}

// singleTopDir returns "dir/" when every entry is inside one directory.
func singleTopDir(files []*zip.File) string {
	top := ""
	for _, f := range files {
		first, _, nested := strings.Cut(entryName(f), "/")
		if !nested && !f.FileInfo().IsDir() {
			return "" // a file at the archive root
		}
		if top != "" && first != top {
			return ""
		}
		top = first
	}
	if top == "" {
		return ""
	}
	return top + "/"
}

func hasFile(files []*zip.File, name string) bool {
	for _, f := range files {
		if entryName(f) == name && !f.FileInfo().IsDir() {
			return true
		}
	}
	return false
}

// entryName returns the cleaned slash-separated name of an entry.
func entryName(f *zip.File) string {
	return path.Clean(strings.ReplaceAll(f.Name, `\`, "/"))
}

// writeTar writes the project root's files as an uncompressed tar, with
// paths relative to the root, owner 0 and the zip's modification times.
// Directories and symbolic links are kept, other special files left out.
func (bc *buildContext) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	budget := int64(maxContextBytes)
	for _, f := range bc.files {
		name, ok := strings.CutPrefix(entryName(f), bc.root)
		if !ok || name == "" || name == "." {
			continue
		}
		written, err := writeTarEntry(tw, f, name, budget)
		if err != nil {
			return err
		}
		budget -= written
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish build context: %w", err)
	}
	return nil
}

func writeTarEntry(tw *tar.Writer, f *zip.File, name string, budget int64) (int64, error) {
	info := f.FileInfo()
	hdr := &tar.Header{Name: name, ModTime: f.Modified, Format: tar.FormatPAX}
	switch {
	case info.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		return 0, tw.WriteHeader(hdr)
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := readSmall(f, maxSymlinkTarget)
		if err != nil {
			return 0, err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, string(target), 0o777
		return 0, tw.WriteHeader(hdr)
	case !info.Mode().IsRegular():
		return 0, nil
	}

	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(f.UncompressedSize64)
	if info.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if hdr.Size > budget {
		return 0, errdefs.Invalid("the deploy archive expands to more than %d bytes", int64(maxContextBytes))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("write build context entry %s: %w", name, err)
	}

	rc, err := f.Open()
	if err != nil {
		return 0, errdefs.Invalid("read archive entry %s: %v", f.Name, err)
	}
	defer rc.Close()
	// A zip may state a smaller size than its data: copy exactly the size
	// written in the tar header, and fail on a short entry.
	n, err := io.CopyN(tw, rc, hdr.Size)
	if err != nil {
		return n, errdefs.Invalid("read archive entry %s: %v", f.Name, err)
	}
	return n, nil
}

func readSmall(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, errdefs.Invalid("read archive entry %s: %v", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, errdefs.Invalid("read archive entry %s: %v", f.Name, err)
	}
	if int64(len(data)) > limit {
		return nil, errdefs.Invalid("archive entry %s is a symbolic link with a target longer than %d bytes", f.Name, limit)
	}
	return data, nil
}
