package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// reportCommand is the job-side command that lists a built project's
// spiders and reports the deploy's outcome to the API.
const reportCommand = "estela-report-deploy"

// reportResources are the limits of the report container: those estela
// gives its deploy status container (500m CPU, 512 MiB).
var reportResources = engine.Resources{CPULimitMillis: 500, MemoryLimitBytes: 512 << 20, CPURequestMillis: 250, MemoryRequestBytes: 256 << 20}

// Timeouts of the HTTP calls a build makes outside the daemon.
const (
	downloadTimeout = 10 * time.Minute
	reportTimeout   = 30 * time.Second
)

var projectIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// BuildImage starts a deploy build in the background and returns at once.
// The build downloads the project zip and builds it into req.Image with the
// daemon's builder. It pushes the image unless the push setting is false.
// Then it runs estela-report-deploy from the image in a container named
// BuildName, and that command reports SUCCESS or FAILURE and the spiders to
// the API. When a step before the report fails, the plugin reports FAILURE
// itself, with the error as error_reason. A second call for a deploy whose
// build runs in this process, or whose report container exists, starts
// nothing.
func (e *dockerEngine) BuildImage(ctx context.Context, req *engine.BuildImageRequest) (*engine.BuildImageResponse, error) {
	s, docker, err := e.current()
	if err != nil {
		return nil, err
	}
	if err := validateBuild(req); err != nil {
		return nil, err
	}
	name := buildName(req)
	resp := &engine.BuildImageResponse{BuildName: name, Image: req.Image}
	started, err := e.claimBuild(ctx, docker, name)
	if err != nil || !started {
		return resp, err
	}
	e.rememberPullAuth(req.Registry)
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = s.BuildTimeout
	}
	go e.runBuild(s, docker, *req, name, timeout)
	return resp, nil
}

func validateBuild(req *engine.BuildImageRequest) error {
	if !projectIDPattern.MatchString(req.ProjectID) {
		return errdefs.Invalid("invalid project id %q: use lower-case letters, digits and dashes", req.ProjectID)
	}
	if req.DeployID <= 0 {
		return errdefs.Invalid("invalid deploy id %d: must be greater than 0", req.DeployID)
	}
	if _, err := registryDomain(req.Image); err != nil {
		return errdefs.Invalid("invalid image reference %q: %v", req.Image, err)
	}
	for field, value := range map[string]string{"archive URL": req.ArchiveURL, "API host": req.APIHost} {
		if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errdefs.Invalid("invalid %s %q: expected an http:// or https:// URL", field, value)
		}
	}
	return nil
}

func buildName(req *engine.BuildImageRequest) string {
	return fmt.Sprintf("estela-deploy-%s-%d", req.ProjectID, req.DeployID)
}

// claimBuild reports whether a build of name may start: none runs in this
// process and no report container of that name exists.
func (e *dockerEngine) claimBuild(ctx context.Context, docker *client.Client, name string) (bool, error) {
	e.mu.Lock()
	if e.builds[name] {
		e.mu.Unlock()
		return false, nil
	}
	e.builds[name] = true
	e.mu.Unlock()
	_, err := docker.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return true, nil
	}
	e.releaseBuild(name)
	if err != nil {
		return false, daemonError(err, "inspect container %s", name)
	}
	return false, nil
}

func (e *dockerEngine) releaseBuild(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.builds, name)
}

// runBuild runs a build to its end and reports FAILURE when it fails.
func (e *dockerEngine) runBuild(s *settings, docker *client.Client, req engine.BuildImageRequest, name string, timeout time.Duration) {
	defer e.releaseBuild(name)
	log := e.logger.With("build", name, "project_id", req.ProjectID, "deploy_id", req.DeployID, "image", req.Image)
	ctx, cancel := context.WithTimeout(e.background, timeout)
	defer cancel()
	log.Info("deploy build started")
	err := e.buildAndReport(ctx, s, docker, &req, name, log)
	if err == nil {
		log.Info("deploy build finished")
		return
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("build timed out after %s: %w", timeout, err)
	}
	log.Error("deploy build failed", "error", err)
	if err := reportFailure(e.background, &req, err.Error()); err != nil {
		log.Error("cannot report the failed deploy to the API", "error", err)
	}
}

func (e *dockerEngine) buildAndReport(ctx context.Context, s *settings, docker *client.Client, req *engine.BuildImageRequest, name string, log hclog.Logger) error {
	if err := buildImage(ctx, s, docker, req); err != nil {
		return err
	}
	log.Info("image built")
	if s.Push {
		if err := pushImage(ctx, docker, req); err != nil {
			return err
		}
		log.Info("image pushed")
	}
	return e.runReport(ctx, s, docker, req, name, log)
}

// buildImage downloads the archive and sends it to the daemon's builder.
func buildImage(ctx context.Context, s *settings, docker *client.Client, req *engine.BuildImageRequest) error {
	archive, err := downloadArchive(ctx, req)
	if err != nil {
		return err
	}
	defer os.Remove(archive.Name())
	defer archive.Close()
	info, err := archive.Stat()
	if err != nil {
		return fmt.Errorf("read downloaded archive: %w", err)
	}
	bc, err := openBuildContext(archive, info.Size())
	if err != nil {
		return err
	}
	tarReader, tarWriter := io.Pipe()
	go func() { tarWriter.CloseWithError(bc.writeTar(tarWriter)) }()
	defer tarReader.Close()

	resp, err := docker.ImageBuild(ctx, tarReader, buildOptions(s, req, bc.dockerfile))
	if err != nil {
		return daemonError(err, "build image %s", req.Image)
	}
	if err := drainProgress(resp.Body); err != nil {
		return fmt.Errorf("build image %s: %w", req.Image, err)
	}
	return nil
}

func buildOptions(s *settings, req *engine.BuildImageRequest, dockerfile string) build.ImageBuildOptions {
	auths := map[string]registry.AuthConfig{}
	if req.Registry.Server != "" {
		auths[req.Registry.Server] = authConfig(req.Registry)
	}
	return build.ImageBuildOptions{
		Tags:        []string{req.Image},
		Dockerfile:  dockerfile,
		Remove:      true,
		ForceRemove: true,
		PullParent:  s.Pull == pullAlways,
		AuthConfigs: auths,
		Labels:      map[string]string{labelDeploy: deployKey(req)},
	}
}

func deployKey(req *engine.BuildImageRequest) string {
	return req.ProjectID + "." + strconv.FormatInt(req.DeployID, 10)
}

// downloadArchive saves the project zip to a temporary file, which the
// caller closes and removes. A zip is read from its end, so it cannot be
// converted while it streams in.
func downloadArchive(ctx context.Context, req *engine.BuildImageRequest) (*os.File, error) {
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.ArchiveURL, nil)
	if err != nil {
		return nil, fmt.Errorf("download archive: %w", err)
	}
	httpReq.Header.Set("Authorization", "Token "+req.ArchiveToken)
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return nil, fmt.Errorf("download archive: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download archive: the archive server returned %s", resp.Status)
	}
	file, err := os.CreateTemp("", "estela-deploy-*.zip")
	if err != nil {
		return nil, fmt.Errorf("create temporary archive file: %w", err)
	}
	n, err := io.Copy(file, io.LimitReader(resp.Body, maxArchiveBytes+1))
	if err == nil && n > maxArchiveBytes {
		err = errdefs.Invalid("the deploy archive is larger than %d bytes", int64(maxArchiveBytes))
	}
	if err != nil {
		file.Close()
		os.Remove(file.Name())
		return nil, fmt.Errorf("download archive: %w", err)
	}
	return file, nil
}

// pushImage pushes the built image with the request's registry login.
func pushImage(ctx context.Context, docker *client.Client, req *engine.BuildImageRequest) error {
	encoded, err := registry.EncodeAuthConfig(authConfig(req.Registry))
	if err != nil {
		return fmt.Errorf("encode registry login: %w", err)
	}
	progress, err := docker.ImagePush(ctx, req.Image, image.PushOptions{RegistryAuth: encoded})
	if err != nil {
		return daemonError(err, "push image %s", req.Image)
	}
	if err := drainProgress(progress); err != nil {
		return fmt.Errorf("push image %s: %w", req.Image, err)
	}
	return nil
}

// runReport runs estela-report-deploy from the new image and waits for it.
// The container is removed when the command succeeds, and kept for its logs
// when it fails.
func (e *dockerEngine) runReport(ctx context.Context, s *settings, docker *client.Client, req *engine.BuildImageRequest, name string, log hclog.Logger) error {
	cr, err := reportContainer(s, req, name)
	if err != nil {
		return err
	}
	created, err := docker.ContainerCreate(ctx, cr.Config, cr.Host, nil, nil, name)
	if err != nil {
		return daemonError(err, "create container %s", name)
	}
	if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return daemonError(err, "start container %s", name)
	}
	code, err := waitExit(ctx, docker, created.ID)
	if err != nil {
		return daemonError(err, "wait for container %s", name)
	}
	if code != 0 {
		return fmt.Errorf("%s exited with code %d: its container %s is kept for its logs", reportCommand, code, name)
	}
	if err := docker.ContainerRemove(ctx, created.ID, container.RemoveOptions{}); err != nil {
		log.Warn("cannot remove the report container", "container", name, "error", err)
	}
	return nil
}

// jobInfo is the JOB_INFO of a report container: estela-report-deploy reads
// api_host from it.
type jobInfo struct {
	APIHost string `json:"api_host"`
	Key     string `json:"key"`
	Spider  string `json:"spider"`
}

func reportContainer(s *settings, req *engine.BuildImageRequest, name string) (containerRequest, error) {
	info, err := json.Marshal(jobInfo{APIHost: req.APIHost, Key: req.ProjectID})
	if err != nil {
		return containerRequest{}, fmt.Errorf("encode JOB_INFO: %w", err)
	}
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelDeploy] = deployKey(req)
	env := map[string]string{"KEY": deployKey(req), "TOKEN": req.ReportToken, "JOB_INFO": string(info)}
	config := &container.Config{
		Image:      req.Image,
		Entrypoint: []string{reportCommand},
		Env:        envList(env),
		Labels:     labels,
		User:       s.RunAsUser,
	}
	return containerRequest{Name: name, Config: config, Host: hostConfig(s, reportResources)}, nil
}

func waitExit(ctx context.Context, docker *client.Client, id string) (int64, error) {
	results, errs := docker.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case result := <-results:
		if result.Error != nil && result.Error.Message != "" {
			return 0, fmt.Errorf("wait for container: %s", result.Error.Message)
		}
		return result.StatusCode, nil
	case err := <-errs:
		return 0, err
	}
}

// deployReport is the body of the API's deploy status update, as
// estela-report-deploy sends it.
type deployReport struct {
	Status       string   `json:"status"`
	SpidersNames []string `json:"spiders_names"`
	ErrorReason  string   `json:"error_reason,omitempty"`
}

// reportFailure sets the deploy to FAILURE through the API. The API rejects
// the update when estela-report-deploy already reported, which is fine.
func reportFailure(ctx context.Context, req *engine.BuildImageRequest, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	body, err := json.Marshal(deployReport{Status: "FAILURE", SpidersNames: []string{}, ErrorReason: reason})
	if err != nil {
		return fmt.Errorf("encode deploy report: %w", err)
	}
	target := fmt.Sprintf("%s/api/projects/%s/deploys/%d", strings.TrimRight(req.APIHost, "/"), url.PathEscape(req.ProjectID), req.DeployID)
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPut, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("report deploy: %w", err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Authorization", "Token "+req.ReportToken)
	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		return fmt.Errorf("report deploy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("report deploy: the API returned %s: %s", resp.Status, detail)
	}
	return nil
}
