// Package proto holds the protobuf contracts of the plugins, one folder per
// contract and major version, each with its generated Go code. Its tests
// check that the committed code is what the pinned generators produce.
package proto

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requireEnv makes the staleness check fail instead of skipping when protoc
// or a pinned generator is missing. `make test` sets it.
const requireEnv = "ESTELA_REQUIRE_PROTOC"

// sdkRoot is the SDK module's folder, relative to this package's folder,
// where go test runs.
const sdkRoot = ".."

// generator is a protoc plugin pinned in the Makefile.
type generator struct {
	name string
	// version is the pinned version, with its leading "v".
	version string
}

// pinnedGenerators reads the generator versions from the Makefile, the one
// place that pins them.
func pinnedGenerators(t *testing.T) []generator {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join(sdkRoot, "Makefile"))
	if err != nil {
		t.Fatalf("read the SDK Makefile: %v", err)
	}
	var out []generator
	pins := []struct{ name, variable string }{
		{"protoc-gen-go", "PROTOC_GEN_GO_VERSION"},
		{"protoc-gen-go-grpc", "PROTOC_GEN_GO_GRPC_VERSION"},
	}
	for _, pin := range pins {
		m := regexp.MustCompile(`(?m)^` + pin.variable + `\s*:?=\s*(v\S+)`).FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("the SDK Makefile sets no %s", pin.variable)
		}
		out = append(out, generator{name: pin.name, version: string(m[1])})
	}
	return out
}

// findGenerator returns the path of g at its pinned version: first in
// .tools/bin, where `make tools` installs it, then on PATH. When neither
// holds it, the error lists the versions found instead.
func findGenerator(g generator) (string, error) {
	var candidates []string
	if abs, err := filepath.Abs(filepath.Join(sdkRoot, ".tools", "bin", g.name)); err == nil {
		candidates = append(candidates, abs)
	}
	if path, err := exec.LookPath(g.name); err == nil {
		candidates = append(candidates, path)
	}
	var found []string
	for _, path := range candidates {
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			continue
		}
		// protoc-gen-go prints "protoc-gen-go v1.36.12", protoc-gen-go-grpc
		// prints "protoc-gen-go-grpc 1.6.2".
		fields := strings.Fields(string(out))
		if len(fields) == 0 {
			continue
		}
		version := "v" + strings.TrimPrefix(fields[len(fields)-1], "v")
		if version == g.version {
			return path, nil
		}
		found = append(found, version+" at "+path)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%s %s is missing", g.name, g.version)
	}
	return "", fmt.Errorf("%s %s is missing (found %s)", g.name, g.version, strings.Join(found, ", "))
}

// findTools returns protoc and the arguments that select the pinned
// generators, or an error naming the first missing tool and how to install it.
func findTools(t *testing.T) (protoc string, pluginArgs []string, err error) {
	t.Helper()
	protoc, err = exec.LookPath("protoc")
	if err != nil {
		return "", nil, errors.New("protoc is not on PATH: install protoc 3.21 or later (Debian and Ubuntu: apt-get install protobuf-compiler)")
	}
	for _, g := range pinnedGenerators(t) {
		path, err := findGenerator(g)
		if err != nil {
			return "", nil, fmt.Errorf("%w: run `make -C sdk tools` to install it into sdk/.tools/bin", err)
		}
		pluginArgs = append(pluginArgs, "--plugin="+g.name+"="+path)
	}
	return protoc, pluginArgs, nil
}

// protoFiles lists the .proto files of the SDK, relative to its root.
func protoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".proto") {
			files = append(files, filepath.Join("proto", path))
		}
		return err
	})
	if err != nil {
		t.Fatalf("list .proto files: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("found no .proto file under sdk/proto")
	}
	return files
}

// protocVersionLine matches the header line that names the protoc version.
// The comparison drops it, so a machine with another protoc release can run
// the check; any other difference that release makes still fails it.
var protocVersionLine = regexp.MustCompile(`(?m)^//.*\bprotoc\s+v?\d+\.\d+\.\d+.*\n`)

func TestGeneratedCodeUpToDate(t *testing.T) {
	protoc, pluginArgs, err := findTools(t)
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("proto staleness check: %v", err)
		}
		t.Skipf("proto staleness check skipped (set %s=1 to fail instead): %v", requireEnv, err)
	}
	out := t.TempDir()
	files := protoFiles(t)
	args := append([]string{"--proto_path=."}, pluginArgs...)
	args = append(args,
		"--go_out="+out, "--go_opt=paths=source_relative",
		"--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative")
	cmd := exec.Command(protoc, append(args, files...)...)
	cmd.Dir = sdkRoot
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, output)
	}

	generated := 0
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		generated++
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		compareGenerated(t, rel, path)
		return nil
	})
	if err != nil {
		t.Fatalf("read generated code: %v", err)
	}
	if generated == 0 {
		t.Fatal("protoc generated no file")
	}
}

// compareGenerated fails when the committed file rel differs from the fresh
// output at path, apart from the protoc version line.
func compareGenerated(t *testing.T, rel, path string) {
	t.Helper()
	fresh, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read generated %s: %v", rel, err)
	}
	committed, err := os.ReadFile(filepath.Join(sdkRoot, rel))
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sdk/%s is not committed: run `make -C sdk proto`", rel)
		return
	}
	if err != nil {
		t.Fatalf("read committed %s: %v", rel, err)
	}
	fresh = protocVersionLine.ReplaceAll(fresh, nil)
	committed = protocVersionLine.ReplaceAll(committed, nil)
	if !bytes.Equal(fresh, committed) {
		diff := cmp.Diff(strings.Split(string(committed), "\n"), strings.Split(string(fresh), "\n"))
		t.Errorf("sdk/%s is stale: run `make -C sdk proto` and commit the result (-committed +generated):\n%s", rel, diff)
	}
}

func TestGeneratorPinMatchesGoMod(t *testing.T) {
	t.Parallel()
	goMod, err := os.ReadFile(filepath.Join(sdkRoot, "go.mod"))
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	m := regexp.MustCompile(`(?m)^\s*google\.golang\.org/protobuf\s+(v\S+)`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod does not require google.golang.org/protobuf")
	}
	want := string(m[1])
	for _, g := range pinnedGenerators(t) {
		if g.name == "protoc-gen-go" && g.version != want {
			t.Errorf("Makefile pins protoc-gen-go %s, but go.mod requires google.golang.org/protobuf %s: set PROTOC_GEN_GO_VERSION to %s", g.version, want, want)
		}
	}
}
