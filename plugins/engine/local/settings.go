package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Defaults of the optional settings.
const (
	defaultMaxUnpackedBytes = 512 << 20
	defaultStopGrace        = 10 * time.Second
	defaultDescribeTimeout  = 2 * time.Minute
	// pythonCheckTimeout bounds one `python -c "import scrapy"` check.
	pythonCheckTimeout = 30 * time.Second
)

// jobSideScripts are the scripts job_side_dir/bin must contain.
var jobSideScripts = []string{"estela-crawl", "estela-describe-project", "estela-report-deploy"}

// settings is the plugin's validated settings block.
type settings struct {
	DataDir          string
	Python           string
	JobSideDir       string
	MaxUnpackedBytes int64
	StopGrace        time.Duration
	DescribeTimeout  time.Duration
	// MaxRunningJobs caps the jobs whose process runs, and 0 means no cap.
	MaxRunningJobs int
}

// rawSettings is the settings block as the host sends it.
type rawSettings struct {
	// DataDir contains artifacts/, jobs/ and tmp/.
	DataDir string `json:"data_dir"`
	// Python is the interpreter that runs the job-side scripts; empty means
	// detect one that can import scrapy.
	Python string `json:"python"`
	// JobSideDir contains bin/ with the job-side scripts.
	JobSideDir       string `json:"job_side_dir"`
	MaxUnpackedBytes *int64 `json:"max_unpacked_bytes"`
	// StopGrace and DescribeTimeout are Go duration strings such as "10s".
	StopGrace       string `json:"stop_grace"`
	DescribeTimeout string `json:"describe_timeout"`
	// MaxRunningJobs caps the jobs whose process runs. A job beyond it stays queued.
	MaxRunningJobs *int `json:"max_running_jobs"`
}

var knownSettings = []string{"data_dir", "python", "job_side_dir", "max_unpacked_bytes", "stop_grace", "describe_timeout", "max_running_jobs"}

// parseSettings decodes and validates raw, creating the data directories.
// It returns nil when resp received an error diagnostic.
func parseSettings(ctx context.Context, raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var in rawSettings
	if !decodeSettings(raw, &in, resp) {
		return nil
	}
	s := &settings{
		MaxUnpackedBytes: defaultMaxUnpackedBytes,
		StopGrace:        parseDuration(in.StopGrace, "stop_grace", defaultStopGrace, resp),
		DescribeTimeout:  parseDuration(in.DescribeTimeout, "describe_timeout", defaultDescribeTimeout, resp),
	}
	if in.MaxUnpackedBytes != nil {
		s.MaxUnpackedBytes = *in.MaxUnpackedBytes
		if s.MaxUnpackedBytes <= 0 {
			resp.AddError("max_unpacked_bytes", "must be greater than 0", "")
		}
	}
	if in.MaxRunningJobs != nil {
		s.MaxRunningJobs = *in.MaxRunningJobs
		if s.MaxRunningJobs < 0 {
			resp.AddError("max_running_jobs", fmt.Sprintf("must be 0 (no limit) or more, not %d", s.MaxRunningJobs), "")
		}
	}
	s.DataDir = validateDataDir(in.DataDir, resp)
	s.JobSideDir = validateJobSideDir(in.JobSideDir, resp)
	s.Python = choosePython(ctx, in.Python, resp)
	if resp.HasErrors() {
		return nil
	}
	return s
}

func decodeSettings(raw []byte, in *rawSettings, resp *pluginapi.ConfigureResponse) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		resp.AddError("", "settings are not a JSON object", err.Error())
		return false
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Contains(knownSettings, key) {
			resp.AddError(key, "unknown setting", "Valid settings: "+strings.Join(knownSettings, ", ")+".")
		}
	}
	if err := json.Unmarshal(raw, in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			resp.AddError(typeErr.Field, pluginapi.SettingTypeSummary(typeErr), "")
		} else {
			resp.AddError("", "invalid settings", err.Error())
		}
	}
	return !resp.HasErrors()
}

func parseDuration(value, path string, fallback time.Duration, resp *pluginapi.ConfigureResponse) time.Duration {
	if value == "" {
		return fallback
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		resp.AddError(path, fmt.Sprintf("invalid duration %q", value), `Use a positive Go duration such as "10s" or "2m".`)
		return fallback
	}
	return d
}

func validateDataDir(dir string, resp *pluginapi.ConfigureResponse) string {
	if dir == "" {
		resp.AddError("data_dir", "missing required setting", "Set data_dir to the directory for artifacts, job records and job logs.")
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		resp.AddError("data_dir", "invalid path", err.Error())
		return ""
	}
	for _, sub := range []string{artifactsDir, jobsDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o750); err != nil {
			resp.AddError("data_dir", "cannot create the data directory", err.Error())
			return ""
		}
	}
	return abs
}

func validateJobSideDir(dir string, resp *pluginapi.ConfigureResponse) string {
	if dir == "" {
		resp.AddError("job_side_dir", "missing required setting",
			"Set job_side_dir to the directory whose bin/ contains "+fmt.Sprint(jobSideScripts)+".")
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		resp.AddError("job_side_dir", "invalid path", err.Error())
		return ""
	}
	for _, script := range jobSideScripts {
		path := filepath.Join(abs, "bin", script)
		if info, err := os.Stat(path); err != nil || !info.Mode().IsRegular() {
			resp.AddError("job_side_dir", "missing job-side script "+path, "job_side_dir/bin must contain "+fmt.Sprint(jobSideScripts)+".")
		}
	}
	return abs
}

// choosePython returns the configured interpreter, or detects one. A
// configured interpreter that cannot import scrapy only gets a warning,
// because the operator chose it on purpose.
func choosePython(ctx context.Context, configured string, resp *pluginapi.ConfigureResponse) string {
	if configured != "" {
		if err := checkPython(ctx, configured, "import sys"); err != nil {
			resp.AddError("python", fmt.Sprintf("cannot run %s", configured), err.Error())
			return ""
		}
		if err := checkPython(ctx, configured, "import scrapy"); err != nil {
			resp.AddWarning("python", fmt.Sprintf("%s cannot import scrapy, so jobs will fail", configured),
				"Install Scrapy for this interpreter, or install Debian's python3-scrapy and remove the python setting.")
		}
		return configured
	}
	python, err := detectPython(ctx, pythonCandidates())
	if err != nil {
		resp.AddError("python", "no Python interpreter that can import scrapy was found",
			err.Error()+". Install Debian's python3-scrapy, or set python to an interpreter with Scrapy installed.")
		return ""
	}
	return python
}

// pythonCandidates lists the interpreters to try, in order: $ESTELA_PYTHON,
// /usr/bin/python3, then python3 on PATH.
func pythonCandidates() []string {
	var candidates []string
	if env := os.Getenv("ESTELA_PYTHON"); env != "" {
		candidates = append(candidates, env)
	}
	candidates = append(candidates, "/usr/bin/python3")
	if onPath, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, onPath)
	}
	return candidates
}

// detectPython returns the first candidate that can import scrapy.
func detectPython(ctx context.Context, candidates []string) (string, error) {
	for _, candidate := range candidates {
		if checkPython(ctx, candidate, "import scrapy") == nil {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("none of %v can import scrapy", candidates)
}

func checkPython(ctx context.Context, python, code string) error {
	ctx, cancel := context.WithTimeout(ctx, pythonCheckTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", code).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -c %q: %w: %s", python, code, err, lastLines(out, 3))
	}
	return nil
}
