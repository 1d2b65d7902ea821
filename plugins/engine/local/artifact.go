package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Directories under data_dir.
const (
	// artifactsDir contains one unpacked project per deploy:
	// artifacts/<project_id>/<deploy_id>/.
	artifactsDir = "artifacts"
	// jobsDir contains <name>.json (the job record) and <name>.log (its
	// output) for each job.
	jobsDir = "jobs"
	// tmpDir contains archives and directories being prepared.
	tmpDir = "tmp"
)

// describeOutputLimit caps what estela-describe-project may print.
const describeOutputLimit = 1 << 20

var projectIDPattern = regexp.MustCompile(`^[0-9a-z-]+$`)

// projectDescription is the JSON object estela-describe-project prints.
type projectDescription struct {
	ProjectType string   `json:"project_type"`
	Spiders     []string `json:"spiders"`
}

// PrepareArtifact unpacks the archive into a temporary directory, runs
// estela-describe-project there, and only then moves the directory into
// place, so a failed preparation leaves an earlier artifact of the same
// deploy untouched.
func (e *localEngine) PrepareArtifact(ctx context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	s, err := e.current()
	if err != nil {
		return nil, err
	}
	if err := validateDeploy(req.ProjectID, req.DeployID); err != nil {
		return nil, err
	}
	unpacked, err := unpackArchive(req.Archive, s)
	if err != nil {
		return nil, fmt.Errorf("unpack archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	defer os.RemoveAll(unpacked) // a no-op once it is moved into place
	description, err := describeProject(ctx, s, unpacked)
	if err != nil {
		return nil, fmt.Errorf("describe project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	ref := filepath.Join(s.DataDir, artifactsDir, req.ProjectID, strconv.FormatInt(req.DeployID, 10))
	if err := e.replaceDir(unpacked, ref, s); err != nil {
		return nil, fmt.Errorf("install artifact of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	e.logger.Info("artifact prepared", "project_id", req.ProjectID, "deploy_id", req.DeployID,
		"artifact_ref", ref, "spiders", len(description.Spiders))
	return &engine.PrepareArtifactResponse{ArtifactRef: ref, ProjectType: description.ProjectType, Spiders: description.Spiders}, nil
}

func validateDeploy(projectID string, deployID int64) error {
	if !projectIDPattern.MatchString(projectID) {
		return errdefs.Invalid("invalid project id %q: use only lower-case letters, digits and dashes", projectID)
	}
	if deployID <= 0 {
		return errdefs.Invalid("invalid deploy id %d: must be greater than 0", deployID)
	}
	return nil
}

// unpackArchive copies the streamed archive to a temporary file, because
// archive/zip needs random access, and extracts it into a new temporary
// directory, which it returns.
func unpackArchive(archive io.Reader, s *settings) (string, error) {
	spool, size, err := spoolArchive(archive, s)
	if err != nil {
		return "", err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	zr, err := zip.NewReader(spool, size)
	if err != nil {
		return "", errdefs.Invalid("archive is not a valid zip file: %v", err)
	}
	entries, err := planExtraction(zr, s.MaxUnpackedBytes)
	if err != nil {
		return "", err
	}

	dir, err := os.MkdirTemp(filepath.Join(s.DataDir, tmpDir), "artifact-*")
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	err = os.Chmod(dir, 0o755) // MkdirTemp creates it as 0700
	if err == nil {
		err = extractEntries(entries, dir, s.MaxUnpackedBytes)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// spoolArchive copies archive into a temporary file and returns the file
// and its size. The caller closes and removes the file.
func spoolArchive(archive io.Reader, s *settings) (*os.File, int64, error) {
	if archive == nil {
		return nil, 0, errdefs.Invalid("archive is missing")
	}
	spool, err := os.CreateTemp(filepath.Join(s.DataDir, tmpDir), "archive-*.zip")
	if err != nil {
		return nil, 0, fmt.Errorf("create temporary file: %w", err)
	}
	// The compressed archive of a project within the limit is smaller than
	// the limit, save for zip headers; twice the limit leaves room for those.
	size, err := io.Copy(spool, io.LimitReader(archive, 2*s.MaxUnpackedBytes+1))
	if err == nil && size > 2*s.MaxUnpackedBytes {
		err = errdefs.Invalid("archive is larger than twice the unpacked size limit of %d bytes", s.MaxUnpackedBytes)
	} else if err != nil {
		err = fmt.Errorf("receive archive: %w", err)
	}
	if err != nil {
		spool.Close()
		os.Remove(spool.Name())
		return nil, 0, err
	}
	return spool, size, nil
}

// errDescribeTimeout is the cause of the context that describe_timeout ends.
var errDescribeTimeout = errors.New("describe timeout")

// describeProject runs estela-describe-project in dir and parses the last
// line it prints, so that lines printed while the project loads do not
// break the JSON.
func describeProject(ctx context.Context, s *settings, dir string) (*projectDescription, error) {
	runCtx, cancel := context.WithTimeoutCause(ctx, s.DescribeTimeout, errDescribeTimeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, s.Python, filepath.Join(s.JobSideDir, "bin", "estela-describe-project"))
	cmd.Dir = dir
	cmd.Env = baseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout := &tailBuffer{limit: describeOutputLimit}
	stderr := &tailBuffer{limit: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(context.Cause(runCtx), errDescribeTimeout):
		return nil, errdefs.Invalid("estela-describe-project timed out after %s", s.DescribeTimeout)
	case err != nil:
		return nil, errdefs.Invalid("estela-describe-project failed (%v): %s", err, lastLines(stderr.Bytes(), 10))
	}
	return parseDescription(stdout.Bytes())
}

func parseDescription(out []byte) (*projectDescription, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var d projectDescription
	if err := json.Unmarshal([]byte(last), &d); err != nil {
		return nil, errdefs.Invalid("estela-describe-project printed %q, which is not the expected JSON object: %v", truncate(last, 200), err)
	}
	if d.ProjectType == "" {
		return nil, errdefs.Invalid("estela-describe-project printed no project_type")
	}
	if d.Spiders == nil {
		d.Spiders = []string{}
	}
	return &d, nil
}

// replaceDir moves src to dst, replacing what dst contained. The old
// directory is first renamed aside, so dst never holds a mix of both.
func (e *localEngine) replaceDir(src, dst string, s *settings) error {
	e.artifactMu.Lock()
	defer e.artifactMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	old := ""
	if _, err := os.Stat(dst); err == nil {
		// NOTE: jobs still running from the old directory lose their
		// working directory; preparing a deploy twice is meant for retries.
		old = filepath.Join(s.DataDir, tmpDir, fmt.Sprintf("replaced-%d", time.Now().UnixNano()))
		if err := os.Rename(dst, old); err != nil {
			return err
		}
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	buf   []byte
	limit int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.buf }

// lastLines returns the last n non-empty lines of out, joined by " | ".
func lastLines(out []byte, n int) string {
	var lines []string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			lines = append(lines, string(bytes.TrimSpace(line)))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, " | ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
