package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// projectsDir is the directory under data_dir that contains the archives,
// one directory per project and one <deploy_id>.zip file per deploy.
const projectsDir = "projects"

var projectIDPattern = regexp.MustCompile(`^[0-9a-z-]+$`)

// provider stores project archives under a local directory.
type provider struct {
	logger hclog.Logger

	mu       sync.RWMutex
	settings *settings // nil until Configure succeeds
}

var _ credentials.Provider = (*provider)(nil)

func newProvider(logger hclog.Logger) *provider {
	return &provider{logger: logger.Named("credentials-local")}
}

func (p *provider) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{Name: "local", Version: version, APIVersions: []int32{pluginapi.ProtocolVersion}}, nil
}

// Configure applies the settings when they are valid and keeps the previous
// ones otherwise.
func (p *provider) Configure(_ context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(req.Config, resp)
	if s == nil {
		p.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	p.mu.Lock()
	p.settings = s
	p.mu.Unlock()
	p.logger.Info("configured", "data_dir", s.DataDir, "registry_configured", s.Registry != nil)
	return resp, nil
}

func (p *provider) current() (*settings, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.settings == nil {
		return nil, errdefs.Unavailable("credentials plugin is not configured: the host must call Configure first")
	}
	return p.settings, nil
}

// RegistryAuth returns the configured credentials when req.Registry is empty
// or equals registry.server.
func (p *provider) RegistryAuth(_ context.Context, req *credentials.RegistryAuthRequest) (*credentials.RegistryAuthResponse, error) {
	s, err := p.current()
	if err != nil {
		return nil, err
	}
	if s.Registry == nil {
		return nil, errdefs.NotFound("no registry credentials configured")
	}
	if req.Registry != "" && req.Registry != s.Registry.Server {
		return nil, errdefs.NotFound("no credentials for registry %q: only %q is configured", req.Registry, s.Registry.Server)
	}
	return &credentials.RegistryAuthResponse{
		Server:   s.Registry.Server,
		Username: s.Registry.Username,
		Secret:   s.Registry.Password,
	}, nil
}

// PutProject writes the archive to a temporary file beside its final path
// and renames it, so a crash never leaves a partial archive under the final
// name.
func (p *provider) PutProject(ctx context.Context, req *credentials.PutProjectRequest) (*credentials.PutProjectResponse, error) {
	path, err := p.archivePath(req.ProjectID, req.DeployID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create project directory: %w", err)
	}
	size, sum, err := writeAtomically(ctx, path, req.Archive)
	if err != nil {
		return nil, fmt.Errorf("store archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	p.logger.Info("archive stored", "project_id", req.ProjectID, "deploy_id", req.DeployID, "size_bytes", size)
	return &credentials.PutProjectResponse{Size: size, SHA256: sum}, nil
}

func writeAtomically(ctx context.Context, path string, r io.Reader) (int64, string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	hash := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, hash), contextReader{ctx: ctx, r: r})
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, "", err
	}
	return size, hex.EncodeToString(hash.Sum(nil)), nil
}

// contextReader stops reading once ctx ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

func (p *provider) GetProject(ctx context.Context, req *credentials.GetProjectRequest, w io.Writer) error {
	path, err := p.archivePath(req.ProjectID, req.DeployID)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("no archive for project %s deploy %d", req.ProjectID, req.DeployID)
	}
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, contextReader{ctx: ctx, r: f}); err != nil {
		return fmt.Errorf("read archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	return nil
}

// DeleteProject succeeds when there is nothing to delete, so the host can
// retry it safely.
func (p *provider) DeleteProject(_ context.Context, req *credentials.DeleteProjectRequest) (*credentials.DeleteProjectResponse, error) {
	target, err := p.deletePath(req.ProjectID, req.DeployID)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(target); err != nil {
		return nil, fmt.Errorf("delete archives at %s: %w", target, err)
	}
	p.logger.Info("archive deleted", "project_id", req.ProjectID, "deploy_id", req.DeployID)
	return &credentials.DeleteProjectResponse{}, nil
}

func (p *provider) deletePath(projectID string, deployID int64) (string, error) {
	if deployID == 0 {
		s, err := p.current()
		if err != nil {
			return "", err
		}
		if err := validateProjectID(projectID); err != nil {
			return "", err
		}
		return filepath.Join(s.DataDir, projectsDir, projectID), nil
	}
	return p.archivePath(projectID, deployID)
}

// archivePath validates the ids and returns where the deploy's archive is
// stored.
func (p *provider) archivePath(projectID string, deployID int64) (string, error) {
	s, err := p.current()
	if err != nil {
		return "", err
	}
	if err := validateProjectID(projectID); err != nil {
		return "", err
	}
	if deployID <= 0 {
		return "", errdefs.Invalid("invalid deploy id %d: must be greater than 0", deployID)
	}
	return filepath.Join(s.DataDir, projectsDir, projectID, strconv.FormatInt(deployID, 10)+".zip"), nil
}

func validateProjectID(projectID string) error {
	if !projectIDPattern.MatchString(projectID) {
		return errdefs.Invalid("invalid project id %q: use only lower-case letters, digits and dashes", projectID)
	}
	return nil
}
