// Command estela-engine-nomad is the estela engine plugin that runs spiders
// as Nomad batch jobs with the docker driver. It runs images built
// elsewhere, for example by the docker engine. The estela server starts it;
// run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/engine"

func main() {
	engine.Serve(newEngine(engine.Logger()))
}
