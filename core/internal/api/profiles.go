package api

import (
	"errors"
	"net/http"

	"github.com/estela-go/estela-go/core/internal/password"
	"github.com/estela-go/estela-go/core/internal/store"
)

// profileCreateRequest has the fields and rules of a registration.
type profileCreateRequest registerRequest

// profileUpdateRequest changes a user's identity. PUT needs both fields, PATCH either.
type profileUpdateRequest struct {
	Username *string `json:"username" doc:"required for PUT; at most 150 characters: letters, digits and @ . + - _"`
	Email    *string `json:"email" maxlen:"254" doc:"required for PUT"`
	Password string  `json:"password" validate:"required" maxlen:"4096" doc:"the caller's current password"`
}

func profileToDTO(u *store.User) profileDTO {
	return profileDTO{Username: u.Username, Email: u.Email, IsSuperuser: u.IsSuperuser, MemoryQuota: u.MemoryQuota}
}

// listProfiles lists the caller's profile, or every user's for a superuser.
func (s *Server) listProfiles(_ http.ResponseWriter, r *http.Request) (any, error) {
	caller, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	if !caller.IsSuperuser {
		return []profileDTO{profileToDTO(caller)}, nil
	}

	users, err := s.store.ListUsers(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]profileDTO, len(users))
	for i := range users {
		out[i] = profileToDTO(&users[i])
	}
	return out, nil
}

// createProfile creates an active user. estela lets any user do this and stores the password
// unhashed; here only superusers may, and the password is hashed and checked like at
// registration.
func (s *Server) createProfile(w http.ResponseWriter, r *http.Request) (any, error) {
	caller, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	if !caller.IsSuperuser {
		return nil, errForbidden
	}
	var req profileCreateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	if err := s.checkNewAccount(r.Context(), req.Username, req.Email, req.Password); err != nil {
		return nil, err
	}
	hash, err := password.Hash(req.Password)
	if err != nil {
		return nil, err
	}
	user := &store.User{Username: req.Username, Email: req.Email, PasswordHash: hash, IsActive: true}
	if err := s.store.CreateAccount(r.Context(), user); err != nil {
		return nil, accountConflict(err)
	}
	return created(profileToDTO(user)), nil
}

// profileTarget returns the user named in the path. Users may only name themselves, and
// get 403 for any other name, existing or not; superusers may name anyone.
func (s *Server) profileTarget(r *http.Request) (caller, target *store.User, err error) {
	caller, err = currentUser(r)
	if err != nil {
		return nil, nil, err
	}
	name := r.PathValue("username")
	if name == caller.Username {
		return caller, caller, nil
	}
	if !caller.IsSuperuser {
		return nil, nil, errForbidden
	}
	target, err = s.store.UserByUsername(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errMessage(http.StatusNotFound, "This user doesn't exist in estela.")
	}
	return caller, target, err
}

func (s *Server) getProfile(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, target, err := s.profileTarget(r)
	if err != nil {
		return nil, err
	}
	return profileToDTO(target), nil
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.updateProfile(w, r, false)
}

func (s *Server) patchProfile(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.updateProfile(w, r, true)
}

// updateProfile changes a username and e-mail address. The caller's current password is
// checked before anything else, so a stolen token alone neither changes the account nor
// learns which names are taken. estela's PATCH is a full update; here it is partial.
func (s *Server) updateProfile(w http.ResponseWriter, r *http.Request, partial bool) (any, error) {
	caller, target, err := s.profileTarget(r)
	if err != nil {
		return nil, err
	}
	var req profileUpdateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	if !password.Check(req.Password, caller.PasswordHash) {
		return nil, errBadCredentials
	}
	username, email, err := profileChanges(req, target, partial)
	if err != nil {
		return nil, err
	}
	if username == target.Username && email == target.Email {
		return profileToDTO(target), nil
	}
	updated, err := s.store.UpdateAccount(r.Context(), target.ID, username, email)
	if err != nil {
		return nil, accountConflict(err)
	}
	return profileToDTO(updated), nil
}

// profileChanges validates the fields of an update and returns the resulting username and
// e-mail address.
func profileChanges(req profileUpdateRequest, target *store.User, partial bool) (username, email string, err error) {
	problems := map[string][]string{}
	username, email = target.Username, target.Email
	if req.Username != nil {
		username = *req.Username
		if p := usernameProblems(username); p != nil {
			problems["username"] = p
		}
	} else if !partial {
		problems["username"] = []string{"This field is required."}
	}
	if req.Email != nil {
		email = *req.Email
		if p := emailProblems(email); p != nil {
			problems["email"] = p
		}
	} else if !partial {
		problems["email"] = []string{"This field is required."}
	}
	if len(problems) > 0 {
		return "", "", &apiError{http.StatusBadRequest, problems}
	}
	return username, email, nil
}

// deleteProfile deletes a user with its memberships and tokens.
// NOTE: a project whose OWNER is deleted is left without one, so only a superuser can then
// act as its owner. estela does the same; handing projects over needs a rule for the heir.
func (s *Server) deleteProfile(_ http.ResponseWriter, r *http.Request) (any, error) {
	_, target, err := s.profileTarget(r)
	if err != nil {
		return nil, err
	}

	if err := s.store.DeleteUser(r.Context(), target.ID); err != nil {
		return nil, err
	}
	return noContent, nil
}
