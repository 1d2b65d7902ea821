package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// ImageSettings name the registry and repository that image builds push to.
type ImageSettings struct {
	Registry   string
	Repository string
}

// capabilityLister is implemented by the supervised engine, which remembers what the plugin
// listed when it started.
type capabilityLister interface {
	Capabilities() []string
}

// buildsImages reports whether the engine builds deploys into images.
func (s *Service) buildsImages() bool {
	c, ok := s.engine.(capabilityLister)
	return ok && slices.Contains(c.Capabilities(), engine.CapabilityBuildImage)
}

// buildImage starts an image build on the engine. The build downloads the archive from the
// API with a token of this deploy and reports the deploy's result itself, so the deploy stays
// BUILDING until that report arrives.
func (s *Service) buildImage(ctx context.Context, d *store.Deploy, attempts int) error {
	builder, ok := s.engine.(engine.ImageBuilder)
	if !ok {
		return s.failDeploy(ctx, d.DID, "the engine lists image builds but does not implement them")
	}
	if s.images.Registry == "" {
		return s.failDeploy(ctx, d.DID, "the engine builds images, but no image registry is configured; set images.registry in the server configuration")
	}
	image := fmt.Sprintf("%s/%s:estela_%s_%d", strings.TrimSuffix(s.images.Registry, "/"), s.images.Repository, d.ProjectID, d.DID)
	if err := s.store.StartImageBuild(ctx, d.DID, image); errors.Is(err, store.ErrConflict) {
		return nil
	} else if err != nil {
		return err
	}
	req, err := s.buildRequest(ctx, d, image)
	if err != nil {
		return s.retryBuild(ctx, d, attempts, err)
	}
	resp, err := builder.BuildImage(ctx, req)
	if errors.Is(err, errdefs.ErrInvalid) {
		return s.failDeploy(ctx, d.DID, "the engine rejected the image build: "+err.Error())
	}
	if err != nil {
		return s.retryBuild(ctx, d, attempts, err)
	}
	s.log.Info("image build started", "did", d.DID, "image", image, "build", resp.BuildName)
	return nil
}

func (s *Service) buildRequest(ctx context.Context, d *store.Deploy, image string) (*engine.BuildImageRequest, error) {
	token, err := s.store.CreateDeployToken(ctx, d.DID)
	if err != nil {
		return nil, err
	}
	req := &engine.BuildImageRequest{
		ProjectID: d.ProjectID, DeployID: d.DID, Image: image,
		ArchiveURL:   fmt.Sprintf("%s/api/projects/%s/deploys/%d/archive", strings.TrimSuffix(s.settings.APIHost, "/"), d.ProjectID, d.DID),
		ArchiveToken: token, APIHost: s.settings.APIHost, ReportToken: token,
	}
	auth, err := s.creds.RegistryAuth(ctx, &credentials.RegistryAuthRequest{Registry: s.images.Registry})
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("get registry credentials: %w", err)
	default:
		req.Registry = engine.RegistryAuth{Server: auth.Server, Username: auth.Username, Secret: auth.Secret}
	}
	return req, nil
}

// retryBuild lets the reconcile start the build again, or fails the deploy after three tries.
func (s *Service) retryBuild(ctx context.Context, d *store.Deploy, attempts int, cause error) error {
	if attempts >= 3 {
		return s.failDeploy(ctx, d.DID, fmt.Sprintf("starting the image build failed %d times; last error: %v", attempts, cause))
	}
	if err := s.store.ResetImageBuild(ctx, d.DID); err != nil {
		return err
	}
	return fmt.Errorf("start image build of deploy %d: %w", d.DID, cause)
}
