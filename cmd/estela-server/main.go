// Command estela-server runs the estela-go control plane: the HTTP API, the background worker,
// or both in one process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/app"
)

const usage = `usage: estela-server [-config FILE] COMMAND

Commands:
  all       run the API and the worker in one process
  api       run the HTTP API
  worker    run the background worker (dispatch, deploys, reconcile)
  migrate   apply database migrations and exit
  plugins   list the plugins found in the plugin folders
`

func main() {
	configPath := flag.String("config", "configs/estela.hcl", "path of the HCL configuration file")
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage); flag.PrintDefaults() }
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "estela", Level: hclog.LevelFromString(os.Getenv("ESTELA_LOG_LEVEL"))})
	if err := startProfiler(log); err != nil {
		log.Error("estela-server failed", "error", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, flag.Arg(0), *configPath, log); err != nil {
		log.Error("estela-server failed", "error", err)
		os.Exit(1)
	}
}
