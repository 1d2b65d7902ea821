package main

import (
	"testing"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/credentialstest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	credentialstest.Run(t, func(t *testing.T) credentials.Provider {
		p, _ := configured(t, nil)
		return credentialstest.Connect(t, p)
	})
}
