// Command estela-engine-docker is the estela engine plugin that runs spiders
// as containers of one Docker daemon. It builds each deploy into an image
// with the daemon's builder, pushes it, and starts jobs from it. The estela
// server starts it; run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/engine"

func main() {
	engine.Serve(newEngine(engine.Logger()))
}
