// Command estela-engine-noop is an estela engine plugin whose jobs run no
// process: a job succeeds once the job_duration setting has passed, at once
// by default, and every job lives in memory until DeleteJob or until the
// plugin exits. It is the SDK's example engine and the engine that platform
// benchmarks use to measure the server without an orchestrator.
//
// Build it from the sdk folder with
//
//	go build -o ../bin/plugins/estela-engine-noop ./examples/engine-noop
//
// or `make engine-noop`. The estela server starts it; run by hand, it prints
// a message and exits.
//
// A job's command normally does not matter. Two commands change what the job
// does, so that tests can reach every state:
//
//	noop-exit CODE [DURATION]   exit with CODE after DURATION (default: job_duration)
//	noop-sleep [DURATION]       succeed after DURATION, or run until stopped without one
//
// DURATION is a Go duration such as "1.5s". A job whose max runtime passes
// first ends FAILED.
package main

import "github.com/estela-go/estela-go/sdk/engine"

func main() {
	engine.Serve(newEngine(engine.Logger()))
}
