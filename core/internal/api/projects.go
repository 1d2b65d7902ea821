package api

import (
	"net/http"

	"github.com/estela-go/estela-go/core/internal/store"
)

var (
	categories   = []string{"NOT SPECIFIED", "E-COMMERCE", "LOGISTICS", "FINANCE", "EDUCATIONAL", "TECHNOLOGY", "OTHER_CATEGORY"}
	frameworks   = []string{"SCRAPY", "REQUESTS"}
	dataStatuses = []string{"PERSISTENT", "PENDING"}
)

func (s *Server) listProjects(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}

	filter := store.ProjectFilter{UserID: user.ID, Search: r.URL.Query().Get("search")}
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
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	p := &store.Project{Name: f.requiredStr("name", 1000), Category: "OTHER_CATEGORY", Framework: "SCRAPY",
		DataStatus: "PERSISTENT", DataExpiryDays: 1}
	if v, ok := f.choice("category", categories...); ok {
		p.Category = v
	}
	if v, ok := f.choice("framework", frameworks...); ok {
		p.Framework = v
	}
	if v, ok := f.choice("data_status", dataStatuses...); ok {
		p.DataStatus = v
	}
	if v, ok := f.integer("data_expiry_days", 0, 32767); ok {
		p.DataExpiryDays = int(v)
	}
	if err := f.err(); err != nil {
		return nil, err
	}

	if err := s.store.CreateProject(r.Context(), p, user.ID); err != nil {
		return nil, err
	}
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
