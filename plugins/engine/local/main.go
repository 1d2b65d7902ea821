// Command estela-engine-local is the estela engine plugin that runs spiders
// as processes on the machine it runs on. It unpacks each deploy's project
// into a directory and starts jobs there with the job-side scripts. The
// estela server starts it; run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/engine"

func main() {
	e := newEngine(engine.Logger())
	e.exitOnTerm()
	engine.Serve(e)
}
