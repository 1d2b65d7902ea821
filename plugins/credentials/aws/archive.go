package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// PutProject streams the archive to <prefix><project_id>/<deploy_id>.zip
// with the S3 upload manager, in parts of partSize bytes, and computes its
// size and SHA-256 checksum on the way. A failed multipart upload is
// aborted, so no partial archive remains.
func (p *provider) PutProject(ctx context.Context, req *credentials.PutProjectRequest) (*credentials.PutProjectResponse, error) {
	st, err := p.ready(ctx, validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return nil, err
	}
	key := st.archiveKey(req.ProjectID, req.DeployID)
	hash := sha256.New()
	counter := &byteCounter{}
	_, err = st.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(st.bucket),
		Key:         aws.String(key),
		Body:        io.TeeReader(req.Archive, io.MultiWriter(hash, counter)),
		ContentType: aws.String("application/zip"),
	})
	if err != nil {
		return nil, fmt.Errorf("upload archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, s3Error(err, st.bucket, key))
	}
	p.logger.Info("archive stored", "project_id", req.ProjectID, "deploy_id", req.DeployID, "key", key, "size_bytes", counter.n)
	return &credentials.PutProjectResponse{Size: counter.n, SHA256: hex.EncodeToString(hash.Sum(nil))}, nil
}

// byteCounter counts the bytes written to it.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// GetProject streams the archive's object into w.
func (p *provider) GetProject(ctx context.Context, req *credentials.GetProjectRequest, w io.Writer) error {
	st, err := p.ready(ctx, validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return err
	}
	key := st.archiveKey(req.ProjectID, req.DeployID)
	out, err := st.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(key)})
	if err != nil {
		return p.getError(err, st, req, key)
	}
	defer out.Body.Close()
	if _, err := io.Copy(w, out.Body); err != nil {
		return fmt.Errorf("read archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, s3Error(err, st.bucket, key))
	}
	return nil
}

func (p *provider) getError(err error, st *state, req *credentials.GetProjectRequest, key string) error {
	err = s3Error(err, st.bucket, key)
	if errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.NotFound("no archive for project %s deploy %d in bucket %q", req.ProjectID, req.DeployID, st.bucket)
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
	st, err := p.ready(ctx, validateIDs(req.ProjectID, req.DeployID))
	if err != nil {
		return nil, err
	}
	key := st.archiveKey(req.ProjectID, req.DeployID)
	if _, err := st.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(key)}); err != nil {
		return nil, fmt.Errorf("delete archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, s3Error(err, st.bucket, key))
	}
	p.logger.Info("archive deleted", "project_id", req.ProjectID, "deploy_id", req.DeployID, "key", key)
	return &credentials.DeleteProjectResponse{}, nil
}

func (p *provider) deleteAll(ctx context.Context, projectID string) (*credentials.DeleteProjectResponse, error) {
	st, err := p.ready(ctx, validateProjectID(projectID))
	if err != nil {
		return nil, err
	}
	prefix := st.projectPrefix(projectID)
	deleted := 0
	pages := s3.NewListObjectsV2Paginator(st.s3, &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list archives of project %s: %w", projectID, s3Error(err, st.bucket, prefix))
		}
		if err := st.deleteObjects(ctx, page.Contents); err != nil {
			return nil, fmt.Errorf("delete archives of project %s: %w", projectID, err)
		}
		deleted += len(page.Contents)
	}
	p.logger.Info("project archives deleted", "project_id", projectID, "prefix", prefix, "objects", deleted)
	return &credentials.DeleteProjectResponse{}, nil
}

// deleteObjects deletes one page of listed objects, at most 1,000, which is
// also the limit of one DeleteObjects call.
func (st *state) deleteObjects(ctx context.Context, objects []types.Object) error {
	if len(objects) == 0 {
		return nil
	}
	ids := make([]types.ObjectIdentifier, 0, len(objects))
	for _, o := range objects {
		ids = append(ids, types.ObjectIdentifier{Key: o.Key})
	}
	out, err := st.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(st.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return s3Error(err, st.bucket, aws.ToString(ids[0].Key))
	}
	if len(out.Errors) > 0 {
		return deleteErrors(st.bucket, out.Errors)
	}
	return nil
}

// deleteErrors describes the objects that DeleteObjects failed to delete.
func deleteErrors(bucket string, failures []types.Error) error {
	var problems []string
	for _, f := range failures[:min(len(failures), 3)] {
		problems = append(problems, fmt.Sprintf("%s (%s: %s)", aws.ToString(f.Key), aws.ToString(f.Code), aws.ToString(f.Message)))
	}
	if kind := codeKind(aws.ToString(failures[0].Code)); kind == errdefs.ErrInvalid {
		return errdefs.Invalid("access to bucket %q denied: %d objects not deleted, among them %s", bucket, len(failures), strings.Join(problems, ", "))
	}
	return errdefs.Unavailable("%d objects not deleted from bucket %q, among them %s", len(failures), bucket, strings.Join(problems, ", "))
}

// ready returns the current state once AWS credentials are available.
// idErr is the result of validating the request's ids, returned when the
// plugin is configured.
func (p *provider) ready(ctx context.Context, idErr error) (*state, error) {
	st, err := p.current()
	if err != nil {
		return nil, err
	}
	if idErr != nil {
		return nil, idErr
	}
	if err := st.checkCredentials(ctx); err != nil {
		return nil, err
	}
	return st, nil
}
