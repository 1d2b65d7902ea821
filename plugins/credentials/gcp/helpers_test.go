package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const (
	testBucket      = "estela-archives"
	testClientEmail = "estela@test-project.iam.gserviceaccount.com"
)

// TestMain points the metadata server of Application Default Credentials
// at a closed loopback port, so no test reaches the real one.
func TestMain(m *testing.M) {
	os.Setenv("GCE_METADATA_HOST", "127.0.0.1:1")
	os.Unsetenv("GOOGLE_APPLICATION_CREDENTIALS")
	os.Exit(m.Run())
}

// testKey is the service account's RSA key, generated once per test run.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

// writeServiceAccount writes a service account key file whose token_uri is
// tokenURL and returns its path.
func writeServiceAccount(t *testing.T, tokenURL string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{
		"type":           "service_account",
		"project_id":     "test-project",
		"private_key_id": "key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   testClientEmail,
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURL,
	}
	return writeJSON(t, key)
}

func writeJSON(t *testing.T, value any) string {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeTokenServer is an OAuth2 token endpoint for the JWT bearer grant of
// service accounts (RFC 7523). It checks the assertion's signature against
// testKey and issues tokens "test-token-<n>".
type fakeTokenServer struct {
	server *httptest.Server

	mu sync.Mutex
	// expiresIn is the lifetime of the issued tokens, in seconds.
	expiresIn int
	// failStatus and failBody replace the success response when failStatus
	// is set.
	failStatus int
	failBody   string
	scopes     []string // the scope claim of each request
	issued     map[string]bool
}

func startTokenServer(t *testing.T) *fakeTokenServer {
	t.Helper()
	f := &fakeTokenServer{expiresIn: 3600, issued: map[string]bool{}}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeTokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	claims, err := verifyAssertion(r.FormValue("assertion"))
	if err != nil || claims.Iss != testClientEmail || claims.Aud != f.server.URL {
		http.Error(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = append(f.scopes, claims.Scope)
	w.Header().Set("Content-Type", "application/json")
	if f.failStatus != 0 {
		w.WriteHeader(f.failStatus)
		fmt.Fprint(w, f.failBody)
		return
	}
	token := fmt.Sprintf("test-token-%d", len(f.scopes))
	f.issued[token] = true
	fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"token_type":"Bearer"}`, token, f.expiresIn)
}

// jwtClaims are the claims of a service account's assertion.
type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
}

// verifyAssertion checks the RS256 signature of a JWT and returns its
// claims.
func verifyAssertion(assertion string) (*jwtClaims, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("assertion has %d parts, want 3", len(parts))
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&testKey().PublicKey, crypto.SHA256, digest[:], signature); err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims jwtClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	return &claims, nil
}

// validToken reports whether the server issued token.
func (f *fakeTokenServer) validToken(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[token]
}

func (f *fakeTokenServer) requestedScopes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.scopes...)
}

// failWith makes the server respond with status and body from now on.
func (f *fakeTokenServer) failWith(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failStatus, f.failBody = status, body
}

// testProvider returns an unconfigured provider with uploads in chunks of
// chunkSize bytes.
func testProvider(chunkSize int) *provider {
	p := newProvider(hclog.NewNullLogger())
	p.chunkSize = chunkSize
	return p
}

// configure applies settings to p and fails the test on an error
// diagnostic.
func configure(t *testing.T, p *provider, settings map[string]any) {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
}

// fixture is a provider configured against a fake Cloud Storage and a
// fake token endpoint.
type fixture struct {
	p      *provider
	gcs    *fakeGCS
	tokens *fakeTokenServer
}

// newFixture returns a configured provider with uploads in chunks of 256
// KiB, the smallest size Cloud Storage allows, plus the extra settings
// given.
func newFixture(t *testing.T, extra map[string]any) *fixture {
	t.Helper()
	tokens := startTokenServer(t)
	gcs := startFakeGCS(t, tokens.validToken)
	settings := map[string]any{
		"bucket":           testBucket,
		"endpoint":         gcs.server.URL,
		"credentials_file": writeServiceAccount(t, tokens.server.URL),
	}
	for k, v := range extra {
		settings[k] = v
	}
	p := testProvider(256 << 10)
	configure(t, p, settings)
	return &fixture{p: p, gcs: gcs, tokens: tokens}
}
