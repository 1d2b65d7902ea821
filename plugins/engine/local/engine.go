package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// staleTempAge is the minimum age of a leftover in data_dir/tmp that
// Configure deletes. Anything younger may belong to a preparation still
// running in another process on the same data_dir.
const staleTempAge = time.Hour

// localEngine runs jobs as processes of this machine.
type localEngine struct {
	logger hclog.Logger
	// pollInterval is how often a job adopted after a restart is checked.
	pollInterval time.Duration

	mu       sync.Mutex
	settings *settings // nil until Configure succeeds
	jobs     map[string]*job

	// artifactMu serializes moving artifact directories into place.
	artifactMu sync.Mutex
}

var _ engine.Engine = (*localEngine)(nil)

func newEngine(logger hclog.Logger) *localEngine {
	return &localEngine{
		logger:       logger.Named("engine-local"),
		pollInterval: time.Second,
		jobs:         map[string]*job{},
	}
}

func (e *localEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{Name: "local", Version: version, APIVersions: []int32{pluginapi.ProtocolVersion}}, nil
}

// Configure applies valid settings, keeping the previous ones otherwise,
// and loads the job records of data_dir that it does not know yet.
func (e *localEngine) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(ctx, req.Config, resp)
	if s == nil {
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	e.removeStaleTemp(s)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings = s
	e.loadJobs(s)
	e.logger.Info("configured", "data_dir", s.DataDir, "python", s.Python, "job_side_dir", s.JobSideDir, "max_running_jobs", s.MaxRunningJobs, "stop_grace", s.StopGrace.String())
	return resp, nil
}

func (e *localEngine) current() (*settings, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.settings == nil {
		return nil, errdefs.Unavailable("local engine is not configured: the host must call Configure first")
	}
	return e.settings, nil
}

// removeStaleTemp deletes what crashed preparations left in data_dir/tmp.
func (e *localEngine) removeStaleTemp(s *settings) {
	dir := filepath.Join(s.DataDir, tmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		e.logger.Warn("cannot list temporary directory", "path", dir, "error", err)
		return
	}
	for _, entry := range entries {
		info, err := entry.Info()
		if err != nil || time.Since(info.ModTime()) < staleTempAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, entry.Name())); err != nil {
			e.logger.Warn("cannot delete stale temporary file", "path", entry.Name(), "error", err)
		}
	}
}

// loadJobs adopts the jobs recorded in data_dir/jobs: a job whose process is
// still alive is watched again, and a job recorded as live whose process is
// gone fails with reasonUnknownExit. Callers hold e.mu.
func (e *localEngine) loadJobs(s *settings) {
	dir := filepath.Join(s.DataDir, jobsDir)
	records, errs := readRecords(dir)
	for _, err := range errs {
		e.logger.Error("cannot read job record", "error", err)
	}
	for _, rec := range records {
		if _, known := e.jobs[rec.Name]; known {
			continue
		}
		recordPath, logPath := jobPaths(s, rec.Name)
		if rec.State.Final() {
			e.jobs[rec.Name] = newJob(rec, recordPath, logPath, nil)
			continue
		}
		proc := &adoptedProcess{pid: rec.PID, startTicks: rec.ProcessStartTicks, pollInterval: e.pollInterval}
		j := newJob(rec, recordPath, logPath, proc)
		e.jobs[rec.Name] = j
		if !processAlive(rec.PID, rec.ProcessStartTicks) {
			e.finishJob(j, exitStatus{})
			continue
		}
		e.logger.Info("job adopted", "job", rec.Name, "pid", rec.PID)
		go e.watch(j, s.StopGrace)
	}
}

func jobPaths(s *settings, name string) (recordPath, logPath string) {
	base := filepath.Join(s.DataDir, jobsDir, name)
	return base + ".json", base + ".log"
}

// baseEnv returns the variables every job and script inherits from the
// plugin's environment; the rest of the plugin's environment is not passed on.
func baseEnv() []string {
	var env []string
	for _, key := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if value, ok := os.LookupEnv(key); ok {
			env = append(env, key+"="+value)
		}
	}
	return env
}

// jobEnv returns baseEnv with spec overriding it.
func jobEnv(spec map[string]string) []string {
	env := baseEnv()
	kept := env[:0]
	for _, kv := range env {
		key, _, _ := strings.Cut(kv, "=")
		if _, overridden := spec[key]; !overridden {
			kept = append(kept, kv)
		}
	}
	for key, value := range spec {
		kept = append(kept, key+"="+value)
	}
	return kept
}
