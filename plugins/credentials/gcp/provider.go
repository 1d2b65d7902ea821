package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/oauth2"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

var projectIDPattern = regexp.MustCompile(`^[0-9a-z-]+$`)

// provider stores project archives in Cloud Storage and returns Artifact
// Registry credentials.
type provider struct {
	logger hclog.Logger
	// chunkSize is the chunk size of resumable uploads, in bytes.
	chunkSize int

	mu    sync.RWMutex
	state *state // nil until Configure succeeds
}

// state is the set of clients and resolved settings that Configure builds
// from valid settings. It never changes, because Configure replaces it whole.
type state struct {
	settings *settings
	prefix   string
	// tokens is the cached token source of the storage client.
	tokens  oauth2.TokenSource
	storage *storageClient
	// registry is nil when the settings have no registry block.
	registry *registry
}

var _ credentials.Provider = (*provider)(nil)

func newProvider(logger hclog.Logger) *provider {
	return &provider{logger: logger.Named("credentials-gcp"), chunkSize: defaultChunkSize}
}

func (p *provider) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{Name: "gcp", Version: version, APIVersions: []int32{pluginapi.ProtocolVersion}}, nil
}

// Configure applies the settings when they are valid and keeps the previous
// ones otherwise. Applying new settings drops the cached registry token.
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
	p.logger.Info("configured", "bucket", st.settings.Bucket, "prefix", st.prefix, "endpoint", st.storage.endpoint,
		"credentials_file", st.settings.CredentialsFile, "registry_configured", st.registry != nil)
	return resp, nil
}

// newState builds the storage client and the registry for s. It returns nil
// when resp received an error diagnostic.
func (p *provider) newState(ctx context.Context, s *settings, resp *pluginapi.ConfigureResponse) *state {
	auth := loadAuthenticator(ctx, s.CredentialsFile, resp)
	if auth == nil {
		return nil
	}
	tokens, err := auth.storageTokens()
	if err != nil {
		resp.AddError("credentials_file", "cannot create a token source", err.Error())
		return nil
	}
	tokens = oauth2.ReuseTokenSource(nil, tokens)
	st := &state{
		settings: s,
		prefix:   s.prefix(),
		tokens:   tokens,
		storage: &storageClient{
			http:      &http.Client{Transport: &oauth2.Transport{Source: tokens, Base: http.DefaultTransport}},
			endpoint:  s.endpoint(),
			bucket:    s.Bucket,
			chunkSize: p.chunkSize,
			logger:    p.logger,
		},
	}
	if s.Registry != nil {
		st.registry = newRegistry(s.Registry.Server, s.Registry.scopes(), auth, p.logger)
	}
	return st
}

func (p *provider) current() (*state, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.state == nil {
		return nil, errdefs.Unavailable("credentials plugin is not configured: the host must call Configure first")
	}
	return p.state, nil
}

// ready returns the current state once an access token for Cloud Storage
// is available. idErr is the result of validating the request's ids,
// returned when the plugin is configured. Getting the token first keeps its
// failures apart from those of Cloud Storage.
func (p *provider) ready(idErr error) (*state, error) {
	st, err := p.current()
	if err != nil {
		return nil, err
	}
	if idErr != nil {
		return nil, idErr
	}
	if _, err := st.tokens.Token(); err != nil {
		return nil, fmt.Errorf("get access token for Cloud Storage: %w", tokenFetchError(err))
	}
	return st, nil
}

// RegistryAuth returns Artifact Registry credentials when req.Registry is
// empty or equals registry.server.
func (p *provider) RegistryAuth(ctx context.Context, req *credentials.RegistryAuthRequest) (*credentials.RegistryAuthResponse, error) {
	st, err := p.current()
	if err != nil {
		return nil, err
	}
	if st.registry == nil {
		return nil, errdefs.NotFound("no registry configured: add a registry block to the settings")
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

// projectPrefix returns the name prefix of every archive of a project.
func (st *state) projectPrefix(projectID string) string {
	return st.prefix + projectID + "/"
}

// archiveName returns the object name of a deploy's archive.
func (st *state) archiveName(projectID string, deployID int64) string {
	return st.projectPrefix(projectID) + strconv.FormatInt(deployID, 10) + ".zip"
}
