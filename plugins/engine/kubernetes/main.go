// Command estela-engine-kubernetes is the estela engine plugin that runs
// spiders as batch/v1 Jobs of a Kubernetes namespace and builds deploys into
// container images with Kaniko Jobs in the same namespace. The estela server
// starts it; run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/engine"

func main() {
	engine.Serve(newEngine(engine.Logger()))
}
