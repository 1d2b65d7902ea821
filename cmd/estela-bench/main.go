// Command estela-bench measures the estela-go platform on this machine. It starts Postgres,
// Redis, an API process and worker processes with the noop engine, and runs each benchmark
// phase. It prints a table and, when BENCH_OUT names a file, writes the figures there as JSON.
// docs/benchmarks.md explains every figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/bench"
)

func main() {
	opts := bench.Options{Sizes: bench.DefaultSizes()}
	quick := flag.Bool("quick", false, "run every phase with tiny sizes (a smoke test; the figures mean little)")
	skip := flag.String("skip", "", "comma-separated phases not to run: "+strings.Join(bench.Phases, ", "))
	plugins := flag.String("plugin-dir", "bin/plugins", "folder with estela-engine-noop and estela-credentials-local")
	flag.StringVar(&opts.Repo, "repo", ".", "repository root, where deploy/local/services.sh is")
	flag.StringVar(&opts.ServerBinary, "server", "bin/estela-server", "estela-server executable")
	flag.StringVar(&opts.WorkDir, "work-dir", "", "folder for config, server logs and archives, kept after the run (default: a temporary folder, removed unless the run failed)")
	flag.BoolVar(&opts.Pprof, "pprof", false, "serve Go profiles from each server process on a loopback port, logged at its start")
	opts.Sizes.RegisterFlags(flag.CommandLine)
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: estela-bench [flags]\n\nUses DATABASE_URL and REDIS_URL when both are set (in a database of its own on that server);\notherwise starts Postgres and Redis with deploy/local/services.sh in a temporary folder.\nWrites the figures as JSON to the file BENCH_OUT names, when set. -quick replaces the\ndefault sizes below; size flags given with it still apply.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "estela-bench takes no arguments, only flags; got %q\n\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	if *quick {
		quickSizes := bench.QuickSizes()
		opts.Sizes = quickSizes
		flag.CommandLine.Parse(os.Args[1:]) // sizes given as flags still win over the quick ones
	}

	opts.PluginDirs = []string{*plugins}
	opts.DatabaseURL, opts.RedisURL = os.Getenv("DATABASE_URL"), os.Getenv("REDIS_URL")
	if (opts.DatabaseURL == "") != (opts.RedisURL == "") {
		missing := "REDIS_URL"
		if opts.DatabaseURL == "" {
			missing = "DATABASE_URL"
		}
		fmt.Fprintf(os.Stderr, "estela-bench uses existing servers only when DATABASE_URL and REDIS_URL are both set; %s is missing. Set it, or unset both to start servers of its own.\n", missing)
		os.Exit(2)
	}
	opts.Skip = map[string]bool{}
	for _, phase := range strings.Split(*skip, ",") {
		if phase = strings.TrimSpace(phase); phase != "" {
			opts.Skip[phase] = true
		}
	}
	var err error
	if opts.ServerBinary, err = filepath.Abs(opts.ServerBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	opts.Log = hclog.New(&hclog.LoggerOptions{Name: "estela-bench", Level: hclog.LevelFromString(os.Getenv("ESTELA_LOG_LEVEL")), Output: os.Stderr})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// The first signal cancels the run, which then stops what it started. A second one
		// ends the process at once, as without the handler.
		<-ctx.Done()
		stop()
	}()
	if err := bench.Main(ctx, opts, os.Stdout, os.Getenv("BENCH_OUT")); err != nil {
		msg := "benchmark failed"
		if ctx.Err() != nil {
			msg = "benchmark interrupted; the processes it started were stopped"
		}
		opts.Log.Error(msg, "error", err)
		if opts.Log.GetLevel() == hclog.Off {
			// ESTELA_LOG_LEVEL=off silences the log, but not why the run failed.
			fmt.Fprintf(os.Stderr, "estela-bench: %s: %v\n", msg, err)
		}
		stop()
		os.Exit(1)
	}
}
