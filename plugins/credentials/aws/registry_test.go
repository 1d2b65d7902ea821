package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

const (
	testRegistryID = "123456789012"
	testRegistry   = testRegistryID + ".dkr.ecr.eu-west-1.amazonaws.com"
	testPassword   = "ecr-password-do-not-log"
)

// tokenExpiry is the expiry of the tokens fakeECR returns.
var tokenExpiry = time.Date(2030, 5, 6, 19, 0, 0, 0, time.UTC)

// fakeECR serves GetAuthorizationToken in the AWS JSON 1.1 protocol, with
// the response shape of the ECR API reference.
type fakeECR struct {
	server *httptest.Server

	mu sync.Mutex
	// status and body replace the success response when status is set.
	status   int
	body     string
	calls    int
	lastBody map[string]any
}

func startFakeECR(t *testing.T) *fakeECR {
	t.Helper()
	f := &fakeECR{}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeECR) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
		http.Error(w, "unexpected request "+r.Method+" "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
		return
	}
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.calls++
	f.lastBody = body
	status, failure := f.status, f.body
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if status != 0 {
		w.WriteHeader(status)
		io.WriteString(w, failure)
		return
	}
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + testPassword))
	fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d.0,"proxyEndpoint":"https://%s"}]}`,
		token, tokenExpiry.Unix(), testRegistry)
}

// respondWith makes the server respond with status and body from now on.
func (f *fakeECR) respondWith(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeECR) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// configuredWithECR returns a provider whose ecr block points at a new
// fakeECR, and whose clock reads now.
func configuredWithECR(t *testing.T, logger hclog.Logger, now *time.Time) (*provider, *fakeECR) {
	t.Helper()
	ecr := startFakeECR(t)
	s3 := startFakeS3(t)
	p := testProvider()
	if logger != nil {
		p.logger = logger
	}
	configure(t, p, map[string]any{
		"bucket":   testBucket,
		"endpoint": s3.server.URL,
		"region":   "eu-west-1",
		"ecr":      map[string]any{"registry_id": testRegistryID, "endpoint": ecr.server.URL},
	})
	st, err := p.current()
	if err != nil {
		t.Fatal(err)
	}
	st.registry.now = func() time.Time { return *now }
	return p, ecr
}

func TestRegistryAuth(t *testing.T) {
	t.Parallel()
	now := tokenExpiry.Add(-12 * time.Hour)
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	p, ecr := configuredWithECR(t, logger, &now)
	want := &credentials.RegistryAuthResponse{Server: testRegistry, Username: "AWS", Secret: testPassword, ExpiresAt: tokenExpiry}

	for _, name := range []string{"", testRegistry, "https://" + testRegistry} {
		got, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{Registry: name})
		if err != nil {
			t.Fatalf("RegistryAuth(%q): %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RegistryAuth(%q) mismatch (-want +got):\n%s", name, diff)
		}
	}
	ecr.mu.Lock()
	lastBody := ecr.lastBody
	ecr.mu.Unlock()
	if diff := cmp.Diff(map[string]any{"registryIds": []any{testRegistryID}}, lastBody); diff != "" {
		t.Errorf("request body mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Errorf("logs contain the registry password:\n%s", logs.String())
	}
}

func TestRegistryAuthCachesUntilMargin(t *testing.T) {
	t.Parallel()
	now := tokenExpiry.Add(-12 * time.Hour)
	p, ecr := configuredWithECR(t, nil, &now)
	steps := []struct {
		name      string
		now       time.Time
		wantCalls int
	}{
		{"first call", tokenExpiry.Add(-12 * time.Hour), 1},
		{"cached", tokenExpiry.Add(-time.Hour), 1},
		{"just before the margin", tokenExpiry.Add(-tokenRefreshMargin - time.Second), 1},
		{"within the margin", tokenExpiry.Add(-tokenRefreshMargin), 2},
		{"new token cached", tokenExpiry.Add(-time.Minute), 3},
	}
	for _, step := range steps {
		now = step.now
		if _, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{}); err != nil {
			t.Fatalf("%s: RegistryAuth: %v", step.name, err)
		}
		if got := ecr.callCount(); got != step.wantCalls {
			t.Errorf("%s: ECR calls = %d, want %d", step.name, got, step.wantCalls)
		}
	}
}

func TestRegistryAuthErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		registry string
		want     error
	}{
		{"other registry", 0, "", "docker.io", errdefs.ErrNotFound},
		{"access denied", http.StatusBadRequest, `{"__type":"AccessDeniedException","message":"not authorized to perform ecr:GetAuthorizationToken"}`, "", errdefs.ErrInvalid},
		{"server error", http.StatusInternalServerError, `{"__type":"ServerException","message":"try again"}`, "", errdefs.ErrUnavailable},
		{"no data", http.StatusOK, `{"authorizationData":[]}`, "", errdefs.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := tokenExpiry.Add(-12 * time.Hour)
			p, ecr := configuredWithECR(t, nil, &now)
			ecr.respondWith(tt.status, tt.body)
			_, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{Registry: tt.registry})
			if !errors.Is(err, tt.want) {
				t.Errorf("RegistryAuth error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegistryAuthWithoutECR(t *testing.T) {
	t.Parallel()
	p, _ := configuredWithS3(t, nil)
	if _, err := p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("RegistryAuth error = %v, want ErrNotFound", err)
	}
}
