package api

import (
	"net/http"

	"github.com/estela-go/estela-go/core/internal/password"
)

func (s *Server) accountRoutes() []route {
	return []route{
		{http.MethodPost, "/api/auth/login", public, s.login, doc{summary: "Exchange a username and password for a new token", tag: "auth", request: loginRequest{}, response: loginDTO{}}},
	}
}

// login exchanges a username and password for a new token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (any, error) {
	var req loginRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	user, err := s.store.UserByUsername(r.Context(), req.Username)
	if err != nil || !user.IsActive || !password.Check(req.Password, user.PasswordHash) {
		return nil, errField("non_field_errors", "Unable to log in with provided credentials.")
	}
	key, err := s.store.CreateUserToken(r.Context(), user.ID)
	if err != nil {
		return nil, err
	}
	if err := s.store.TouchLogin(r.Context(), user.ID); err != nil {
		s.log.Warn("record login time", "user_id", user.ID, "error", err)
	}
	return loginDTO{User: userDTO{user.Username, user.Email}, Key: key}, nil
}
