package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// PutProject streams the archive to <prefix><project_id>/<deploy_id>.zip
// with a resumable upload and computes its size and SHA-256 checksum on
// the way. It checks the size and MD5 digest that Cloud Storage reports
// against the bytes sent, and deletes an object that differs.
func (p *provider) PutProject(ctx context.Context, req *credentials.PutProjectRequest) (*credentials.PutProjectResponse, error) {
	st, err := p.ready(validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return nil, err
	}
	name := st.archiveName(req.ProjectID, req.DeployID)
	sha, md, counter := sha256.New(), md5.New(), &byteCounter{}
	obj, err := st.storage.upload(ctx, name, io.TeeReader(req.Archive, io.MultiWriter(sha, md, counter)))
	if err != nil {
		return nil, fmt.Errorf("upload archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, storageError(err, st.settings.Bucket))
	}
	if err := checkUpload(obj, counter.n, md.Sum(nil)); err != nil {
		p.deleteCorrupt(ctx, st, name, err)
		return nil, fmt.Errorf("upload archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	p.logger.Info("archive stored", "project_id", req.ProjectID, "deploy_id", req.DeployID, "object", name, "size_bytes", counter.n)
	return &credentials.PutProjectResponse{Size: counter.n, SHA256: hex.EncodeToString(sha.Sum(nil))}, nil
}

// byteCounter counts the bytes written to it.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// checkUpload compares the stored object with the bytes sent. The MD5
// digest is absent for composite objects, which this plugin never creates.
func checkUpload(obj *object, size int64, digest []byte) error {
	if obj == nil {
		return errdefs.Unavailable("upload ended without the stored object's metadata")
	}
	if stored, err := strconv.ParseInt(obj.Size, 10, 64); err != nil || stored != size {
		return errdefs.Unavailable("stored object has size %q, but %d bytes were sent: retry the upload", obj.Size, size)
	}
	if sent := base64.StdEncoding.EncodeToString(digest); obj.MD5Hash != "" && obj.MD5Hash != sent {
		return errdefs.Unavailable("stored object has MD5 digest %s, but the bytes sent have %s: retry the upload", obj.MD5Hash, sent)
	}
	return nil
}

// deleteCorrupt deletes an object that differs from the archive sent, so
// GetProject never returns it.
func (p *provider) deleteCorrupt(ctx context.Context, st *state, name string, cause error) {
	p.logger.Error("uploaded archive differs from the bytes sent", "object", name, "error", cause)
	if err := st.deleteObject(ctx, name); err != nil {
		p.logger.Error("cannot delete the differing archive", "object", name, "error", err)
	}
}

// GetProject streams the archive's object into w.
func (p *provider) GetProject(ctx context.Context, req *credentials.GetProjectRequest, w io.Writer) error {
	st, err := p.ready(validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return err
	}
	err = st.storage.download(ctx, st.archiveName(req.ProjectID, req.DeployID), w)
	if err == nil {
		return nil
	}
	err = storageError(err, st.settings.Bucket)
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("no archive for project %s deploy %d in bucket %q", req.ProjectID, req.DeployID, st.settings.Bucket)
	}
	return fmt.Errorf("get archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
}

// DeleteProject deletes one archive, or every object under
// <prefix><project_id>/ when DeployID is 0. It succeeds when there is
// nothing to delete, so the host can retry it safely.
func (p *provider) DeleteProject(ctx context.Context, req *credentials.DeleteProjectRequest) (*credentials.DeleteProjectResponse, error) {
	if req.DeployID == 0 {
		return p.deleteAll(ctx, req.ProjectID)
	}
	st, err := p.ready(validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return nil, err
	}
	name := st.archiveName(req.ProjectID, req.DeployID)
	if err := st.deleteObject(ctx, name); err != nil {
		return nil, fmt.Errorf("delete archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	p.logger.Info("archive deleted", "project_id", req.ProjectID, "deploy_id", req.DeployID, "object", name)
	return &credentials.DeleteProjectResponse{}, nil
}

func (p *provider) deleteAll(ctx context.Context, projectID string) (*credentials.DeleteProjectResponse, error) {
	st, err := p.ready(validateProjectID(projectID))
	if err != nil {
		return nil, err
	}
	prefix := st.projectPrefix(projectID)
	deleted := 0
	for pageToken := ""; ; {
		names, next, err := st.storage.listPage(ctx, prefix, pageToken)
		if err != nil {
			return nil, fmt.Errorf("list archives of project %s: %w", projectID, storageError(err, st.settings.Bucket))
		}
		for _, name := range names {
			if err := st.deleteObject(ctx, name); err != nil {
				return nil, fmt.Errorf("delete archives of project %s: %w", projectID, err)
			}
		}
		deleted += len(names)
		if next == "" {
			break
		}
		pageToken = next
	}
	p.logger.Info("project archives deleted", "project_id", projectID, "prefix", prefix, "objects", deleted)
	return &credentials.DeleteProjectResponse{}, nil
}

// deleteObject deletes an object, and succeeds when it is already gone.
func (st *state) deleteObject(ctx context.Context, name string) error {
	err := st.storage.delete(ctx, name)
	if err == nil {
		return nil
	}
	err = storageError(err, st.settings.Bucket)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}
