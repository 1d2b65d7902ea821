package api

import (
	"errors"
	"net/http"

	"github.com/estela-go/estela-go/core/internal/store"
)

func (s *Server) listSpiders(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	search, err := searchText(r)
	if err != nil {
		return nil, err
	}
	spiders, count, err := s.store.ListSpiders(r.Context(), p.PID, search, page.store())
	if err != nil {
		return nil, err
	}
	out := make([]spiderDTO, len(spiders))
	for i := range spiders {
		vars, err := s.store.SpiderEnvVars(r.Context(), spiders[i].SID)
		if err != nil {
			return nil, err
		}
		out[i] = spiderToDTO(&spiders[i], vars)
	}
	return envelope(r, page, count, out)
}

func (s *Server) getSpider(_ http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	_, _, spider, err := s.spiderFor(r, actRead, sid)
	if err != nil {
		return nil, err
	}
	vars, err := s.store.SpiderEnvVars(r.Context(), sid)
	if err != nil {
		return nil, err
	}
	return spiderToDTO(spider, vars), nil
}

type spiderUpdateRequest struct {
	EnvVars        []envVarWrite `json:"env_vars" doc:"the spider's whole set of variables: names not sent are deleted; a masked variable sent with value __MASKED__ keeps its value"`
	DataStatus     *string       `json:"data_status" enum:"PERSISTENT,PENDING"`
	DataExpiryDays *int          `json:"data_expiry_days" min:"1" max:"32767"`
}

// spiderUpdatedDTO is estela's answer to a spider update, with sid as a number (estela sends
// a string by mistake; clients read it either way).
type spiderUpdatedDTO struct {
	SID            int64       `json:"sid"`
	EnvVars        []envVarDTO `json:"env_vars"`
	DataStatus     string      `json:"data_status"`
	DataExpiryDays int         `json:"data_expiry_days"`
}

// updateSpider sets a spider's env vars and default data persistence; PERSISTENT works, unlike
// in estela.
func (s *Server) updateSpider(w http.ResponseWriter, r *http.Request) (any, error) {
	sid, err := pathID(r, "sid")
	if err != nil {
		return nil, err
	}
	var req spiderUpdateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRun)
	if err != nil {
		return nil, err
	}

	u := store.SpiderUpdate{DataStatus: req.DataStatus, DataExpiryDays: orDefault(req.DataExpiryDays, 1)}
	if req.EnvVars != nil {
		vars, err := envVarRows(req.EnvVars)
		if err != nil {
			return nil, err
		}
		u.EnvVars = &vars
	}
	err = s.store.UpdateSpider(r.Context(), p.PID, sid, u)
	if errors.Is(err, store.ErrNotFound) && u.EnvVars != nil {
		if _, lookErr := s.store.Spider(r.Context(), p.PID, sid); lookErr == nil {
			return nil, errField("env_vars", err.Error())
		}
	}
	if err != nil {
		return nil, err
	}

	spider, err := s.store.Spider(r.Context(), p.PID, sid)
	if err != nil {
		return nil, err
	}
	vars, err := s.store.SpiderEnvVars(r.Context(), sid)
	if err != nil {
		return nil, err
	}
	return spiderUpdatedDTO{SID: sid, EnvVars: envVarsDTO(vars), DataStatus: spider.DataStatus, DataExpiryDays: spider.DataExpiryDays}, nil
}
