package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/estela-go/estela-go/core/internal/store"
)

type principalKey struct{}

type tokenKeyKey struct{}

// authed wraps a handler that needs a valid token: the principal it acts for is put in the
// request context.
func (s *Server) authed(h handlerFunc) http.Handler {
	return s.wrap(func(w http.ResponseWriter, r *http.Request) (any, error) {
		r, err := s.authenticate(r)
		if err != nil {
			return nil, err
		}
		return h(w, r)
	})
}

// authedInHandler wraps a handler that reads the token's user in a statement of its own: the
// request needs a token, which is put in the request context unchecked. The handler serves
// only an active user's request itself, and passes any other to authenticate.
func (s *Server) authedInHandler(h handlerFunc) http.Handler {
	return s.wrap(func(w http.ResponseWriter, r *http.Request) (any, error) {
		key, err := tokenKeyOf(r)
		if err != nil {
			return nil, err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), tokenKeyKey{}, key)))
	})
}

// tokenKeyOf returns the key of the request's Authorization header, or 401 without one.
func tokenKeyOf(r *http.Request) (string, error) {
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Token") || strings.TrimSpace(key) == "" {
		return "", errDetail(http.StatusUnauthorized, "Authentication credentials were not provided.")
	}
	return strings.TrimSpace(key), nil
}

// authenticate returns the request with the principal its token acts for in its context, or
// 401 for a missing or invalid token.
func (s *Server) authenticate(r *http.Request) (*http.Request, error) {
	key, err := tokenKeyOf(r)
	if err != nil {
		return nil, err
	}
	p, err := s.store.Authenticate(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errDetail(http.StatusUnauthorized, "Invalid token.")
	}
	if err != nil {
		return nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), nil
}

func principalOf(r *http.Request) *store.Principal {
	p, _ := r.Context().Value(principalKey{}).(*store.Principal)
	return p
}

// currentUser returns the user behind the request, or 403 for a job token.
func currentUser(r *http.Request) (*store.User, error) {
	p := principalOf(r)
	if p == nil || p.User == nil {
		return nil, errForbidden
	}
	return p.User, nil
}

// action is what a request does to a project; each role allows a set of them.
type action int

const (
	// actRead views the project and everything in it.
	actRead action = iota
	// actRun deploys, runs and stops jobs, and edits spiders and environment variables.
	actRun
	// actManage manages members and deletes deploys and cron jobs.
	actManage
	// actOwn transfers ownership and deletes the project.
	actOwn
)

// roleAllows is the role matrix, the one place that decides what a role may do.
var roleAllows = map[string]action{
	store.RoleViewer:    actRead,
	store.RoleDeveloper: actRun,
	store.RoleAdmin:     actManage,
	store.RoleOwner:     actOwn,
}

// projectFor loads the project of the path and checks that the user may do act on it.
// Superusers may do anything and staff may read any project. A user without a role gets
// 403; a missing or deleted project gives 404.
func (s *Server) projectFor(r *http.Request, act action) (*store.Project, *store.User, error) {
	pid, user, err := projectAndCaller(r)
	if err != nil {
		return nil, nil, err
	}
	project, role, err := s.store.ProjectAndRole(r.Context(), pid, user.ID)
	if err != nil {
		return nil, nil, err
	}
	if !allowed(user, role, act) {
		return nil, nil, errForbidden
	}
	return project, user, nil
}

// spiderFor does what projectFor does and loads the spider sid of the project, with the same
// query. A spider that does not exist or was deleted is not found, after the role check.
func (s *Server) spiderFor(r *http.Request, act action, sid int64) (*store.Project, *store.User, *store.Spider, error) {
	pid, user, err := projectAndCaller(r)
	if err != nil {
		return nil, nil, nil, err
	}
	project, role, spider, err := s.store.ProjectRoleAndSpider(r.Context(), pid, user.ID, sid)
	if err != nil {
		return nil, nil, nil, err
	}
	if !allowed(user, role, act) {
		return nil, nil, nil, errForbidden
	}
	if spider == nil {
		return nil, nil, nil, fmt.Errorf("load spider %d: %w", sid, store.ErrNotFound)
	}
	return project, user, spider, nil
}

// projectAndCaller returns the project id of the path and the user who makes the request.
func projectAndCaller(r *http.Request) (string, *store.User, error) {
	pid, err := pathPID(r)
	if err != nil {
		return "", nil, err
	}
	user, err := currentUser(r)
	if err != nil {
		return "", nil, err
	}
	return pid, user, nil
}

// allowed reports whether a user with a role on a project may take an action there.
func allowed(user *store.User, role string, act action) bool {
	if user.IsSuperuser || (user.IsStaff && act == actRead) {
		return true
	}
	best, member := roleAllows[role]
	return member && best >= act
}
