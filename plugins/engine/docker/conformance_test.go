package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// conformanceImage is the artifact ref the stand-in PrepareArtifact returns.
const conformanceImage = "registry.example.com/estela/conformance:1"

// prebuiltImage replaces PrepareArtifact, which this engine does not
// support because deploys go through BuildImage. It accepts any zip and
// returns a fixed image, so the suite's job tests run against the real
// engine and the fake daemon. The suite's PrepareArtifact test checks this
// stand-in only.
type prebuiltImage struct {
	hostEngine
	spiders []string
}

// hostEngine is the Engine the host gets from the gRPC client, which
// implements every optional interface.
type hostEngine interface {
	engine.Engine
	engine.JobWatcher
	engine.LogStreamer
	engine.CapacityReporter
	engine.ImageBuilder
}

func (p prebuiltImage) PrepareArtifact(_ context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	data, err := io.ReadAll(req.Archive)
	if err != nil {
		return nil, err
	}
	if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, errdefs.Invalid("the archive is not a zip file: %v", err)
	}
	return &engine.PrepareArtifactResponse{ArtifactRef: conformanceImage, ProjectType: "scrapy", Spiders: p.spiders}, nil
}

func TestConformance(t *testing.T) {
	t.Parallel()
	spiders := []string{"alpha", "beta"}
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			d := newFakeDaemon(t)
			e := newTestEngine(t, d, nil)
			return prebuiltImage{hostEngine: enginetest.Connect(t, e).(hostEngine), spiders: spiders}
		},
		Archive: func(t *testing.T) ([]byte, []string) {
			return projectZip(t), spiders
		},
		Exit:  func(code int) []string { return []string{"sh", "-c", "exit " + strconv.Itoa(code)} },
		Sleep: []string{"sleep", "60"},
		Echo:  func(text string) []string { return []string{"echo", text} },
	})
}
