package main

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// macOSMetadataDir is the folder macOS Finder adds to zips it creates. Its
// entries are skipped, so that they do not hide a single top-level folder.
const macOSMetadataDir = "__MACOSX/"

// archiveEntry is a zip entry to extract, with its validated relative path.
type archiveEntry struct {
	file *zip.File
	name string // slash-separated, local, top-level folder stripped
}

// planExtraction validates every entry of zr and returns the entries to
// extract. It rejects, with errdefs.ErrInvalid, paths that leave the target
// directory, links and other special files, a declared total size over
// maxBytes, and a project without scrapy.cfg. When scrapy.cfg is not at the
// root and every entry shares one top-level folder, that folder is stripped.
func planExtraction(zr *zip.Reader, maxBytes int64) ([]archiveEntry, error) {
	var entries []archiveEntry
	var total uint64
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, macOSMetadataDir) {
			continue
		}
		name, err := validateEntry(f)
		if err != nil {
			return nil, err
		}
		total += f.UncompressedSize64
		if total > uint64(maxBytes) {
			return nil, errdefs.Invalid("archive unpacks to more than the limit of %d bytes (reached at entry %q)", maxBytes, f.Name)
		}
		entries = append(entries, archiveEntry{file: f, name: name})
	}
	entries = stripTopFolder(entries)
	for _, e := range entries {
		if e.name == "scrapy.cfg" {
			return entries, nil
		}
	}
	return nil, errdefs.Invalid("archive has no scrapy.cfg at its root or inside its single top-level folder")
}

func validateEntry(f *zip.File) (string, error) {
	name := strings.ReplaceAll(f.Name, `\`, "/")
	if strings.HasPrefix(name, "/") || !filepath.IsLocal(strings.TrimSuffix(name, "/")) {
		return "", errdefs.Invalid("archive entry %q has an absolute path or a path outside the project", f.Name)
	}
	mode := f.Mode()
	if mode&fs.ModeSymlink != 0 {
		return "", errdefs.Invalid("archive entry %q is a symbolic link, which is not allowed", f.Name)
	}
	if !mode.IsRegular() && !mode.IsDir() {
		return "", errdefs.Invalid("archive entry %q is a special file (%s), which is not allowed", f.Name, mode.Type())
	}
	return path.Clean(name), nil
}

// stripTopFolder removes the top-level folder that estela-cli puts around a
// project, when scrapy.cfg is not at the root and all entries share it.
func stripTopFolder(entries []archiveEntry) []archiveEntry {
	top := ""
	for _, e := range entries {
		if e.name == "scrapy.cfg" {
			return entries
		}
		first, _, _ := strings.Cut(e.name, "/")
		if top == "" {
			top = first
		}
		if first != top {
			return entries
		}
	}
	var stripped []archiveEntry
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.name, top+"/")
		if !ok {
			continue // the folder's own entry
		}
		stripped = append(stripped, archiveEntry{file: e.file, name: rest})
	}
	return stripped
}

// extractEntries writes entries under dir. It counts the bytes actually
// written against maxBytes, because a zip's declared sizes can lie.
func extractEntries(entries []archiveEntry, dir string, maxBytes int64) error {
	budget := maxBytes
	for _, e := range entries {
		target := filepath.Join(dir, filepath.FromSlash(e.name))
		if e.file.Mode().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("create directory %s: %w", e.name, err)
			}
			continue
		}
		written, err := extractFile(e.file, target, budget)
		if err != nil {
			return err
		}
		budget -= written
	}
	return nil
}

func extractFile(f *zip.File, target string, budget int64) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, fmt.Errorf("create directory for %s: %w", f.Name, err)
	}
	src, err := f.Open()
	if err != nil {
		return 0, errdefs.Invalid("archive entry %q cannot be read: %v", f.Name, err)
	}
	defer src.Close()
	perm := os.FileMode(0o644)
	if f.Mode()&0o100 != 0 {
		perm = 0o755
	}
	dst, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", f.Name, err)
	}
	written, copyErr := io.Copy(dst, io.LimitReader(src, budget+1))
	closeErr := dst.Close()
	switch {
	case written > budget:
		return written, errdefs.Invalid("archive unpacks to more than the limit (exceeded at entry %q)", f.Name)
	case copyErr != nil:
		return written, errdefs.Invalid("archive entry %q cannot be read: %v", f.Name, copyErr)
	case closeErr != nil:
		return written, fmt.Errorf("write %s: %w", f.Name, closeErr)
	}
	return written, nil
}
