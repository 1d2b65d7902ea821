package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// pullImage pulls ref with the login that the latest BuildImage gave for
// its registry, or anonymously when there is none.
func (e *dockerEngine) pullImage(ctx context.Context, docker *client.Client, ref string) error {
	domain, err := registryDomain(ref)
	if err != nil {
		return errdefs.Invalid("invalid image reference %q: %v", ref, err)
	}
	e.mu.Lock()
	auth := e.pullAuth[domain]
	e.mu.Unlock()
	encoded, err := registry.EncodeAuthConfig(auth)
	if err != nil {
		return fmt.Errorf("encode registry login: %w", err)
	}
	progress, err := docker.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: encoded})
	if err == nil {
		err = drainProgress(progress)
	}
	switch {
	case err == nil:
		e.logger.Debug("image pulled", "image", ref)
		return nil
	case cerrdefs.IsNotFound(err), cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return errdefs.Invalid("pull image %s: %v", ref, err)
	}
	return daemonError(err, "pull image %s", ref)
}

// rememberPullAuth keeps a BuildImage login for later pulls from its registry.
func (e *dockerEngine) rememberPullAuth(auth engine.RegistryAuth) {
	if auth.Server == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pullAuth[serverDomain(auth.Server)] = authConfig(auth)
}

// drainProgress reads a pull, push or build progress stream to its end and
// returns the error the daemon reported in it, if any. The daemon responds
// to these requests with 200 before the work starts, so failures arrive in
// the stream.
func drainProgress(stream io.ReadCloser) error {
	defer stream.Close()
	return jsonmessage.DisplayJSONMessagesStream(stream, io.Discard, 0, false, nil)
}

func authConfig(auth engine.RegistryAuth) registry.AuthConfig {
	return registry.AuthConfig{Username: auth.Username, Password: auth.Secret, ServerAddress: auth.Server}
}

// registryDomain returns the registry host of an image reference, with
// "docker.io" for Docker Hub.
func registryDomain(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	return reference.Domain(named), nil
}

// serverDomain returns the host of a registry server address, which may be
// written as a URL such as "https://index.docker.io/v1/".
func serverDomain(server string) string {
	host := server
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		return "docker.io"
	}
	return host
}
