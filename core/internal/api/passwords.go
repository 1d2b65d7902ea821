package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/estela-go/estela-go/core/internal/mail"
	"github.com/estela-go/estela-go/core/internal/password"
	"github.com/estela-go/estela-go/core/internal/store"
)

type (
	changePasswordRequest struct {
		OldPassword        string `json:"old_password" validate:"required" maxlen:"4096"`
		NewPassword        string `json:"new_password" validate:"required" maxlen:"4096" doc:"at least 8 characters, not entirely numeric, not similar to the username or e-mail address"`
		ConfirmNewPassword string `json:"confirm_new_password" validate:"required" maxlen:"4096"`
	}
	resetRequest struct {
		Email string `json:"email" validate:"required" maxlen:"254"`
	}
	resetConfirmRequest struct {
		NewPassword        string `json:"new_password" validate:"required" maxlen:"4096" doc:"at least 8 characters, not entirely numeric, not similar to the username or e-mail address"`
		ConfirmNewPassword string `json:"confirm_new_password" validate:"required" maxlen:"4096"`
	}
)

// resetRequested is the only response of a reset request, whether or not the address is known.
const resetRequested = "If an account with that e-mail exists, a reset link was sent."

var (
	errResetLinkInvalid = errField("token", "The password reset link is invalid or has expired; request a new one.")
	errTokenInvalid     = &apiError{http.StatusBadRequest, messageDTO{"Token is invalid."}}
)

// changePassword sets a new password for the caller. Unlike estela, which keeps the token, it
// revokes every token of the caller, so a stolen token stops working, and returns a new one.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) (any, error) {
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	var req changePasswordRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	if !password.Check(req.OldPassword, user.PasswordHash) {
		return nil, errDetail(http.StatusUnauthorized, "Incorrect authentication credentials.")
	}
	if req.NewPassword != req.ConfirmNewPassword {
		return nil, errField("new_password", "The new passwords do not match.")
	}
	if p := passwordProblems(req.NewPassword, user.Username, user.Email); p != nil {
		return nil, &apiError{http.StatusBadRequest, map[string][]string{"new_password": p}}
	}
	if req.NewPassword == req.OldPassword {
		return nil, errField("new_password", "The new password cannot be the same as the old password.")
	}

	hash, err := password.Hash(req.NewPassword)
	if err != nil {
		return nil, err
	}
	key, err := s.store.ChangePassword(r.Context(), user.ID, hash)
	if err != nil {
		return nil, err
	}
	s.sendLater(user.ID, passwordChangedMail(user))
	return loginDTO{User: userDTO{user.Username, user.Email}, Key: key}, nil
}

// requestPasswordReset mails a reset link to the user with the address, if there is one.
// Unlike estela, which returns 404 for an unknown address and the user's API token to the
// anonymous caller, the response is always the same and carries no token. The mail goes out
// in the background, so a known address adds to the response time only the two queries that
// issue the token, not the delivery.
func (s *Server) requestPasswordReset(w http.ResponseWriter, r *http.Request) (any, error) {
	var req resetRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}
	if p := emailProblems(req.Email); p != nil {
		return nil, &apiError{http.StatusBadRequest, map[string][]string{"email": p}}
	}

	user, err := s.store.UserByEmail(r.Context(), req.Email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return detailDTO{resetRequested}, nil
	case err != nil:
		return nil, err
	case !user.IsActive:
		return detailDTO{resetRequested}, nil
	}
	if err := s.mailResetLink(r, user); err != nil {
		return nil, err
	}
	return detailDTO{resetRequested}, nil
}

// mailResetLink issues a reset token and mails its link, unless the address already got
// resetMailLimit links within resetMailWindow.
func (s *Server) mailResetLink(r *http.Request, user *store.User) error {
	ctx := r.Context()
	recent, err := s.store.CountAccountTokens(ctx, user.ID, store.PurposePasswordReset, resetMailWindow)
	if err != nil {
		return err
	}
	if recent >= resetMailLimit {
		s.log.Info("password reset mail skipped: rate limit reached", "user_id", user.ID, "limit", resetMailLimit, "window", resetMailWindow)
		return nil
	}
	token, err := s.store.IssueAccountToken(ctx, user.ID, store.PurposePasswordReset, s.opts.Accounts.ResetTTL)
	if err != nil {
		return err
	}
	link := mailedLink(s.opts.Accounts.FrontendURL+"/resetPassword", token, user.ID)
	s.sendLater(user.ID, mail.Message{To: user.Email, Subject: "Change your estela password.", Body: fmt.Sprintf(
		"Hello %s,\n\nOpen this link to choose a new estela password:\n\n%s\n\nThe link works once and expires in %s. If you did not ask for it, ignore this e-mail; your password stays as it is.\n",
		user.Username, link, humanDuration(s.opts.Accounts.ResetTTL))})
	return nil
}

// resetLink reads the token and user id of a reset link from the query. An id that does not
// decode gives userID 0, which matches no token.
func resetLink(r *http.Request) (token string, userID int64, err error) {
	q := r.URL.Query()
	problems := map[string][]string{}
	for _, name := range []string{"token", "pair"} {
		if q.Get(name) == "" {
			problems[name] = []string{"This query parameter is required."}
		}
	}
	if len(problems) > 0 {
		return "", 0, &apiError{http.StatusBadRequest, problems}
	}
	userID, _ = decodePair(q.Get("pair"))
	return q.Get("token"), userID, nil
}

// validateResetLink reports whether a reset link can still be used. An unknown user gives the
// same 400 as a wrong token, where estela returns 404.
func (s *Server) validateResetLink(_ http.ResponseWriter, r *http.Request) (any, error) {
	token, userID, err := resetLink(r)
	if err != nil {
		return nil, err
	}

	err = s.store.CheckAccountToken(r.Context(), userID, store.PurposePasswordReset, token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTokenInvalid
	}
	if err != nil {
		return nil, err
	}
	return messageDTO{"Token is valid."}, nil
}

// confirmPasswordReset sets a new password with a reset link. estela neither checks the link
// nor the password rules here; this spends the link, checks the rules and revokes every token
// of the user. It returns no token: the user logs in with the new password.
func (s *Server) confirmPasswordReset(w http.ResponseWriter, r *http.Request) (any, error) {
	token, userID, err := resetLink(r)
	if err != nil {
		return nil, err
	}
	var req resetConfirmRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	// The link is checked before the password, so a bad link is reported as such. It is spent
	// only by ResetPassword below, so a rejected password leaves it usable.
	if err := s.store.CheckAccountToken(r.Context(), userID, store.PurposePasswordReset, token); errors.Is(err, store.ErrNotFound) {
		return nil, errResetLinkInvalid
	} else if err != nil {
		return nil, err
	}
	user, err := s.store.UserByID(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	if req.NewPassword != req.ConfirmNewPassword {
		return nil, errField("new_password", "New passwords do not match.")
	}
	if p := passwordProblems(req.NewPassword, user.Username, user.Email); p != nil {
		return nil, &apiError{http.StatusBadRequest, map[string][]string{"new_password": p}}
	}

	hash, err := password.Hash(req.NewPassword)
	if err != nil {
		return nil, err
	}
	err = s.store.ResetPassword(r.Context(), userID, token, hash)
	if errors.Is(err, store.ErrNotFound) {
		// A concurrent request spent the link between the check and now.
		return nil, errResetLinkInvalid
	}
	if err != nil {
		return nil, err
	}
	s.sendLater(user.ID, passwordChangedMail(user))
	return detailDTO{"Your password has been reset. Log in with the new password."}, nil
}

func passwordChangedMail(user *store.User) mail.Message {
	return mail.Message{To: user.Email, Subject: "Your estela password has been changed.", Body: fmt.Sprintf(
		"Hello %s,\n\nThe password of your estela account was just changed, and every session was logged out.\nIf you did not do this, reset your password now and tell your administrator.\n",
		user.Username)}
}
