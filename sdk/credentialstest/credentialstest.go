// Package credentialstest is the conformance suite for credentials plugins.
// A plugin's tests call Run with a function that returns a configured
// Provider, either the implementation itself or, through Connect, the same
// implementation behind a real gRPC connection, as the host calls it.
package credentialstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Connect serves impl over an in-process gRPC connection, closed when the
// test ends, and returns the Provider the host would get.
func Connect(t testing.TB, impl credentials.Provider) credentials.Provider {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		credentials.PluginName: &credentials.Plugin{Impl: impl},
	})
	// Close also stops the server, through go-plugin's controller service;
	// stopping it here too would race with that.
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(credentials.PluginName)
	if err != nil {
		t.Fatalf("dispense credentials plugin: %v", err)
	}
	return raw.(credentials.Provider)
}

// Run checks the archive contract of a Provider: storing, reading,
// replacing and deleting archives, and the typed errors for missing
// archives and invalid ids. newProvider must return a configured Provider
// with no archives stored; Run calls it once per subtest.
func Run(t *testing.T, newProvider func(t *testing.T) credentials.Provider) {
	t.Run("archive round trip", func(t *testing.T) { testRoundTrip(t, newProvider(t)) })
	t.Run("put replaces", func(t *testing.T) { testPutReplaces(t, newProvider(t)) })
	t.Run("missing archive", func(t *testing.T) { testMissing(t, newProvider(t)) })
	t.Run("delete one deploy", func(t *testing.T) { testDeleteOne(t, newProvider(t)) })
	t.Run("delete every deploy", func(t *testing.T) { testDeleteAll(t, newProvider(t)) })
	t.Run("invalid ids", func(t *testing.T) { testInvalidIDs(t, newProvider(t)) })
}

// archiveBytes returns size pseudo-random bytes, different for each seed.
func archiveBytes(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func put(t *testing.T, p credentials.Provider, projectID string, deployID int64, data []byte) *credentials.PutProjectResponse {
	t.Helper()
	resp, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: projectID, DeployID: deployID, Archive: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("PutProject %s/%d: %v", projectID, deployID, err)
	}
	return resp
}

func get(t *testing.T, p credentials.Provider, projectID string, deployID int64) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	err := p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: projectID, DeployID: deployID}, &buf)
	return buf.Bytes(), err
}

func testRoundTrip(t *testing.T, p credentials.Provider) {
	data := archiveBytes(3<<20+11, 1)
	sum := sha256.Sum256(data)
	resp := put(t, p, "conformance-1", 1, data)
	if resp.Size != int64(len(data)) {
		t.Errorf("PutProject size = %d, want %d", resp.Size, len(data))
	}
	if resp.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("PutProject sha256 = %s, want %x", resp.SHA256, sum)
	}
	got, err := get(t, p, "conformance-1", 1)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", len(got), len(data))
	}
}

func testPutReplaces(t *testing.T, p credentials.Provider) {
	put(t, p, "conformance-1", 1, archiveBytes(1000, 1))
	second := archiveBytes(500, 2)
	put(t, p, "conformance-1", 1, second)
	got, err := get(t, p, "conformance-1", 1)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(got, second) {
		t.Errorf("GetProject returned the first archive, want the second")
	}
}

func testMissing(t *testing.T, p credentials.Provider) {
	put(t, p, "conformance-1", 1, archiveBytes(10, 1))
	if _, err := get(t, p, "conformance-1", 2); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject of a missing deploy: error = %v, want ErrNotFound", err)
	}
	if _, err := get(t, p, "conformance-2", 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject of a missing project: error = %v, want ErrNotFound", err)
	}
}

func testDeleteOne(t *testing.T, p credentials.Provider) {
	put(t, p, "conformance-1", 1, archiveBytes(10, 1))
	put(t, p, "conformance-1", 2, archiveBytes(10, 2))
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "conformance-1", DeployID: 1}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := get(t, p, "conformance-1", 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject of the deleted deploy: error = %v, want ErrNotFound", err)
	}
	if _, err := get(t, p, "conformance-1", 2); err != nil {
		t.Errorf("GetProject of the other deploy: %v", err)
	}
}

func testDeleteAll(t *testing.T, p credentials.Provider) {
	put(t, p, "conformance-1", 1, archiveBytes(10, 1))
	put(t, p, "conformance-1", 2, archiveBytes(10, 2))
	put(t, p, "conformance-2", 1, archiveBytes(10, 3))
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "conformance-1"}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	for _, deployID := range []int64{1, 2} {
		if _, err := get(t, p, "conformance-1", deployID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetProject of deleted deploy %d: error = %v, want ErrNotFound", deployID, err)
		}
	}
	if _, err := get(t, p, "conformance-2", 1); err != nil {
		t.Errorf("GetProject of another project: %v", err)
	}
}

func testInvalidIDs(t *testing.T, p credentials.Provider) {
	cases := []struct {
		projectID string
		deployID  int64
	}{
		{"../escape", 1},
		{"", 1},
		{"conformance-1", 0},
		{"conformance-1", -1},
	}
	for _, c := range cases {
		_, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: c.projectID, DeployID: c.deployID, Archive: bytes.NewReader(nil)})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("PutProject %q/%d: error = %v, want ErrInvalid", c.projectID, c.deployID, err)
		}
		if err := p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: c.projectID, DeployID: c.deployID}, io.Discard); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("GetProject %q/%d: error = %v, want ErrInvalid", c.projectID, c.deployID, err)
		}
	}
}
