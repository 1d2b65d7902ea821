package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/credentialstest"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// randomBytes returns size pseudo-random bytes, which do not compress.
func randomBytes(size int) []byte {
	rng := rand.New(rand.NewPCG(7, uint64(size)))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// streamOnly hides the Seek method of a reader, as a gRPC stream has none.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(b []byte) (int, error) { return s.r.Read(b) }

func put(t *testing.T, p *provider, projectID string, deployID int64, data []byte) *credentials.PutProjectResponse {
	t.Helper()
	resp, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: projectID, DeployID: deployID, Archive: streamOnly{bytes.NewReader(data)}})
	if err != nil {
		t.Fatalf("PutProject %s/%d: %v", projectID, deployID, err)
	}
	return resp
}

func get(t *testing.T, p *provider, projectID string, deployID int64) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	err := p.GetProject(t.Context(), &credentials.GetProjectRequest{ProjectID: projectID, DeployID: deployID}, &buf)
	return buf.Bytes(), err
}

func TestConformance(t *testing.T) {
	t.Parallel()
	credentialstest.Run(t, func(t *testing.T) credentials.Provider {
		return credentialstest.Connect(t, newFixture(t, nil).p)
	})
}

func TestPutGetDeleteProject(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	data := randomBytes(300 << 10)

	got := put(t, fx.p, "proj-1", 7, data)
	want := &credentials.PutProjectResponse{Size: int64(len(data)), SHA256: sha256Hex(data)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PutProject mismatch (-want +got):\n%s", diff)
	}
	stored, ok := fx.gcs.object("projects/proj-1/7.zip")
	if !ok || !bytes.Equal(stored, data) {
		t.Errorf("stored object differs from the archive (found %v)", ok)
	}
	if diff := cmp.Diff([]string{storageScope}, fx.tokens.requestedScopes()); diff != "" {
		t.Errorf("token requests mismatch (-want +got):\n%s", diff)
	}

	read, err := get(t, fx.p, "proj-1", 7)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(read, data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", len(read), len(data))
	}
	if n := fx.gcs.countRequests("GET /storage/v1/b/" + testBucket + "/o/projects%2Fproj-1%2F7.zip?alt=media"); n != 1 {
		t.Errorf("media downloads with the escaped object name = %d, want 1", n)
	}

	if _, err := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := get(t, fx.p, "proj-1", 7); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Errorf("second DeleteProject: %v", err)
	}
}

func TestLargeArchiveInChunks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		size        int
		wantPuts    int
		persistHalf bool
	}{
		// 12 full chunks, then an empty request that gives the total size.
		{"exact multiple of the chunk size", 12 << 20, 13, false},
		{"partial last chunk", 12<<20 + 5, 13, false},
		// Each chunk takes several requests, so only the data is checked.
		{"server persists half of each request", 3 << 20, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, nil)
			fx.p.state.storage.chunkSize = 1 << 20
			fx.gcs.set(func(f *fakeGCS) { f.persistHalf = tt.persistHalf })
			data := randomBytes(tt.size)

			got := put(t, fx.p, "big", 1, data)
			if got.Size != int64(len(data)) || got.SHA256 != sha256Hex(data) {
				t.Errorf("PutProject = %+v, want size %d and sha256 %s", got, len(data), sha256Hex(data))
			}
			if n := fx.gcs.countRequests("PUT "); tt.wantPuts != 0 && n != tt.wantPuts {
				t.Errorf("upload requests = %d, want %d", n, tt.wantPuts)
			}
			read, err := get(t, fx.p, "big", 1)
			if err != nil {
				t.Fatalf("GetProject: %v", err)
			}
			if !bytes.Equal(read, data) {
				t.Errorf("GetProject returned %d bytes differing from the %d stored", len(read), len(data))
			}
		})
	}
}

// failAfter returns n bytes, then an error.
type failAfter struct{ n int }

func (f *failAfter) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(b), f.n)
	f.n -= n
	return n, nil
}

func TestFailedUploadIsCancelled(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	_, err := fx.p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: &failAfter{n: 600 << 10}})
	if err == nil {
		t.Fatal("PutProject succeeded with a failing archive reader")
	}
	if !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("error %q does not name the read failure", err)
	}
	if n := fx.gcs.countRequests("DELETE /upload/"); n != 1 {
		t.Errorf("upload cancels = %d, want 1", n)
	}
	if n := fx.gcs.openSessions(); n != 0 {
		t.Errorf("open upload sessions = %d, want 0", n)
	}
	if names := fx.gcs.objectNames(); len(names) != 0 {
		t.Errorf("objects left behind: %v", names)
	}
}

func TestCorruptUploadIsDeleted(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	fx.gcs.set(func(f *fakeGCS) { f.wrongMD5 = true })
	_, err := fx.p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("PutProject error = %v, want ErrUnavailable", err)
	}
	if names := fx.gcs.objectNames(); len(names) != 0 {
		t.Errorf("objects left behind: %v", names)
	}
}

func TestDeleteAllDeploys(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]any{"prefix": "estela/archives/"})
	fx.gcs.set(func(f *fakeGCS) { f.pageSize = 2 })
	for deployID := int64(1); deployID <= 3; deployID++ {
		put(t, fx.p, "p", deployID, []byte("archive"))
	}
	put(t, fx.p, "p-1", 1, []byte("other project"))

	if _, err := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if diff := cmp.Diff([]string{"estela/archives/p-1/1.zip"}, fx.gcs.objectNames()); diff != "" {
		t.Errorf("remaining objects mismatch (-want +got):\n%s", diff)
	}
	if n := fx.gcs.countRequests("GET /storage/v1/b/" + testBucket + "/o?"); n != 2 {
		t.Errorf("list requests = %d, want 2 pages", n)
	}
	if _, err := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); err != nil {
		t.Errorf("DeleteProject of a project without archives: %v", err)
	}
}

func TestMissingBucketIsInvalid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]any{"bucket": "no-such-bucket"})
	_, putErr := fx.p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})
	_, getErr := get(t, fx.p, "p", 1)
	_, deleteErr := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"})
	for name, err := range map[string]error{"PutProject": putErr, "GetProject": getErr, "DeleteProject": deleteErr} {
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s error = %v, want ErrInvalid", name, err)
			continue
		}
		if !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
			t.Errorf("%s error %q does not name the bucket", name, err)
		}
	}
}

func TestAccessDeniedIsInvalid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	fx.gcs.set(func(f *fakeGCS) { f.denyAll = true })
	_, putErr := fx.p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})
	_, getErr := get(t, fx.p, "p", 1)
	_, deleteErr := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"})
	for name, err := range map[string]error{"PutProject": putErr, "GetProject": getErr, "DeleteProject": deleteErr} {
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s error = %v, want ErrInvalid", name, err)
			continue
		}
		if !strings.Contains(err.Error(), `access to bucket "`+testBucket+`" denied`) {
			t.Errorf("%s error %q does not name the bucket", name, err)
		}
	}
}

func TestRejectedKeyIsInvalid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]any{"registry": map[string]any{"server": "europe-docker.pkg.dev"}})
	fx.tokens.failWith(http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	_, getErr := get(t, fx.p, "p", 1)
	_, authErr := fx.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{})
	for name, err := range map[string]error{"GetProject": getErr, "RegistryAuth": authErr} {
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s error = %v, want ErrInvalid", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("%s error %q does not give the token endpoint's reason", name, err)
		}
	}
}

func TestUnreachableEndpointIsUnavailable(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(http.NotFoundHandler())
	server.Close() // nothing listens on its address any more
	fx := newFixture(t, map[string]any{"endpoint": server.URL})
	if _, err := get(t, fx.p, "p", 1); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetProject error = %v, want ErrUnavailable", err)
	}
}

func TestInvalidIDs(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	tests := []struct {
		name      string
		projectID string
		deployID  int64
	}{
		{"empty project", "", 1},
		{"upper case", "Proj", 1},
		{"traversal", "../x", 1},
		{"slash", "a/b", 1},
		{"zero deploy", "p", 0},
		{"negative deploy", "p", -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := fx.p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: tt.projectID, DeployID: tt.deployID, Archive: strings.NewReader("x")})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("PutProject error = %v, want ErrInvalid", err)
			}
			if _, err := get(t, fx.p, tt.projectID, tt.deployID); !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("GetProject error = %v, want ErrInvalid", err)
			}
		})
	}
	for _, projectID := range []string{"../x", ""} {
		if _, err := fx.p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: projectID}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("DeleteProject %q error = %v, want ErrInvalid", projectID, err)
		}
	}
}

func TestCallsBeforeConfigureAreUnavailable(t *testing.T) {
	t.Parallel()
	p := testProvider(256 << 10)
	if _, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("RegistryAuth error = %v, want ErrUnavailable", err)
	}
	if _, err := get(t, p, "p", 1); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetProject error = %v, want ErrUnavailable", err)
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("DeleteProject error = %v, want ErrUnavailable", err)
	}
}
