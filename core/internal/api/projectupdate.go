package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/estela-go/estela-go/core/internal/store"
)

type projectUpdateRequest struct {
	Name                   *string       `json:"name" maxlen:"1000"`
	Framework              *string       `json:"framework" enum:"SCRAPY,REQUESTS"`
	EnvVars                []envVarWrite `json:"env_vars" doc:"the project's whole set of variables: names not sent are deleted; a masked variable sent with value __MASKED__ keeps its value"`
	Email                  *string       `json:"email" maxlen:"254" doc:"the member to add, remove or update"`
	Action                 *string       `json:"action" enum:"add,remove,update"`
	Permission             *string       `json:"permission" enum:"OWNER,ADMIN,DEVELOPER,VIEWER" doc:"OWNER transfers ownership and needs action update by the owner"`
	DataStatus             *string       `json:"data_status" enum:"PERSISTENT,PENDING"`
	DataExpiryDays         *int          `json:"data_expiry_days" min:"1" max:"32767"`
	ApplyToExistingSpiders bool          `json:"apply_to_existing_spiders"`
}

// projectUpdatedDTO is estela's response to a project update.
type projectUpdatedDTO struct {
	PID            string      `json:"pid"`
	Name           string      `json:"name"`
	Framework      string      `json:"framework"`
	Users          []userDTO   `json:"users"`
	EnvVars        []envVarDTO `json:"env_vars"`
	DataStatus     string      `json:"data_status"`
	DataExpiryDays int         `json:"data_expiry_days"`
}

// updateProject renames a project, sets its framework, env vars and data persistence, or
// changes one member. DEVELOPER may edit the project, ADMIN manages members, and only the
// OWNER transfers ownership. Everything is applied in one transaction.
func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) (any, error) {
	var req projectUpdateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}
	update, need, err := projectChange(&req)
	if err != nil {
		return nil, err
	}
	p, user, err := s.projectFor(r, need)
	if err != nil {
		return nil, err
	}

	if update.Member != nil && !user.IsSuperuser && update.Member.Email != "" && equalFold(update.Member.Email, user.Email) {
		return nil, errField("email", "You cannot change your own role; ask another admin or the owner.")
	}
	oldName := p.Name
	err = s.store.UpdateProject(r.Context(), p.PID, update)
	switch {
	case errors.Is(err, store.ErrNoSuchUser):
		return nil, &apiError{http.StatusNotFound, map[string]string{"email": "User does not exist."}}
	case errors.Is(err, store.ErrOwnerRole):
		return nil, errMessage(http.StatusBadRequest, "You cannot modify the permissions of an owner user.")
	case errors.Is(err, store.ErrNotFound) && update.EnvVars != nil:
		return nil, errField("env_vars", err.Error())
	case errors.Is(err, store.ErrNotFound) && update.Member != nil:
		return nil, errField("email", "That user is not a member of the project.")
	case err != nil:
		return nil, err
	}

	p, err = s.store.Project(r.Context(), p.PID)
	if err != nil {
		return nil, err
	}
	for _, description := range projectActivities(oldName, p, &req) {
		s.recordActivity(r.Context(), user.ID, p.PID, description)
	}
	return s.projectUpdatedDTO(r, p)
}

// projectActivities describes an applied project update in estela's activity texts.
func projectActivities(oldName string, p *store.Project, req *projectUpdateRequest) []string {
	var out []string
	if req.Name != nil && *req.Name != oldName {
		out = append(out, fmt.Sprintf("renamed project %s (%s) to %s.", oldName, p.PID, *req.Name))
	}
	if req.Framework != nil {
		out = append(out, fmt.Sprintf("changed the framework to %s.", *req.Framework))
	}
	if req.Email != nil && req.Action != nil {
		switch *req.Action {
		case "add":
			out = append(out, fmt.Sprintf("added user %s with role %s.", *req.Email, orDefault(req.Permission, "")))
		case "remove":
			out = append(out, fmt.Sprintf("removed user %s.", *req.Email))
		case "update":
			out = append(out, fmt.Sprintf("updated %s's permissions to %s.", *req.Email, orDefault(req.Permission, "")))
		}
	}
	if req.DataStatus != nil {
		text := "changed data persistence to persistent."
		if *req.DataStatus == "PENDING" {
			text = fmt.Sprintf("changed data persistence to %d days.", p.DataExpiryDays)
		}
		if req.ApplyToExistingSpiders {
			text += " Applied to all existing spiders."
		}
		out = append(out, text)
	}
	return out
}

// projectChange turns the request into a store update and the role it needs.
func projectChange(req *projectUpdateRequest) (store.ProjectUpdate, action, error) {
	u := store.ProjectUpdate{Name: req.Name, Framework: req.Framework, DataStatus: req.DataStatus, ApplyToSpiders: req.ApplyToExistingSpiders}
	need := actRun
	if req.Name != nil && strings.TrimSpace(*req.Name) == "" {
		return u, need, errField("name", "This field may not be blank.")
	}
	if req.EnvVars != nil {
		vars, err := envVarRows(req.EnvVars)
		if err != nil {
			return u, need, err
		}
		u.EnvVars = &vars
	}
	if req.DataStatus != nil {
		u.DataExpiryDays = orDefault(req.DataExpiryDays, 1)
	}
	if req.Email == nil {
		return u, need, nil
	}
	// A blank email would match users without one, such as the superuser that make run creates.
	if strings.TrimSpace(*req.Email) == "" {
		return u, need, errField("email", "This field may not be blank.")
	}
	if req.Action == nil {
		return u, need, errField("action", "Give add, remove or update with email.")
	}
	change := &store.MemberChange{Email: *req.Email, Action: *req.Action}
	need = actManage
	if change.Action != "remove" {
		if req.Permission == nil {
			return u, need, errField("permission", "Give the role: ADMIN, DEVELOPER or VIEWER.")
		}
		change.Role = *req.Permission
	}
	if change.Role == store.RoleOwner {
		if change.Action == "add" {
			return u, need, errField("permission", "A project has one owner; use action update to transfer ownership to a member.")
		}
		need = actOwn
	}
	u.Member = change
	return u, need, nil
}

func (s *Server) projectUpdatedDTO(r *http.Request, p *store.Project) (projectUpdatedDTO, error) {
	full, err := s.projectDTO(r, p)
	if err != nil {
		return projectUpdatedDTO{}, err
	}
	users := make([]userDTO, len(full.Users))
	for i, m := range full.Users {
		users[i] = m.User
	}
	return projectUpdatedDTO{PID: p.PID, Name: p.Name, Framework: p.Framework, Users: users, EnvVars: full.EnvVars,
		DataStatus: p.DataStatus, DataExpiryDays: p.DataExpiryDays}, nil
}

// deleteProject soft-deletes a project; only its owner may.
func (s *Server) deleteProject(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, user, err := s.projectFor(r, actOwn)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteProject(r.Context(), p.PID); err != nil {
		return nil, err
	}
	s.recordActivity(r.Context(), user.ID, p.PID, fmt.Sprintf("deleted project %s (%s).", p.Name, p.PID))
	return noContent, nil
}

// shortPage reads the page and page_size of estela's project-level lists: page_size 1..100,
// default 10, with no next or previous links.
func shortPage(r *http.Request) (pageParams, error) {
	p, err := readPage(r, 10, 100)
	if err != nil {
		return p, err
	}
	if raw := r.URL.Query().Get("page_size"); raw != "" && p.size != atoiOr(raw, 0) {
		return p, errField("page_size", "A page size must be an integer between 1 and 100.")
	}
	return p, nil
}

// countedPage is estela's {results, count} envelope of project-level lists.
type countedPage[T any] struct {
	Results []T `json:"results"`
	Count   int `json:"count"`
}

// listProjectJobs lists every job of a project, newest first.
func (s *Server) listProjectJobs(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := shortPage(r)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	jobs, count, err := s.store.ListProjectJobs(r.Context(), p.PID, page.store())
	if err != nil {
		return nil, err
	}
	out, err := s.jobDTOs(r, jobs)
	if err != nil {
		return nil, err
	}
	return countedPage[jobDTO]{Results: out, Count: count}, nil
}

var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnvVarName returns a 400 naming env_vars when a variable name could not be set in a
// process environment.
func checkEnvVarName(i int, name string) error {
	if !envVarName.MatchString(name) {
		return errField("env_vars", fmt.Sprintf("Item %d: %q is not a valid variable name; use letters, digits and _, not starting with a digit.", i, name))
	}
	return nil
}

// envVarRows checks the names of env_vars written to a project or spider and turns them into
// rows.
func envVarRows(in []envVarWrite) ([]store.EnvVar, error) {
	vars := make([]store.EnvVar, 0, len(in))
	for i, v := range in {
		if err := checkEnvVarName(i, v.Name); err != nil {
			return nil, err
		}
		vars = append(vars, store.EnvVar{Name: v.Name, Value: v.Value, Masked: v.Masked})
	}
	return vars, nil
}
