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

// prebuiltImage replaces PrepareArtifact, which this engine does not
// support because it runs images built elsewhere. It accepts any zip and
// returns a fixed image, so the suite's job tests run against the real
// engine and the fake agent. The suite's PrepareArtifact test checks this
// replacement only.
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
	return &engine.PrepareArtifactResponse{ArtifactRef: testImage, ProjectType: "scrapy", Spiders: p.spiders}, nil
}

func emptyZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	if _, err := zw.Create("scrapy.cfg"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConformance(t *testing.T) {
	t.Parallel()
	spiders := []string{"alpha", "beta"}
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			e := newTestEngine(t, newFakeAgent(t), nil)
			return prebuiltImage{hostEngine: enginetest.Connect(t, e).(hostEngine), spiders: spiders}
		},
		Archive: func(t *testing.T) ([]byte, []string) { return emptyZip(t), spiders },
		Exit:    func(code int) []string { return []string{"sh", "-c", "exit " + strconv.Itoa(code)} },
		Sleep:   []string{"sleep", "60"},
		Echo:    func(text string) []string { return []string{"echo", text} },
	})
}
