package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/testenv"
)

// figureKeys are the keys of the JSON that every complete run fills with a number.
var figureKeys = []string{
	"dispatch_jobs_per_s", "plugin_rpc_p50_us", "plugin_rpc_p99_us", "ingest_items_per_s",
	"ingest_vs_copy_ratio", "export_mb_per_s", "export_vs_copy_ratio", "export_peak_rss_mb",
	"job_list_p99_ms", "job_list_req_per_s", "reconcile_engine_calls_per_tick", "reconcile_tick_ms",
	"cron_late_p99_ms", "cron_duplicates", "cron_missed",
}

// TestQuickRunWritesEveryFigure runs every phase with the quick sizes against real Postgres,
// Redis, server processes and plugins. It checks that the JSON has every figure as a finite
// number and the sizes used; it asserts no timing.
func TestQuickRunWritesEveryFigure(t *testing.T) {
	t.Parallel()
	dbURL, redisURL := testenv.DatabaseURL(t), testenv.RedisURL(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	server, pluginDir := buildBinaries(t, repo)
	out := filepath.Join(t.TempDir(), "bench.json")
	var table bytes.Buffer
	opts := Options{
		Repo: repo, ServerBinary: server, PluginDirs: []string{pluginDir},
		DatabaseURL: dbURL, RedisURL: redisURL, UseDatabaseAsIs: true, WorkDir: t.TempDir(),
		Sizes: QuickSizes(),
		Log:   hclog.New(&hclog.LoggerOptions{Name: "bench", Level: hclog.Warn, Output: testWriter{t}}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Main(ctx, opts, &table, out); err != nil {
		t.Fatalf("quick run: %v\n%s", err, table.String())
	}
	t.Logf("results:\n%s", table.String())

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	for _, key := range figureKeys {
		v, ok := got[key].(float64)
		if !ok {
			t.Errorf("%s = %v, want a number", key, got[key])
		} else if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a finite number", key, v)
		}
	}
	for key := range got {
		if key != "sizes" && !slices.Contains(figureKeys, key) {
			t.Errorf("unexpected key %q in the JSON", key)
		}
	}
	sizes, ok := got["sizes"].(map[string]any)
	if !ok {
		t.Fatalf("sizes = %v, want an object", got["sizes"])
	}
	if sizes["export_items"] != float64(QuickSizes().ExportItems) {
		t.Errorf("sizes.export_items = %v, want %d", sizes["export_items"], QuickSizes().ExportItems)
	}
	if lines := strings.Count(table.String(), "\n"); lines != len(figureKeys)+3 {
		t.Errorf("the table has %d lines, want the machine line, the sizes line, a header and %d rows", lines, len(figureKeys))
	}
}

// buildBinaries returns estela-server built from this tree, and a plugin folder with the noop
// engine and the local credentials plugin: the one `make test` built when it has both,
// otherwise a fresh build.
func buildBinaries(t *testing.T, repo string) (server, pluginDir string) {
	t.Helper()
	dir := t.TempDir()
	server = filepath.Join(dir, "estela-server")
	goBuild(t, repo, server, "./cmd/estela-server")
	if shared := os.Getenv("ESTELA_TEST_PLUGIN_DIR"); shared != "" && hasPlugins(shared) {
		return server, shared
	}
	pluginDir = filepath.Join(dir, "plugins")
	goBuild(t, filepath.Join(repo, "sdk"), filepath.Join(pluginDir, "estela-engine-noop"), "./examples/engine-noop")
	goBuild(t, filepath.Join(repo, "plugins/credentials/local"), filepath.Join(pluginDir, "estela-credentials-local"), ".")
	return server, pluginDir
}

func hasPlugins(dir string) bool {
	for _, name := range []string{"estela-engine-noop", "estela-credentials-local"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func goBuild(t *testing.T, moduleDir, output, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", output, pkg)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in %s: %v\n%s", pkg, moduleDir, err, out)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
