package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/credentials"
)

type deployReportRequest struct {
	Status       string   `json:"status" validate:"required" enum:"SUCCESS,FAILURE,CANCELED,BUILDING"`
	SpidersNames []string `json:"spiders_names" doc:"the spiders found; form bodies repeat the key"`
	ErrorReason  *string  `json:"error_reason" maxlen:"200000"`
}

type deployReportedDTO struct {
	DID    int64  `json:"did"`
	Status string `json:"status"`
}

type deployLogsDTO struct {
	Logs *string `json:"logs"`
}

// reportDeploy takes the result of an image build from estela-report-deploy: the deploy's own
// token, or a superuser as estela's deploy_manager. A deploy moves from BUILDING only.
func (s *Server) reportDeploy(w http.ResponseWriter, r *http.Request) (any, error) {
	did, err := pathID(r, "did")
	if err != nil {
		return nil, err
	}
	pid, err := pathPID(r)
	if err != nil {
		return nil, err
	}
	if err := s.mayReport(r, did); err != nil {
		return nil, err
	}
	d, err := s.store.Deploy(r.Context(), pid, did)
	if err != nil {
		return nil, err
	}
	var req deployReportRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	if req.Status == store.DeploySuccess && len(req.SpidersNames) == 0 {
		return nil, errField("spiders_names", "A successful deploy lists at least one spider.")
	}
	err = s.store.ReportDeploy(r.Context(), d.DID, req.Status, req.SpidersNames, orDefault(req.ErrorReason, ""))
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusBadRequest, "The deploy has finished and its status cannot be changed.")
	}
	if err != nil {
		return nil, err
	}
	if req.Status != store.DeployBuilding && req.Status != d.Status {
		if err := s.store.DeleteDeployTokens(r.Context(), d.DID); err != nil {
			s.log.Warn("revoke deploy token", "did", d.DID, "error", err)
		}
		s.recordActivity(r.Context(), orDefault(d.UserID, 0), d.ProjectID, fmt.Sprintf("made a new Deploy #%d.", d.DID))
	}
	return deployReportedDTO{DID: d.DID, Status: req.Status}, nil
}

// mayReport allows the deploy's own token and superusers.
func (s *Server) mayReport(r *http.Request, did int64) error {
	p := principalOf(r)
	switch {
	case p != nil && p.DeployID == did:
		return nil
	case p != nil && p.User != nil && p.User.IsSuperuser:
		return nil
	}
	return errMessage(http.StatusForbidden, "Only the deploy's build or a superuser may report a deploy's result.")
}

// cancelDeploy ends a deploy that is still BUILDING as CANCELED; a build that reports later is
// refused. Canceling a canceled deploy again changes nothing.
func (s *Server) cancelDeploy(_ http.ResponseWriter, r *http.Request) (any, error) {
	did, err := pathID(r, "did")
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRun)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Deploy(r.Context(), p.PID, did); err != nil {
		return nil, err
	}

	err = s.store.ReportDeploy(r.Context(), did, store.DeployCanceled, nil, "canceled by a user")
	if errors.Is(err, store.ErrConflict) {
		return nil, errMessage(http.StatusBadRequest, "Only a deploy that is still building can be canceled.")
	}
	if err != nil {
		return nil, err
	}
	d, err := s.store.Deploy(r.Context(), p.PID, did)
	if err != nil {
		return nil, err
	}
	return deployToDTO(d), nil
}

// deleteDeploy removes a deploy and its stored archive. Jobs that ran from it keep their data.
func (s *Server) deleteDeploy(_ http.ResponseWriter, r *http.Request) (any, error) {
	did, err := pathID(r, "did")
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actManage)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Deploy(r.Context(), p.PID, did); err != nil {
		return nil, err
	}

	if err := s.store.DeleteDeploy(r.Context(), did); err != nil {
		return nil, err
	}
	s.removeArchive(r.Context(), p.PID, did)
	return noContent, nil
}

// removeArchive deletes a deploy's archive; a failure leaves an unused file and is only logged.
func (s *Server) removeArchive(ctx context.Context, pid string, did int64) {
	if s.archives == nil {
		return
	}
	if _, err := s.archives.DeleteProject(ctx, &credentials.DeleteProjectRequest{ProjectID: pid, DeployID: did}); err != nil {
		s.log.Warn("delete deploy archive", "did", did, "project", pid, "error", err)
	}
}

// deployLogs returns why a deploy failed, as estela's logs route does.
func (s *Server) deployLogs(_ http.ResponseWriter, r *http.Request) (any, error) {
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
	if d.ErrorReason == "" {
		return deployLogsDTO{}, nil
	}
	logs := "=== Deploy ===\n" + d.ErrorReason
	return deployLogsDTO{Logs: &logs}, nil
}

// deployArchive streams a deploy's archive to its image build (deploy token) or to a member
// who may deploy.
func (s *Server) deployArchive(w http.ResponseWriter, r *http.Request) (any, error) {
	did, err := pathID(r, "did")
	if err != nil {
		return nil, err
	}
	pid, err := pathPID(r)
	if err != nil {
		return nil, err
	}
	if p := principalOf(r); p == nil || p.DeployID != did {
		if _, _, err := s.projectFor(r, actRun); err != nil {
			return nil, err
		}
	}
	if _, err := s.store.Deploy(r.Context(), pid, did); err != nil {
		return nil, err
	}

	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+pid+"-"+itoa(int(did))+`.zip"`)
	err = s.archives.GetProject(r.Context(), &credentials.GetProjectRequest{ProjectID: pid, DeployID: did}, w)
	if err != nil {
		// Nothing was written yet when the archive is missing, so the client still gets a status.
		s.log.Error("send deploy archive", "did", did, "error", err)
		return nil, errNotFound
	}
	return written, nil
}
