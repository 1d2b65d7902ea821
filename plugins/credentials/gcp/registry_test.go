package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

const testRegistry = "europe-docker.pkg.dev"

func TestRegistryAuth(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	fx := newFixture(t, map[string]any{"registry": map[string]any{"server": testRegistry}})
	fx.p.logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	fx.p.state.registry.logger = fx.p.logger
	before := time.Now()

	for _, name := range []string{"", testRegistry, "https://" + testRegistry} {
		got, err := fx.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{Registry: name})
		if err != nil {
			t.Fatalf("RegistryAuth(%q): %v", name, err)
		}
		if got.Server != testRegistry || got.Username != "oauth2accesstoken" || got.Secret != "test-token-1" {
			t.Errorf("RegistryAuth(%q) = %s %s %s, want %s oauth2accesstoken test-token-1", name, got.Server, got.Username, got.Secret, testRegistry)
		}
		if expiry := before.Add(time.Hour); got.ExpiresAt.Before(expiry) || got.ExpiresAt.After(expiry.Add(time.Minute)) {
			t.Errorf("RegistryAuth(%q) expires at %v, want about %v", name, got.ExpiresAt, expiry)
		}
	}
	if diff := cmp.Diff([]string{cloudPlatformScope}, fx.tokens.requestedScopes()); diff != "" {
		t.Errorf("token requests mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), "test-token-1") {
		t.Errorf("logs contain the access token:\n%s", logs.String())
	}
}

func TestRegistryAuthScopes(t *testing.T) {
	t.Parallel()
	scopes := []string{"https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/userinfo.email"}
	fx := newFixture(t, map[string]any{"registry": map[string]any{"server": testRegistry, "scopes": scopes}})
	if _, err := fx.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{}); err != nil {
		t.Fatalf("RegistryAuth: %v", err)
	}
	if diff := cmp.Diff([]string{strings.Join(scopes, " ")}, fx.tokens.requestedScopes()); diff != "" {
		t.Errorf("token requests mismatch (-want +got):\n%s", diff)
	}
}

func TestRegistryAuthCachesUntilMargin(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, map[string]any{"registry": map[string]any{"server": testRegistry}})
	start := time.Now()
	now := start
	fx.p.state.registry.now = func() time.Time { return now }
	// Tokens expire one hour after they are issued, a little after start.
	steps := []struct {
		name      string
		now       time.Time
		wantCalls int
	}{
		{"first call", start, 1},
		{"cached", start.Add(30 * time.Minute), 1},
		{"before the margin", start.Add(time.Hour - tokenRefreshMargin - time.Minute), 1},
		{"within the margin", start.Add(time.Hour - tokenRefreshMargin + time.Minute), 2},
	}
	for _, step := range steps {
		now = step.now
		if _, err := fx.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{}); err != nil {
			t.Fatalf("%s: RegistryAuth: %v", step.name, err)
		}
		if got := len(fx.tokens.requestedScopes()); got != step.wantCalls {
			t.Errorf("%s: token requests = %d, want %d", step.name, got, step.wantCalls)
		}
	}
}

func TestRegistryAuthNotFound(t *testing.T) {
	t.Parallel()
	withRegistry := newFixture(t, map[string]any{"registry": map[string]any{"server": testRegistry}})
	without := newFixture(t, nil)
	tests := []struct {
		name     string
		p        *provider
		registry string
	}{
		{"other registry", withRegistry.p, "us-docker.pkg.dev"},
		{"none configured", without.p, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.p.RegistryAuth(t.Context(), &credentials.RegistryAuthRequest{Registry: tt.registry}); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("RegistryAuth error = %v, want ErrNotFound", err)
			}
		})
	}
	if n := len(withRegistry.tokens.requestedScopes()); n != 0 {
		t.Errorf("token requests for another registry = %d, want 0", n)
	}
}
