package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// diagnosticPaths returns the paths of the diagnostics of one severity.
func diagnosticPaths(resp *pluginapi.ConfigureResponse, severity pluginapi.Severity) []string {
	var paths []string
	for _, d := range resp.Diagnostics {
		if d.Severity == severity {
			paths = append(paths, d.Path)
		}
	}
	return paths
}

// keyFileWith writes a copy of a valid service account key file with one
// field changed.
func keyFileWith(t *testing.T, field, value string) string {
	t.Helper()
	data, err := os.ReadFile(writeServiceAccount(t, "https://oauth2.googleapis.com/token"))
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]string
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	key[field] = value
	return writeJSON(t, key)
}

func ecdsaKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	validKey := writeServiceAccount(t, "https://oauth2.googleapis.com/token")
	tests := []struct {
		name     string
		config   map[string]any
		errors   []string
		warnings []string
	}{
		{"minimal", map[string]any{"bucket": "b-1"}, nil, nil},
		{"full", map[string]any{"bucket": "b_1.example.com", "prefix": "a/", "endpoint": "http://127.0.0.1:1", "registry": map[string]any{"server": "europe-docker.pkg.dev", "scopes": []string{cloudPlatformScope}}}, nil, nil},
		{"missing bucket", map[string]any{}, []string{"bucket"}, nil},
		{"invalid bucket", map[string]any{"bucket": "Bad Bucket"}, []string{"bucket"}, nil},
		{"bucket part too long", map[string]any{"bucket": strings.Repeat("a", 64) + ".example.com"}, []string{"bucket"}, nil},
		{"bucket not a string", map[string]any{"bucket": 5}, []string{"bucket"}, nil},
		{"scopes not an array", map[string]any{"bucket": "b-1", "registry": map[string]any{"server": "r.test", "scopes": "x"}}, []string{"registry.scopes"}, nil},
		{"unknown keys", map[string]any{"bucket": "b-1", "colour": 1, "registry": map[string]any{"server": "r.test", "port": 1}}, []string{"colour", "registry.port"}, nil},
		{"endpoint without scheme", map[string]any{"bucket": "b-1", "endpoint": "storage.test"}, []string{"endpoint"}, nil},
		{"registry without server", map[string]any{"bucket": "b-1", "registry": map[string]any{}}, []string{"registry.server"}, nil},
		{"registry server with scheme", map[string]any{"bucket": "b-1", "registry": map[string]any{"server": "https://europe-docker.pkg.dev"}}, []string{"registry.server"}, nil},
		{"empty scope", map[string]any{"bucket": "b-1", "registry": map[string]any{"server": "r.test", "scopes": []string{cloudPlatformScope, " "}}}, []string{"registry.scopes.1"}, nil},
		{"prefix with leading slash", map[string]any{"bucket": "b-1", "prefix": "/projects/"}, []string{"prefix"}, nil},
		{"prefix without trailing slash", map[string]any{"bucket": "b-1", "prefix": "projects"}, nil, []string{"prefix"}},
		{"missing credentials file", map[string]any{"bucket": "b-1", "credentials_file": "/nonexistent/key.json"}, []string{"credentials_file"}, nil},
		{"user credentials file", map[string]any{"bucket": "b-1", "credentials_file": keyFileWith(t, "type", "authorized_user")}, []string{"credentials_file"}, nil},
		{"key without email", map[string]any{"bucket": "b-1", "credentials_file": keyFileWith(t, "client_email", "")}, []string{"credentials_file"}, nil},
		{"key not PEM", map[string]any{"bucket": "b-1", "credentials_file": keyFileWith(t, "private_key", "not a key")}, []string{"credentials_file"}, nil},
		{"key not RSA", map[string]any{"bucket": "b-1", "credentials_file": keyFileWith(t, "private_key", ecdsaKeyPEM(t))}, []string{"credentials_file"}, nil},
		{"token uri not a URL", map[string]any{"bucket": "b-1", "credentials_file": keyFileWith(t, "token_uri", "oauth2.test")}, []string{"credentials_file"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, set := tt.config["credentials_file"]; !set {
				tt.config["credentials_file"] = validKey
			}
			raw, err := json.Marshal(tt.config)
			if err != nil {
				t.Fatal(err)
			}
			p := testProvider(256 << 10)
			resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if diff := cmp.Diff(tt.errors, diagnosticPaths(resp, pluginapi.SeverityError)); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, diagnosticPaths(resp, pluginapi.SeverityWarning)); diff != "" {
				t.Errorf("warning paths mismatch (-want +got):\n%s", diff)
			}
			_, err = p.current()
			if configured := err == nil; configured != (tt.errors == nil) {
				t.Errorf("configured = %v, want %v", configured, tt.errors == nil)
			}
		})
	}
}

func TestConfigureInputErrors(t *testing.T) {
	t.Parallel()
	for _, config := range []string{``, `[1]`} {
		resp, err := testProvider(256<<10).Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(config)})
		if err != nil {
			t.Fatalf("Configure(%q): %v", config, err)
		}
		if !resp.HasErrors() {
			t.Errorf("Configure(%q) accepted", config)
		}
	}
}

func TestDiagnosticsOmitPrivateKey(t *testing.T) {
	t.Parallel()
	path := keyFileWith(t, "type", "authorized_user")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var key map[string]string
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	resp, err := testProvider(256<<10).Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"bucket":"b-1","credentials_file":"` + path + `"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	text, _ := json.Marshal(resp)
	keyBody := strings.Split(key["private_key"], "\n")[1]
	if strings.Contains(string(text), keyBody) {
		t.Errorf("diagnostics contain the private key: %s", text)
	}
}

func TestInvalidSettingsKeepPrevious(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, nil)
	resp, err := fx.p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"bucket":""}`)})
	if err != nil || !resp.HasErrors() {
		t.Fatalf("Configure with an empty bucket = %+v, %v; want error diagnostics", resp, err)
	}
	put(t, fx.p, "p", 1, []byte("still stored in the first bucket"))
}

// TestApplicationDefaultCredentials runs without credentials_file. TestMain
// points the metadata server at a closed loopback port, so Configure finds
// credentials but fetching a token fails.
func TestApplicationDefaultCredentials(t *testing.T) {
	t.Parallel()
	gcs := startFakeGCS(t, func(string) bool { return true })
	p := testProvider(256 << 10)
	configure(t, p, map[string]any{"bucket": testBucket, "endpoint": gcs.server.URL})
	_, err := get(t, p, "p", 1)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetProject error = %v, want ErrUnavailable", err)
	}
	if err != nil && !strings.Contains(err.Error(), "cannot get an access token") {
		t.Errorf("error %q does not say the token is missing", err)
	}
	if n := gcs.countRequests(""); n != 0 {
		t.Errorf("requests without a token = %d, want 0", n)
	}
}
