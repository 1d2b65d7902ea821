// Command estela-credentials-aws is the estela credentials plugin that
// stores project archives in an S3 bucket, or an S3-compatible store such as
// MinIO, and returns credentials for an Amazon ECR registry. It takes AWS
// credentials from the standard configuration chain. The estela server
// starts it; run by hand, it prints a message and exits.
package main

import "github.com/estela-go/estela-go/sdk/credentials"

func main() {
	credentials.Serve(newProvider(credentials.Logger()))
}
