package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "estela.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const minimal = `
database_url = "postgres://file"
redis_url    = "redis://file"
engine "local" {
  data_dir = "${env("ESTELA_TEST_CONFIG_DIR", "/default")}/engine"
  registry = { server = "r.example", port = 5000 }
}
credentials "local" {
  data_dir = "/archives"
}
`

func TestLoadDefaultsAndSettings(t *testing.T) {
	t.Setenv("ESTELA_TEST_CONFIG_DIR", "/srv")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	t.Setenv("ESTELA_LISTEN", "")
	t.Setenv("ESTELA_API_HOST", "")
	t.Setenv("ESTELA_PLUGIN_DIR", "")
	c, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Listen != "127.0.0.1:8000" || c.APIHost != "http://127.0.0.1:8000" || c.Worker.ReconcileSeconds != 10 {
		t.Errorf("defaults: listen %q, api_host %q, reconcile %d", c.Listen, c.APIHost, c.Worker.ReconcileSeconds)
	}
	want := `{"data_dir":"/srv/engine","registry":{"port":5000,"server":"r.example"}}`
	if diff := cmp.Diff(want, string(c.Engine.Settings)); diff != "" {
		t.Errorf("engine settings (-want +got):\n%s", diff)
	}
	if c.Engine.Name != "local" || c.Credentials.Name != "local" {
		t.Errorf("plugin names %q and %q, want local", c.Engine.Name, c.Credentials.Name)
	}
}

func TestLoadEnvironmentOverrides(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://env")
	t.Setenv("REDIS_URL", "redis://env")
	t.Setenv("ESTELA_LISTEN", "127.0.0.1:9000")
	t.Setenv("ESTELA_API_HOST", "")
	t.Setenv("ESTELA_PLUGIN_DIR", "/plugins")
	c, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := []string{c.DatabaseURL, c.RedisURL, c.Listen, c.APIHost, strings.Join(c.PluginDirs, ",")}
	want := []string{"postgres://env", "redis://env", "127.0.0.1:9000", "http://127.0.0.1:9000", "/plugins"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overrides (-want +got):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	tests := []struct {
		name, text, want string
	}{
		{"syntax error", `listen = `, "estela.hcl:1"},
		{"unknown setting", `lisen = "x"`, `"lisen"`},
		{"no database", `redis_url = "r"`, "database_url is missing"},
		{"no engine", "database_url = \"d\"\nredis_url = \"r\"", "no engine block"},
		{"negative pool size", "database_url = \"d\"\ndatabase_pool_size = -1", "database_pool_size is -1"},
		{"invalid value names the file", "database_url = \"d\"\ndatabase_pool_size = -1", "estela.hcl)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadPluginGoMaxProcs(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	c, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Engine.Procs() != DefaultPluginProcs || c.Credentials.Procs() != DefaultPluginProcs {
		t.Errorf("procs without gomaxprocs: engine %d, credentials %d, want %d", c.Engine.Procs(), c.Credentials.Procs(), DefaultPluginProcs)
	}

	set := strings.Replace(minimal, `engine "local" {`, `engine "local" {
  gomaxprocs = 0`, 1)
	set = strings.Replace(set, `credentials "local" {`, `credentials "local" {
  gomaxprocs = 3`, 1)
	c, err = Load(writeConfig(t, set))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Engine.Procs() != 0 || c.Credentials.Procs() != 3 {
		t.Errorf("procs: engine %d, credentials %d, want 0 and 3", c.Engine.Procs(), c.Credentials.Procs())
	}
	if strings.Contains(string(c.Engine.Settings), "gomaxprocs") {
		t.Errorf("engine settings %s carry gomaxprocs, which is the server's", c.Engine.Settings)
	}

	_, err = Load(writeConfig(t, strings.Replace(minimal, `credentials "local" {`, `credentials "local" {
  gomaxprocs = -2`, 1)))
	if err == nil || !strings.Contains(err.Error(), `gomaxprocs of credentials "local" is -2`) {
		t.Errorf("Load with gomaxprocs -2 = %v, want an error naming gomaxprocs", err)
	}
}

// env returns a string, so numbers and booleans of plugin settings go through tonumber and
// tobool.
func TestLoadConvertsEnvironmentValues(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	t.Setenv("ESTELA_TEST_MAX_JOBS", "4")
	text := strings.Replace(minimal, `engine "local" {`, `engine "local" {
  max_running_jobs = tonumber(env("ESTELA_TEST_MAX_JOBS", "0"))
  follow           = tobool(env("ESTELA_TEST_UNSET", "true"))`, 1)
	c, err := Load(writeConfig(t, text))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !strings.Contains(string(c.Engine.Settings), `"max_running_jobs":4`) || !strings.Contains(string(c.Engine.Settings), `"follow":true`) {
		t.Errorf("engine settings %s, want max_running_jobs 4 and follow true", c.Engine.Settings)
	}
	_, err = Load(writeConfig(t, strings.Replace(minimal, `engine "local" {`, `engine "local" {
  max_running_jobs = tonumber("four")`, 1)))
	if err == nil || !strings.Contains(err.Error(), "four") {
		t.Errorf("Load with tonumber(\"four\") = %v, want an error naming the value", err)
	}
}

func TestPluginBlockStopGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		settings string
		want     time.Duration
	}{
		{`{"stop_grace": "25s"}`, 25 * time.Second},
		{`{"data_dir": "/x"}`, 0},
		{`{"stop_grace": "soon"}`, 0},
		{`{"stop_grace": "-1s"}`, 0},
		{`{"stop_grace": 10}`, 0},
	}
	for _, tt := range tests {
		b := &PluginBlock{Name: "local", Settings: json.RawMessage(tt.settings)}
		if got := b.StopGrace(); got != tt.want {
			t.Errorf("StopGrace of %s = %v, want %v", tt.settings, got, tt.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "absent.hcl"))
	if err == nil || !strings.Contains(err.Error(), "absent.hcl: no such file") || strings.Contains(err.Error(), "<nil>") {
		t.Errorf("Load of a missing file = %v, want the path and no <nil>", err)
	}
}
