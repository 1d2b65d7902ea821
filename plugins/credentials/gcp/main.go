// Command estela-credentials-gcp is the estela credentials plugin that
// stores project archives in a Cloud Storage bucket, through the JSON API,
// and returns OAuth2 access tokens for Artifact Registry. It authenticates
// with a service account key file or Application Default Credentials. The
// estela server starts it; run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/credentials"

func main() {
	credentials.Serve(newProvider(credentials.Logger()))
}
