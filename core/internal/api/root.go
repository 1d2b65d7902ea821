package api

import (
	"context"
	"net/http"
	"time"

	"github.com/estela-go/estela-go/core/internal/password"
)

// apiRoot lists the parameter-free list routes with absolute URLs, as DRF's router root does;
// estela-cli checks for the "projects" key.
func (s *Server) apiRoot(_ http.ResponseWriter, r *http.Request) (any, error) {
	base := requestScheme(r) + "://" + r.Host + "/api/"
	return map[string]string{"projects": base + "projects"}, nil
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
	body := map[string]any{"healthy": healthy, "checks": checks}
	if !healthy {
		return result{http.StatusServiceUnavailable, body}, nil
	}
	return body, nil
}

// login exchanges a username and password for a new token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}
	username := f.requiredStr("username", 150)
	pass := f.requiredStr("password", 4096)
	if err := f.err(); err != nil {
		return nil, err
	}

	user, err := s.store.UserByUsername(r.Context(), username)
	if err != nil || !user.IsActive || !password.Check(pass, user.PasswordHash) {
		return nil, errField("non_field_errors", "Unable to log in with provided credentials.")
	}
	key, err := s.store.CreateUserToken(r.Context(), user.ID)
	if err != nil {
		return nil, err
	}
	if err := s.store.TouchLogin(r.Context(), user.ID); err != nil {
		s.log.Warn("record login time", "user_id", user.ID, "error", err)
	}
	return map[string]any{"user": userDTO{user.Username, user.Email}, "key": key}, nil
}
