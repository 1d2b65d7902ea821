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

	"github.com/aws/aws-sdk-go-v2/config"
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

// streamOnly hides the Seek method of a reader, as a gRPC stream has none.
type streamOnly struct{ r io.Reader }

func (s streamOnly) Read(b []byte) (int, error) { return s.r.Read(b) }

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

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
		p, _ := configuredWithS3(t, nil)
		return credentialstest.Connect(t, p)
	})
}

func TestPutGetDeleteProject(t *testing.T) {
	t.Parallel()
	p, s3 := configuredWithS3(t, nil)
	data := randomBytes(1 << 20)

	got := put(t, p, "proj-1", 7, data)
	want := &credentials.PutProjectResponse{Size: int64(len(data)), SHA256: sha256Hex(data)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PutProject mismatch (-want +got):\n%s", diff)
	}
	if stored := s3.object(t, "projects/proj-1/7.zip"); !bytes.Equal(stored, data) {
		t.Errorf("stored object has %d bytes differing from the %d uploaded", len(stored), len(data))
	}
	if n := s3.countRequests("/" + testBucket + "/projects/proj-1/7.zip"); n == 0 {
		t.Errorf("no path-style request for the archive")
	}

	read, err := get(t, p, "proj-1", 7)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(read, data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", len(read), len(data))
	}

	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := get(t, p, "proj-1", 7); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "proj-1", DeployID: 7}); err != nil {
		t.Errorf("second DeleteProject: %v", err)
	}
}

func TestLargeArchiveUsesMultipart(t *testing.T) {
	t.Parallel()
	p, s3 := configuredWithS3(t, nil)
	data := randomBytes(12 << 20)

	got := put(t, p, "big", 1, data)
	if got.Size != int64(len(data)) || got.SHA256 != sha256Hex(data) {
		t.Errorf("PutProject = %+v, want size %d and sha256 %s", got, len(data), sha256Hex(data))
	}
	if n := s3.countRequests("?uploads"); n != 1 {
		t.Errorf("multipart uploads started = %d, want 1", n)
	}
	// 12 MiB in parts of 5 MiB: 5 + 5 + 2.
	if n := s3.countRequests("partNumber="); n != 3 {
		t.Errorf("parts uploaded = %d, want 3", n)
	}

	read, err := get(t, p, "big", 1)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	if !bytes.Equal(read, data) {
		t.Errorf("GetProject returned %d bytes differing from the %d stored", len(read), len(data))
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

func TestFailedUploadLeavesNoObject(t *testing.T) {
	t.Parallel()
	p, s3 := configuredWithS3(t, nil)
	_, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: &failAfter{n: 6 << 20}})
	if err == nil {
		t.Fatal("PutProject succeeded with a failing archive reader")
	}
	if !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("error %q does not name the read failure", err)
	}
	if keys := s3.objectKeys(t); len(keys) != 0 {
		t.Errorf("objects left behind: %v", keys)
	}
	if n := s3.countRequests("DELETE /" + testBucket + "/projects/p/1.zip?uploadId="); n != 1 {
		t.Errorf("multipart uploads aborted = %d, want 1", n)
	}
}

func TestDeleteAllDeploys(t *testing.T) {
	t.Parallel()
	p, s3 := configuredWithS3(t, map[string]any{"prefix": "estela/archives/"})
	put(t, p, "p", 1, []byte("one"))
	put(t, p, "p", 2, []byte("two"))
	put(t, p, "p-1", 1, []byte("other project"))

	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if diff := cmp.Diff([]string{"estela/archives/p-1/1.zip"}, s3.objectKeys(t)); diff != "" {
		t.Errorf("remaining keys mismatch (-want +got):\n%s", diff)
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"}); err != nil {
		t.Errorf("DeleteProject of a project without archives: %v", err)
	}
}

func TestMissingBucketIsInvalid(t *testing.T) {
	t.Parallel()
	s3 := startFakeS3(t)
	p := testProvider()
	configure(t, p, map[string]any{"bucket": "no-such-bucket", "endpoint": s3.server.URL})
	_, err := get(t, p, "p", 1)
	if !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("GetProject error = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), `"no-such-bucket"`) {
		t.Errorf("error %q does not name the bucket", err)
	}
}

// accessDeniedHandler answers every request as S3 does when the identity
// lacks the permission.
func accessDeniedHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R1</RequestId><HostId>H1</HostId></Error>`)
}

func TestAccessDeniedIsInvalid(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(http.HandlerFunc(accessDeniedHandler))
	t.Cleanup(server.Close)
	p := testProvider()
	configure(t, p, map[string]any{"bucket": testBucket, "endpoint": server.URL})

	_, putErr := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: "p", DeployID: 1, Archive: strings.NewReader("zip")})
	_, getErr := get(t, p, "p", 1)
	_, deleteErr := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p"})
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

func TestUnreachableEndpointIsUnavailable(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(http.NotFoundHandler())
	server.Close() // nothing listens on its address any more
	p := testProvider()
	p.loadOptions = append(p.loadOptions, config.WithRetryMaxAttempts(1))
	configure(t, p, map[string]any{"bucket": testBucket, "endpoint": server.URL})
	if _, err := get(t, p, "p", 1); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetProject error = %v, want ErrUnavailable", err)
	}
}

func TestInvalidIDs(t *testing.T) {
	t.Parallel()
	p, _ := configuredWithS3(t, nil)
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
			_, err := p.PutProject(t.Context(), &credentials.PutProjectRequest{ProjectID: tt.projectID, DeployID: tt.deployID, Archive: strings.NewReader("x")})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("PutProject error = %v, want ErrInvalid", err)
			}
			if _, err := get(t, p, tt.projectID, tt.deployID); !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("GetProject error = %v, want ErrInvalid", err)
			}
		})
	}
	for _, projectID := range []string{"../x", ""} {
		if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: projectID}); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("DeleteProject %q error = %v, want ErrInvalid", projectID, err)
		}
	}
	if _, err := p.DeleteProject(t.Context(), &credentials.DeleteProjectRequest{ProjectID: "p", DeployID: -1}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("DeleteProject of deploy -1: error = %v, want ErrInvalid", err)
	}
}

func TestCallsBeforeConfigureAreUnavailable(t *testing.T) {
	t.Parallel()
	p := testProvider()
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
