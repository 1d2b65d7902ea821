package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/estela-go/estela-go/core/internal/store"
)

// orDefault returns *v, or def when v is nil.
func orDefault[T any](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}

func (s *Server) listProjects(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}

	search, err := searchText(r)
	if err != nil {
		return nil, err
	}
	filter := store.ProjectFilter{UserID: user.ID, Search: search, Ordering: r.URL.Query().Get("ordering"), RoleOf: user.ID}
	if o := strings.TrimPrefix(filter.Ordering, "-"); o != "" && !slices.Contains(store.ProjectOrderings, o) {
		return nil, errField("ordering", fmt.Sprintf("%q is not a valid ordering; use one of %s, with a leading - for descending order.", filter.Ordering, strings.Join(store.ProjectOrderings, ", ")))
	}
	if user.IsSuperuser || user.IsStaff {
		filter.UserID = 0
	}
	projects, count, err := s.store.ListProjects(r.Context(), filter, page.store())
	if err != nil {
		return nil, err
	}
	out := make([]projectDTO, len(projects))
	for i := range projects {
		if out[i], err = s.projectDTO(r, &projects[i]); err != nil {
			return nil, err
		}
	}
	return envelope(r, page, count, out)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) (any, error) {
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	var req projectCreateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	p := &store.Project{Name: req.Name, Category: orDefault(req.Category, "OTHER_CATEGORY"), Framework: orDefault(req.Framework, "SCRAPY"),
		DataStatus: orDefault(req.DataStatus, "PERSISTENT"), DataExpiryDays: 1}
	if req.DataExpiryDays != nil {
		p.DataExpiryDays = *req.DataExpiryDays
	}

	if err := s.store.CreateProject(r.Context(), p, user.ID); err != nil {
		return nil, err
	}
	s.recordActivity(r.Context(), user.ID, p.PID, fmt.Sprintf("created project %s (%s).", p.Name, p.PID))
	dto, err := s.projectDTO(r, p)
	return created(dto), err
}

func (s *Server) getProject(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}
	return s.projectDTO(r, p)
}

func (s *Server) projectDTO(r *http.Request, p *store.Project) (projectDTO, error) {
	members, err := s.store.Members(r.Context(), p.PID)
	if err != nil {
		return projectDTO{}, err
	}
	vars, err := s.store.ProjectEnvVars(r.Context(), p.PID)
	if err != nil {
		return projectDTO{}, err
	}
	return projectToDTO(p, members, vars), nil
}
