// Command estela-credentials-local is the estela credentials plugin that
// stores project archives in a local directory and returns registry
// credentials from its settings. The estela server starts it; run by hand,
// it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/credentials"

func main() {
	credentials.Serve(newProvider(credentials.Logger()))
}
