package api

import (
	"net/http"
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

	spiders, count, err := s.store.ListSpiders(r.Context(), p.PID, r.URL.Query().Get("search"), page.store())
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
	p, _, err := s.projectFor(r, actRead)
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
	return spiderToDTO(spider, vars), nil
}
