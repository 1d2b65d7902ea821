package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/oauth2"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

const (
	// registryUsername is the user name Artifact Registry expects with an
	// OAuth2 access token as the password.
	registryUsername = "oauth2accesstoken"
	// tokenRefreshMargin is how long before its expiry a cached access
	// token is replaced. Google access tokens are valid for one hour
	// (expires_in 3600 in the token response), and the margin leaves a
	// caller at least 10 minutes to log in and push or pull an image.
	tokenRefreshMargin = 10 * time.Minute
)

// registry gets access tokens for one Artifact Registry host and caches
// them until shortly before they expire.
type registry struct {
	server string
	scopes []string
	// fetch requests a new access token, bypassing every cache.
	fetch  func(ctx context.Context, scopes []string) (*oauth2.Token, error)
	logger hclog.Logger
	now    func() time.Time

	// lock is a mutex that a caller can stop waiting for when its context
	// ends. It lets one caller at a time request a token.
	lock   chan struct{}
	cached *credentials.RegistryAuthResponse
}

func newRegistry(server string, scopes []string, auth *authenticator, logger hclog.Logger) *registry {
	return &registry{
		server: server,
		scopes: scopes,
		fetch:  auth.freshToken,
		logger: logger,
		now:    time.Now,
		lock:   make(chan struct{}, 1),
	}
}

// auth returns the registry's credentials when name is empty or names the
// configured host, with or without a scheme.
func (r *registry) auth(ctx context.Context, name string) (*credentials.RegistryAuthResponse, error) {
	if name != "" && !strings.EqualFold(registryHost(name), r.server) {
		return nil, errdefs.NotFound("no credentials for registry %q: only %q is configured", name, r.server)
	}
	creds, err := r.credentials(ctx)
	if err != nil {
		return nil, err
	}
	resp := *creds
	return &resp, nil
}

func (r *registry) credentials(ctx context.Context) (*credentials.RegistryAuthResponse, error) {
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.lock }()
	if r.cached != nil && r.now().Before(r.cached.ExpiresAt.Add(-tokenRefreshMargin)) {
		return r.cached, nil
	}
	token, err := r.fetch(ctx, r.scopes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("get access token for registry %s: %w", r.server, tokenFetchError(err))
	}
	creds := &credentials.RegistryAuthResponse{Server: r.server, Username: registryUsername, Secret: token.AccessToken, ExpiresAt: token.Expiry}
	// A token without an expiry time is not cached, because its lifetime
	// is unknown.
	if !token.Expiry.IsZero() {
		r.cached = creds
	}
	r.logger.Debug("registry token fetched", "server", r.server, "expires_at", token.Expiry)
	return creds, nil
}

// registryHost returns the host and port of a registry given as a host or
// as a URL.
func registryHost(registry string) string {
	if u, err := url.Parse(registry); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimSuffix(registry, "/")
}
