package main

import (
	"strconv"
	"testing"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			e, _ := newTestEngine(t)
			return enginetest.Connect(t, e)
		},
		Archive: func(t *testing.T) ([]byte, []string) {
			return makeZip(t, projectFiles("myproject/")...), []string{"alpha", "beta"}
		},
		Exit:  func(code int) []string { return []string{"sh", "-c", "exit " + strconv.Itoa(code)} },
		Sleep: []string{"sleep", "60"},
	})
}
