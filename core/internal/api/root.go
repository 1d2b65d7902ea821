package api

import (
	"context"
	"net/http"
	"sync"
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
	// The checks run at once, each with its own 5 seconds, so that one that hangs, such as a
	// stopped plugin's, neither delays the others nor uses up their time.
	names := sortedKeys(s.opts.Health)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			errs[i] = s.opts.Health[name](ctx)
		})
	}
	wg.Wait()
	checks := map[string]string{}
	healthy := true
	for i, name := range names {
		if errs[i] != nil {
			checks[name] = "unhealthy: " + errs[i].Error()
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
