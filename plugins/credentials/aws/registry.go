package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// tokenRefreshMargin is how long before its expiry a cached ECR token is
// replaced. ECR tokens are valid for 12 hours (GetAuthorizationToken API
// reference), and the margin leaves a caller at least 15 minutes to log in
// and push or pull an image.
const tokenRefreshMargin = 15 * time.Minute

// tokenClient is the part of the ECR client that registry calls.
type tokenClient interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// registry gets ECR credentials and caches them until shortly before they
// expire.
type registry struct {
	client     tokenClient
	registryID string
	logger     hclog.Logger
	now        func() time.Time

	// lock is a mutex that a caller can stop waiting for when its context
	// ends. It lets one caller at a time request a token from ECR.
	lock   chan struct{}
	cached *credentials.RegistryAuthResponse
}

func newRegistry(client tokenClient, registryID string, logger hclog.Logger) *registry {
	return &registry{client: client, registryID: registryID, logger: logger, now: time.Now, lock: make(chan struct{}, 1)}
}

// auth returns the registry's credentials when name is empty or names the
// host of the registry's proxy endpoint, with or without a scheme.
func (r *registry) auth(ctx context.Context, name string) (*credentials.RegistryAuthResponse, error) {
	creds, err := r.credentials(ctx)
	if err != nil {
		return nil, err
	}
	if name != "" && !strings.EqualFold(registryHost(name), creds.Server) {
		return nil, errdefs.NotFound("no credentials for registry %q: only the ECR registry %q is configured", name, creds.Server)
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
	creds, err := r.fetch(ctx)
	if err != nil {
		return nil, err
	}
	r.cached = creds
	r.logger.Debug("ecr token fetched", "server", creds.Server, "expires_at", creds.ExpiresAt)
	return creds, nil
}

func (r *registry) fetch(ctx context.Context) (*credentials.RegistryAuthResponse, error) {
	in := &ecr.GetAuthorizationTokenInput{}
	if r.registryID != "" {
		// ECR marks RegistryIds deprecated because the token is valid for
		// every registry the identity may access, but the field still
		// selects the account of the returned proxy endpoint.
		in.RegistryIds = []string{r.registryID}
	}
	out, err := r.client.GetAuthorizationToken(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get ECR authorization token: %w", ecrError(err))
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errdefs.Unavailable("ECR returned no authorization data")
	}
	return decodeAuthorization(out.AuthorizationData[0])
}

// decodeAuthorization turns ECR authorization data into registry
// credentials. The token is the base64 encoding of "user:password".
func decodeAuthorization(data types.AuthorizationData) (*credentials.RegistryAuthResponse, error) {
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("decode ECR authorization token: %w", err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || password == "" {
		return nil, errdefs.Unavailable("ECR authorization token is not of the form user:password")
	}
	server := registryHost(aws.ToString(data.ProxyEndpoint))
	if server == "" {
		return nil, errdefs.Unavailable("ECR authorization data has no proxy endpoint")
	}
	if data.ExpiresAt == nil {
		return nil, errdefs.Unavailable("ECR authorization data has no expiry time")
	}
	return &credentials.RegistryAuthResponse{Server: server, Username: user, Secret: password, ExpiresAt: *data.ExpiresAt}, nil
}

// registryHost returns the host and port of a registry given as a host or
// as a URL such as ECR's proxy endpoint "https://<id>.dkr.ecr.<region>.amazonaws.com".
func registryHost(registry string) string {
	if u, err := url.Parse(registry); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimSuffix(registry, "/")
}
