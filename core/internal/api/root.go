package api

import (
	"context"
	"net/http"
	"time"
)

// apiRoot lists the parameter-free list routes with absolute URLs, as DRF's router root does;
// estela-cli checks for the "projects" key.
func (s *Server) apiRoot(_ http.ResponseWriter, r *http.Request) (any, error) {
	base := requestScheme(r) + "://" + r.Host + "/api/"
	return map[string]string{
		"projects": base + "projects", "notifications": base + "notifications", "proxy_provider": base + "proxy_provider",
	}, nil
}

// healthDetail runs every health check and answers 503 when one fails.
func (s *Server) healthDetail(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]string{}
	healthy := true
	for _, name := range sortedKeys(s.opts.Health) {
		if err := s.opts.Health[name](ctx); err != nil {
			checks[name] = "unhealthy: " + err.Error()
			healthy = false
			continue
		}
		checks[name] = "ok"
	}
	body := healthDTO{Healthy: healthy, Checks: checks}
	if !healthy {
		return result{http.StatusServiceUnavailable, body}, nil
	}
	return body, nil
}
