// Package pluginhost finds, starts and supervises the engine and credentials plugins: separate
// processes spoken to with hashicorp/go-plugin over gRPC with automatic mutual TLS.
package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kinds of plugin, as they appear in binary names estela-<kind>-<name>.
const (
	KindEngine      = "engine"
	KindCredentials = "credentials"
)

// Binary is a plugin executable found in a plugin folder.
type Binary struct {
	Kind string
	Name string
	Path string
}

// Discover lists the plugin binaries named estela-engine-<name> or estela-credentials-<name>
// in the given folders. When two folders hold the same plugin, the first folder wins.
func Discover(dirs []string) ([]Binary, error) {
	seen := map[string]bool{}
	var out []Binary
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read plugin folder %s: %w", dir, err)
		}
		for _, e := range entries {
			kind, name, ok := parseBinaryName(e.Name())
			if !ok || e.IsDir() || seen[kind+"/"+name] {
				continue
			}
			path, err := filepath.Abs(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("resolve plugin path: %w", err)
			}
			if info, err := os.Stat(path); err != nil || info.Mode()&0o111 == 0 {
				continue
			}
			seen[kind+"/"+name] = true
			out = append(out, Binary{Kind: kind, Name: name, Path: path})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+out[i].Name < out[j].Kind+out[j].Name })
	return out, nil
}

func parseBinaryName(file string) (kind, name string, ok bool) {
	for _, k := range []string{KindEngine, KindCredentials} {
		if rest, found := strings.CutPrefix(file, "estela-"+k+"-"); found && rest != "" {
			return k, rest, true
		}
	}
	return "", "", false
}

// Find returns the binary of a plugin, or an error that lists what the folders do hold.
func Find(dirs []string, kind, name string) (Binary, error) {
	bins, err := Discover(dirs)
	if err != nil {
		return Binary{}, err
	}
	var available []string
	for _, b := range bins {
		if b.Kind == kind && b.Name == name {
			return b, nil
		}
		if b.Kind == kind {
			available = append(available, b.Name)
		}
	}
	return Binary{}, fmt.Errorf("%s plugin %q not found: no executable estela-%s-%s in %s (available: %s); run `make build` or fix plugin_dirs",
		kind, name, kind, name, strings.Join(dirs, ", "), listOrNone(available))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// checkPin returns an error when want is set and the file's SHA-256 differs from it.
func checkPin(path, want string) error {
	if want == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open plugin binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash plugin binary: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("plugin binary %s has SHA-256 %s but the configuration pins %s; refusing to start it", path, got, want)
	}
	return nil
}
