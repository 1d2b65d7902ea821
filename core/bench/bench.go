// Package bench measures the platform on one machine: job dispatch, plugin calls, job data
// ingest and export, job lists, reconcile and cron. Each figure is taken next to the limit it is
// compared with in the same run (raw COPY, the store calls without HTTP), because on a shared
// machine only ratios and counts carry over from one run to the next. cmd/estela-bench runs it.
//
// The package sits outside core/internal, like core/app, because Go lets only code under core/
// import core/internal and cmd/estela-bench is not under core/.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Options select the services, binaries, phases and sizes of a run.
type Options struct {
	// Repo is the repository root; deploy/local/services.sh is started from there when
	// DatabaseURL or RedisURL is empty.
	Repo string
	// ServerBinary is the estela-server executable run as the API and worker processes.
	ServerBinary string
	// PluginDirs must hold estela-engine-noop and estela-credentials-local.
	PluginDirs []string
	// DatabaseURL and RedisURL point at running services. When either is empty, both are
	// started in a throwaway folder and removed at the end.
	DatabaseURL string
	RedisURL    string
	// UseDatabaseAsIs runs in DatabaseURL's database itself. Otherwise a database of its own
	// is created on that server and dropped at the end.
	UseDatabaseAsIs bool
	// WorkDir holds config files, server logs and archives; a temporary folder when empty.
	WorkDir string
	// Pprof serves Go profiles from every server process on a loopback port of its own, logged
	// when the process starts.
	Pprof bool
	// Skip lists phases not to run; their figures are null in the JSON.
	Skip  map[string]bool
	Sizes Sizes
	Log   hclog.Logger
}

// Phase names, as -skip takes them.
const (
	PhaseRPC       = "rpc"
	PhaseDispatch  = "dispatch"
	PhaseIngest    = "ingest"
	PhaseExport    = "export"
	PhaseReconcile = "reconcile"
	PhaseCron      = "cron"
	PhaseJobList   = "joblist"
)

// Phases lists every phase in the order Run runs them. The job list phase comes last because
// it adds a million jobs, which would slow the polling queries of the other phases.
var Phases = []string{PhaseRPC, PhaseDispatch, PhaseIngest, PhaseExport, PhaseReconcile, PhaseCron, PhaseJobList}

// checkSkip returns an error that names every unknown phase in skip, or one for a skip that
// leaves no phase to run.
func checkSkip(skip map[string]bool) error {
	var unknown []string
	for _, phase := range slices.Sorted(maps.Keys(skip)) {
		if !slices.Contains(Phases, phase) {
			unknown = append(unknown, strconv.Quote(phase))
		}
	}
	switch {
	case len(unknown) == 1:
		return fmt.Errorf("unknown phase %s to skip (phases: %s)", unknown[0], strings.Join(Phases, ", "))
	case len(unknown) > 1:
		return fmt.Errorf("unknown phases %s to skip (phases: %s)", strings.Join(unknown, ", "), strings.Join(Phases, ", "))
	case !slices.ContainsFunc(Phases, func(phase string) bool { return !skip[phase] }):
		return fmt.Errorf("every phase is skipped, so there is nothing to run (phases: %s)", strings.Join(Phases, ", "))
	}
	return nil
}

// Run starts the platform, runs every phase not skipped and returns the results. It stops
// every process and service it started before it returns.
func Run(ctx context.Context, opts Options) (_ *Results, err error) {
	if err := errors.Join(opts.Sizes.validate(), checkSkip(opts.Skip)); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = hclog.New(&hclog.LoggerOptions{Name: "bench", Output: os.Stderr})
	}
	cleanup, err := prepareWorkDir(&opts)
	if err != nil {
		return nil, err
	}
	defer func() { cleanup(err != nil && ctx.Err() == nil) }()

	p, err := startPlatform(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer p.close()
	res := &Results{Sizes: opts.Sizes}
	res.Limits.LoadStart = loadAverage()
	defer func() { res.Limits.LoadEnd = loadAverage() }()
	for _, phase := range Phases {
		if opts.Skip[phase] {
			opts.Log.Info("phase skipped", "phase", phase)
			continue
		}
		if err := runPhase(ctx, p, phase, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func runPhase(ctx context.Context, p *platform, phase string, res *Results) error {
	run := map[string]func(context.Context, *platform, *Results) error{
		PhaseRPC: measureRPC, PhaseDispatch: measureDispatch, PhaseIngest: measureIngest,
		PhaseExport: measureExport, PhaseReconcile: measureReconcile, PhaseCron: measureCron,
		PhaseJobList: measureJobList,
	}[phase]
	p.log.Info("phase started", "phase", phase)
	start := time.Now()
	if err := run(ctx, p, res); err != nil {
		return fmt.Errorf("%s: %w", phase, err)
	}
	p.log.Info("phase done", "phase", phase, "seconds", time.Since(start).Round(100*time.Millisecond).Seconds())
	return nil
}

// prepareWorkDir creates a temporary work folder when none is set, and returns the function
// to call when the run ends. It removes a temporary folder unless the run failed, without an
// interrupt, after a server wrote to its log there, because the error names that log.
func prepareWorkDir(opts *Options) (func(failed bool), error) {
	if opts.WorkDir != "" {
		return func(bool) {}, os.MkdirAll(opts.WorkDir, 0o700)
	}
	dir, err := os.MkdirTemp("", "estela-bench-")
	if err != nil {
		return nil, fmt.Errorf("create work folder: %w", err)
	}
	opts.WorkDir = dir
	return func(failed bool) {
		if !failed || !hasServerLog(dir) {
			os.RemoveAll(dir)
			return
		}
		opts.Log.Info("work folder kept for its server logs; remove it when done", "dir", dir)
	}, nil
}

// hasServerLog reports whether a server wrote to its log in dir.
func hasServerLog(dir string) bool {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, path := range logs {
		if info, err := os.Stat(path); err == nil && info.Size() > 0 {
			return true
		}
	}
	return false
}

// Main runs the benchmark for cmd/estela-bench: it prints the table on out and writes the
// JSON to jsonPath when that is not empty. Results measured before a failure are still
// printed and written.
func Main(ctx context.Context, opts Options, out io.Writer, jsonPath string) error {
	if jsonPath != "" {
		// Find out now, not after the run, that the results cannot be written.
		probe, err := os.CreateTemp(filepath.Dir(jsonPath), ".estela-bench-*")
		if err != nil {
			return fmt.Errorf("BENCH_OUT %s cannot be written: %w", jsonPath, err)
		}
		probe.Close()
		os.Remove(probe.Name())
	}
	res, runErr := Run(ctx, opts)
	if res == nil {
		return runErr
	}
	if err := WriteTable(out, res); err != nil {
		return err
	}
	if jsonPath != "" {
		if err := WriteJSON(jsonPath, res); err != nil {
			return err
		}
	}
	return runErr
}
