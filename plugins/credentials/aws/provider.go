package main

import (
	"context"
	"regexp"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

var projectIDPattern = regexp.MustCompile(`^[0-9a-z-]+$`)

// provider stores project archives in S3 and returns ECR credentials.
type provider struct {
	logger hclog.Logger
	// loadOptions are added to the AWS configuration chain. Tests use them
	// to set static credentials.
	loadOptions []func(*config.LoadOptions) error
	// partSize is the part size of multipart uploads, in bytes.
	partSize int64

	mu    sync.RWMutex
	state *state // nil until Configure succeeds
}

var _ credentials.Provider = (*provider)(nil)

func newProvider(logger hclog.Logger) *provider {
	return &provider{logger: logger.Named("credentials-aws"), partSize: defaultPartSize}
}

func (p *provider) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{Name: "aws", Version: version, APIVersions: []int32{pluginapi.ProtocolVersion}}, nil
}

// Configure applies the settings when they are valid and keeps the previous
// ones otherwise. Applying new settings drops the cached ECR token.
func (p *provider) Configure(ctx context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	var st *state
	if s := parseSettings(req.Config, resp); s != nil {
		st = p.newState(ctx, s, resp)
	}
	if st == nil {
		p.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	p.mu.Lock()
	p.state = st
	p.mu.Unlock()
	p.logger.Info("configured", "bucket", st.bucket, "prefix", st.prefix, "region", st.region,
		"endpoint", st.settings.Endpoint, "ecr_configured", st.registry != nil)
	return resp, nil
}

func (p *provider) current() (*state, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.state == nil {
		return nil, errdefs.Unavailable("credentials plugin is not configured: the host must call Configure first")
	}
	return p.state, nil
}

// RegistryAuth returns ECR credentials when req.Registry is empty or equals
// the host of the registry's proxy endpoint.
func (p *provider) RegistryAuth(ctx context.Context, req *credentials.RegistryAuthRequest) (*credentials.RegistryAuthResponse, error) {
	st, err := p.current()
	if err != nil {
		return nil, err
	}
	if st.registry == nil {
		return nil, errdefs.NotFound("no registry configured: add an ecr block to the settings")
	}
	if err := st.checkCredentials(ctx); err != nil {
		return nil, err
	}
	return st.registry.auth(ctx, req.Registry)
}

func validateIDs(projectID string, deployID int64) error {
	if err := validateProjectID(projectID); err != nil {
		return err
	}
	if deployID <= 0 {
		return errdefs.Invalid("invalid deploy id %d: must be greater than 0", deployID)
	}
	return nil
}

func validateProjectID(projectID string) error {
	if !projectIDPattern.MatchString(projectID) {
		return errdefs.Invalid("invalid project id %q: use only lower-case letters, digits and dashes", projectID)
	}
	return nil
}

// projectPrefix returns the key prefix of every archive of a project.
func (st *state) projectPrefix(projectID string) string {
	return st.prefix + projectID + "/"
}

// archiveKey returns the key of a deploy's archive.
func (st *state) archiveKey(projectID string, deployID int64) string {
	return st.projectPrefix(projectID) + strconv.FormatInt(deployID, 10) + ".zip"
}
