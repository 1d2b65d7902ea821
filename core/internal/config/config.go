// Package config loads the server's HCL configuration file and applies environment overrides.
package config

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsimple"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Config is the whole server configuration.
type Config struct {
	// Listen is the address of the HTTP API.
	Listen string `hcl:"listen,optional"`
	// APIHost is the base URL that jobs use to call the API back.
	APIHost     string `hcl:"api_host,optional"`
	DatabaseURL string `hcl:"database_url,optional"`
	// DatabasePoolSize is the number of Postgres connections of each process for statements
	// and transactions, besides 16 for downloads. Zero means twice the CPU cores, between 4 and 20.
	DatabasePoolSize int      `hcl:"database_pool_size,optional"`
	RedisURL         string   `hcl:"redis_url,optional"`
	RedisNamespace   string   `hcl:"redis_namespace,optional"`
	PluginDirs       []string `hcl:"plugin_dirs,optional"`
	// CORSOrigins lists the origins allowed to call the API from a browser.
	CORSOrigins []string `hcl:"cors_origins,optional"`
	// MaxUploadBytes caps the size of an uploaded project archive.
	MaxUploadBytes int64 `hcl:"max_upload_bytes,optional"`
	// MaxIngestBytes caps the size of one data batch sent by a job.
	MaxIngestBytes int64 `hcl:"max_ingest_bytes,optional"`

	Worker      *Worker      `hcl:"worker,block"`
	Images      *Images      `hcl:"images,block"`
	Engine      *PluginBlock `hcl:"engine,block"`
	Credentials *PluginBlock `hcl:"credentials,block"`
	// Accounts holds self-registration and account e-mail settings.
	Accounts *Accounts `hcl:"accounts,block"`
}

// Worker holds the settings of the background worker.
type Worker struct {
	Concurrency int `hcl:"concurrency,optional"`
	// ReconcileSeconds is how often active jobs are compared with the engine.
	ReconcileSeconds int `hcl:"reconcile_seconds,optional"`
	// LostJobGraceSeconds is how long a dispatched job may be missing from the engine before
	// it is dispatched again, and how long a finished process may stay unreported.
	LostJobGraceSeconds int `hcl:"lost_job_grace_seconds,optional"`
	MaxDispatchAttempts int `hcl:"max_dispatch_attempts,optional"`
}

// ReconcileInterval returns ReconcileSeconds as a duration.
func (w *Worker) ReconcileInterval() time.Duration {
	return time.Duration(w.ReconcileSeconds) * time.Second
}

// LostJobGrace returns LostJobGraceSeconds as a duration.
func (w *Worker) LostJobGrace() time.Duration {
	return time.Duration(w.LostJobGraceSeconds) * time.Second
}

// Images names the registry that engines building container images push to.
type Images struct {
	// Registry is the registry host, such as registry.example.com:5000.
	Registry string `hcl:"registry,optional"`
	// Repository is the repository in that registry; each deploy gets the tag estela_<pid>_<did>.
	Repository string `hcl:"repository,optional"`
	// BuildTimeoutMinutes is how long a build may take to report before its deploy fails.
	BuildTimeoutMinutes int `hcl:"build_timeout_minutes,optional"`
}

// PluginBlock selects a plugin by name and carries its settings.
type PluginBlock struct {
	Name string `hcl:"name,label"`
	// SHA256, when set, pins the plugin binary: a binary with another hash is not started.
	SHA256 string `hcl:"sha256,optional"`
	// GoMaxProcs is the GOMAXPROCS of the plugin's process: unset means DefaultPluginProcs,
	// and 0 sets none, so the plugin inherits the server's environment.
	GoMaxProcs *int     `hcl:"gomaxprocs,optional"`
	Body       hcl.Body `hcl:",remain"`

	// Settings is the rest of the block as a JSON object, as the plugin receives it.
	Settings json.RawMessage
}

// DefaultPluginProcs is the GOMAXPROCS of a plugin process whose block does not set one. With
// one P, a call's hand-offs between gRPC's goroutines stay on one thread. With more, each
// wakes another thread. Plugins mostly wait on the network or on their jobs, so one P is
// enough, and calls take less time and CPU (docs/benchmarks.md, "Plugin processes on one P").
const DefaultPluginProcs = 1

// Procs returns the GOMAXPROCS to give the plugin's process, where 0 sets none.
func (b *PluginBlock) Procs() int {
	if b.GoMaxProcs == nil {
		return DefaultPluginProcs
	}
	return *b.GoMaxProcs
}

// StopGrace returns the block's stop_grace setting, the time a stopped job gets between the
// polite stop signal and the kill, or 0 when the block has none or it is no Go duration.
// The local, docker and nomad engines take this setting. The server sends it with each stop
// and waits for it, so it must know it too. An invalid value is the plugin's to report.
func (b *PluginBlock) StopGrace() time.Duration {
	var settings struct {
		StopGrace string `json:"stop_grace"`
	}
	if json.Unmarshal(b.Settings, &settings) != nil || settings.StopGrace == "" {
		return 0
	}
	d, err := time.ParseDuration(settings.StopGrace)
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// Load reads the configuration file at path, fills defaults and applies the environment
// variables ESTELA_LISTEN, ESTELA_API_HOST, DATABASE_URL, REDIS_URL and ESTELA_PLUGIN_DIR.
func Load(path string) (*Config, error) {
	c, err := decode(path)
	if err != nil {
		return nil, err
	}
	if err := c.Complete(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// LoadPluginDirs reads only the plugin folders of the configuration at path, for commands
// that need no database or Redis.
func LoadPluginDirs(path string) ([]string, error) {
	c, err := decode(path)
	if err != nil {
		return nil, err
	}
	c.applyDefaults()
	return c.PluginDirs, nil
}

func decode(path string) (*Config, error) {
	var c Config
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load config: %w. Pass an existing file with -config, or with ESTELA_CONFIG to make run", err)
	}
	if err := hclsimple.DecodeFile(path, evalContext(), &c); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	for _, block := range []*PluginBlock{c.Engine, c.Credentials} {
		if block == nil {
			continue
		}
		settings, err := blockJSON(block.Body)
		if err != nil {
			return nil, fmt.Errorf("load config: settings of plugin %q: %w", block.Name, err)
		}
		block.Settings = settings
	}
	c.applyEnv()
	return &c, nil
}

// Complete fills the defaults of a configuration built in code, as Load does for a file, and
// checks it.
func (c *Config) Complete() error {
	c.applyDefaults()
	if err := c.resolveAccounts(); err != nil {
		return err
	}
	return c.validate()
}

func (c *Config) applyEnv() {
	override := func(dst *string, name string) {
		if v := os.Getenv(name); v != "" {
			*dst = v
		}
	}
	override(&c.Listen, "ESTELA_LISTEN")
	override(&c.APIHost, "ESTELA_API_HOST")
	override(&c.DatabaseURL, "DATABASE_URL")
	override(&c.RedisURL, "REDIS_URL")
	if dir := os.Getenv("ESTELA_PLUGIN_DIR"); dir != "" {
		c.PluginDirs = []string{dir}
	}
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8000"
	}
	if c.APIHost == "" {
		c.APIHost = "http://" + c.Listen
	}
	if c.RedisNamespace == "" {
		c.RedisNamespace = "estela"
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = []string{"bin/plugins"}
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 100 << 20
	}
	if c.MaxIngestBytes == 0 {
		c.MaxIngestBytes = 32 << 20
	}
	if c.Worker == nil {
		c.Worker = &Worker{}
	}
	if c.Images == nil {
		c.Images = &Images{}
	}
	if c.Images.Repository == "" {
		c.Images.Repository = "estela-projects"
	}
	if c.Images.BuildTimeoutMinutes == 0 {
		c.Images.BuildTimeoutMinutes = 60
	}
	if c.Worker.Concurrency == 0 {
		c.Worker.Concurrency = 16
	}
	if c.Worker.ReconcileSeconds == 0 {
		c.Worker.ReconcileSeconds = 10
	}
	if c.Worker.LostJobGraceSeconds == 0 {
		c.Worker.LostJobGraceSeconds = 60
	}
	if c.Worker.MaxDispatchAttempts == 0 {
		c.Worker.MaxDispatchAttempts = 5
	}
}

func (c *Config) validate() error {
	switch {
	case c.DatabaseURL == "":
		return fmt.Errorf("config: database_url is missing; set it in the file or DATABASE_URL")
	case c.DatabasePoolSize < 0:
		return fmt.Errorf("config: database_pool_size is %d; set 1 or more, or 0 for twice the CPU cores, between 4 and 20", c.DatabasePoolSize)
	case c.RedisURL == "":
		return fmt.Errorf("config: redis_url is missing; set it in the file or REDIS_URL")
	case c.Engine == nil:
		return fmt.Errorf(`config: no engine block; add one such as engine "local" { ... }`)
	case c.Credentials == nil:
		return fmt.Errorf(`config: no credentials block; add one such as credentials "local" { ... }`)
	}
	for _, block := range []struct {
		kind string
		*PluginBlock
	}{{"engine", c.Engine}, {"credentials", c.Credentials}} {
		if block.GoMaxProcs != nil && *block.GoMaxProcs < 0 {
			return fmt.Errorf("config: gomaxprocs of %s %q is %d; set 1 or more, or 0 to leave GOMAXPROCS to the plugin's environment", block.kind, block.Name, *block.GoMaxProcs)
		}
	}
	return nil
}

// evalContext offers env(name, default) to every expression of the file, and tonumber and
// tobool to convert what env returns, which is always a string.
func evalContext() *hcl.EvalContext {
	env := function.New(&function.Spec{
		Params:   []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam: &function.Parameter{Name: "default", Type: cty.String},
		Type:     function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if v := os.Getenv(args[0].AsString()); v != "" {
				return cty.StringVal(v), nil
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return cty.StringVal(""), nil
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env":      env,
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool":   stdlib.MakeToFunc(cty.Bool),
	}}
}

// blockJSON evaluates every attribute of a plugin block and returns them as a JSON object.
func blockJSON(body hcl.Body) (json.RawMessage, error) {
	attrs, diags := body.JustAttributes()
	if diags.HasErrors() {
		return nil, diags
	}
	values := make(map[string]cty.Value, len(attrs))
	for name, attr := range attrs {
		v, diags := attr.Expr.Value(evalContext())
		if diags.HasErrors() {
			return nil, diags
		}
		values[name] = v
	}
	obj := cty.ObjectVal(values)
	out, err := ctyjson.Marshal(obj, obj.Type())
	if err != nil {
		return nil, err
	}
	return out, nil
}
