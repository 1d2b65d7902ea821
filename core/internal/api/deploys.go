package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/archive"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/credentials"
)

func (s *Server) listDeploys(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	deploys, count, err := s.store.ListDeploys(r.Context(), p.PID, page.store())
	if err != nil {
		return nil, err
	}
	out := make([]deployDTO, len(deploys))
	for i := range deploys {
		out[i] = deployToDTO(&deploys[i])
	}
	return envelope(r, page, count, out)
}

func (s *Server) getDeploy(_ http.ResponseWriter, r *http.Request) (any, error) {
	did, err := pathID(r, "did")
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	d, err := s.store.Deploy(r.Context(), p.PID, did)
	if err != nil {
		return nil, err
	}
	return deployToDTO(d), nil
}

// createDeploy takes a project archive in the multipart field project_zip, checks it, stores
// it through the credentials plugin and queues its preparation. A deploy whose archive could
// not be stored is removed again, so no half-made deploy stays behind.
func (s *Server) createDeploy(w http.ResponseWriter, r *http.Request) (any, error) {
	p, user, err := s.projectFor(r, actRun)
	if err != nil {
		return nil, err
	}
	file, err := s.receiveArchive(w, r)
	if err != nil {
		return nil, err
	}
	defer os.Remove(file)

	if err := archive.Check(file, s.opts.MaxUnpackedBytes); err != nil {
		return nil, errField("project_zip", strings.TrimPrefix(err.Error(), archive.ErrInvalid.Error()+": ")+".")
	}

	d := &store.Deploy{ProjectID: p.PID, UserID: &user.ID}
	if err := s.store.CreateDeploy(r.Context(), d); err != nil {
		return nil, err
	}
	if err := s.storeArchive(r.Context(), d, file); err != nil {
		if delErr := s.store.DeleteDeploy(context.WithoutCancel(r.Context()), d.DID); delErr != nil {
			s.log.Error("remove deploy after failed upload", "did", d.DID, "error", delErr)
		}
		s.log.Error("store project archive", "did", d.DID, "project", p.PID, "error", err)
		return nil, errMessage(http.StatusServiceUnavailable, "Storing the project archive failed; try again later. The server log has the details.")
	}
	if err := s.queue.EnqueueBuild(d.DID); err != nil {
		// The reconcile enqueues deploys left BUILDING, so the deploy is not lost.
		s.log.Warn("enqueue deploy build", "did", d.DID, "error", err)
	}
	return created(deployCreatedDTO{DID: d.DID, Status: d.Status, Created: formatJobTime(d.Created)}), nil
}

// receiveArchive copies the uploaded project_zip into a temporary file, within the upload limit.
func (s *Server) receiveArchive(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return "", errField("project_zip", "No file was submitted; send the archive as multipart/form-data field project_zip.")
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", errField("project_zip", "No file was submitted.")
		}
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return "", s.tooLarge()
		}
		if err != nil {
			return "", errDetail(http.StatusBadRequest, "Malformed multipart body: "+err.Error())
		}
		if part.FormName() != "project_zip" {
			continue
		}
		return s.saveUpload(part)
	}
}

func (s *Server) saveUpload(part io.Reader) (string, error) {
	tmp, err := os.CreateTemp("", "estela-upload-*.zip")
	if err != nil {
		return "", fmt.Errorf("create upload file: %w", err)
	}
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(part, s.opts.MaxUploadBytes+1))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr) || n > s.opts.MaxUploadBytes:
		os.Remove(tmp.Name())
		return "", s.tooLarge()
	case err != nil:
		os.Remove(tmp.Name())
		return "", errDetail(http.StatusBadRequest, "Reading the upload failed: "+err.Error())
	case n == 0:
		os.Remove(tmp.Name())
		return "", errField("project_zip", "The submitted file is empty.")
	}
	return tmp.Name(), nil
}

func (s *Server) tooLarge() error {
	return errField("project_zip", fmt.Sprintf("The archive is larger than the limit of %d bytes.", s.opts.MaxUploadBytes))
}

func (s *Server) storeArchive(ctx context.Context, d *store.Deploy, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open upload: %w", err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	_, err = s.archives.PutProject(ctx, &credentials.PutProjectRequest{ProjectID: d.ProjectID, DeployID: d.DID, Archive: f})
	return err
}
