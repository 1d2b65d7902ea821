// Package archive checks uploaded project archives before anything is stored: a zip whose
// entries stay inside the project folder, within a size limit, with a scrapy.cfg at its root
// or under one top-level folder (estela-cli zips the project folder itself).
package archive

import (
	"archive/zip"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// ErrInvalid is wrapped by every problem found in an archive.
var ErrInvalid = errors.New("invalid project archive")

// Check opens the zip at file and returns an error wrapping ErrInvalid when it is not a zip,
// has an entry that leaves the project folder or is a symbolic link, unpacks to more than
// maxUnpacked bytes, or has no scrapy.cfg at its root or under its single top-level folder.
func Check(file string, maxUnpacked int64) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("%w: the file is not a zip archive", ErrInvalid)
	}
	defer zr.Close()
	var total uint64
	tops := map[string]bool{}
	cfg := map[string]bool{}
	for _, f := range zr.File {
		name := f.Name
		if err := checkName(name); err != nil {
			return err
		}
		if f.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: entry %q is a symbolic link", ErrInvalid, name)
		}
		total += f.UncompressedSize64
		if total > uint64(maxUnpacked) {
			return fmt.Errorf("%w: it unpacks to more than the limit of %d bytes", ErrInvalid, maxUnpacked)
		}
		clean := path.Clean(strings.TrimPrefix(name, "./"))
		top, rest, nested := strings.Cut(clean, "/")
		if nested || f.FileInfo().IsDir() {
			tops[top] = true
		} else {
			tops[""] = true
		}
		if clean == "scrapy.cfg" || (nested && rest == "scrapy.cfg") {
			cfg[clean] = true
		}
	}
	if cfg["scrapy.cfg"] {
		return nil
	}
	if len(tops) == 1 {
		for top := range tops {
			if top != "" && cfg[top+"/scrapy.cfg"] {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no scrapy.cfg at the root of the archive or of its single top-level folder", ErrInvalid)
}

func checkName(name string) error {
	if name == "" || strings.Contains(name, "\\") || strings.Contains(name, "\x00") {
		return fmt.Errorf("%w: entry %q has an invalid name", ErrInvalid, name)
	}
	if path.IsAbs(name) || (len(name) > 1 && name[1] == ':') {
		return fmt.Errorf("%w: entry %q has an absolute path", ErrInvalid, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return fmt.Errorf("%w: entry %q leaves the project folder", ErrInvalid, name)
		}
	}
	return nil
}
