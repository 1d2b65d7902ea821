package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/mail"
	"github.com/estela-go/estela-go/core/internal/password"
	"github.com/estela-go/estela-go/core/internal/store"
)

// AccountOptions are the settings of registration and of the links in account e-mails.
type AccountOptions struct {
	// Register enables POST /api/auth/register.
	Register bool
	// APIURL is the API's public base URL, used in activation links. When empty, the links
	// use the request's host, which a client can set to anything, so servers set it.
	APIURL string
	// FrontendURL is the web UI's base URL, used in redirects and password-reset links.
	FrontendURL string
	// ActivationTTL and ResetTTL are how long mailed links stay valid; 24 h and 1 h when zero.
	ActivationTTL time.Duration
	ResetTTL      time.Duration
}

func (o AccountOptions) withDefaults() AccountOptions {
	if o.ActivationTTL <= 0 {
		o.ActivationTTL = 24 * time.Hour
	}
	if o.ResetTTL <= 0 {
		o.ResetTTL = time.Hour
	}
	o.APIURL = strings.TrimRight(o.APIURL, "/")
	o.FrontendURL = strings.TrimRight(o.FrontendURL, "/")
	return o
}

// accountDefaults fills the account settings and picks the log-only mailer when none is set.
func accountDefaults(o AccountOptions, m mail.Sender, log hclog.Logger) (AccountOptions, mail.Sender) {
	if m == nil {
		m = mail.NewLogSender(log)
	}
	return o.withDefaults(), m
}

const (
	// activationResendInterval is the least time between two activation mails of one user.
	activationResendInterval = 5 * time.Minute
	// resetMailLimit is how many reset mails one address gets per resetMailWindow.
	resetMailLimit  = 3
	resetMailWindow = 15 * time.Minute
	// mailTimeout bounds the delivery of one account e-mail.
	mailTimeout = time.Minute
)

// Request and response bodies of the account routes.
type (
	registerRequest struct {
		Email    string `json:"email" validate:"required" maxlen:"254"`
		Username string `json:"username" validate:"required" doc:"at most 150 characters: letters, digits and @ . + - _"`
		Password string `json:"password" validate:"required" maxlen:"4096" doc:"at least 8 characters, not entirely numeric, not similar to the username or e-mail address"`
	}
	profileDTO struct {
		Username    string `json:"username"`
		Email       string `json:"email"`
		IsSuperuser bool   `json:"is_superuser"`
		MemoryQuota int    `json:"memory_quota"`
	}
	detailDTO struct {
		Detail string `json:"detail"`
	}
	messageDTO struct {
		Message string `json:"message"`
	}
)

// linkQuery documents the two query parameters of mailed links.
var linkQuery = []param{
	{"token", "the single-use token from the mailed link", map[string]any{"type": "string"}},
	{"pair", "the user id, base64url-encoded, from the mailed link", map[string]any{"type": "string"}},
}

func (s *Server) accountRoutes() []route {
	profile := "/api/auth/profile/{username:[^/]+}"
	return []route{
		{http.MethodPost, "/api/auth/login", public, s.login, doc{summary: "Exchange a username and password for a new token", tag: "auth", request: loginRequest{}, response: loginDTO{}}},
		{http.MethodPost, "/api/auth/register", public, s.register, doc{summary: "Create an inactive user and mail an activation link; 405 unless registration is enabled. The token works after activation", tag: "auth", request: registerRequest{}, response: loginDTO{}}},
		{http.MethodGet, "/api/auth/activate", public, s.activate, doc{summary: "Activate a user with a mailed single-use link, then redirect to the web UI's /activatedAccount, or to its root when the link is invalid or expired", tag: "auth", status: http.StatusFound, query: linkQuery}},
		{http.MethodPost, "/api/auth/logout", token, s.logout, doc{summary: "Revoke the calling token, or with all=true every token of the caller", tag: "auth", status: http.StatusNoContent, query: []param{{"all", "true revokes every token of the caller", map[string]any{"type": "boolean"}}}}},
		{http.MethodGet, "/api/auth/profile", token, s.listProfiles, doc{summary: "List profiles: the caller's own, or every user's for a superuser (not paginated)", tag: "auth", response: []profileDTO{}}},
		{http.MethodPost, "/api/auth/profile", token, s.createProfile, doc{summary: "Create an active user (superusers only)", tag: "auth", request: profileCreateRequest{}, response: profileDTO{}, status: http.StatusCreated}},
		{http.MethodGet, profile, token, s.getProfile, doc{summary: "Read a profile: the caller's own, or anyone's for a superuser", tag: "auth", response: profileDTO{}}},
		{http.MethodPut, profile, token, s.putProfile, doc{summary: "Replace the username and e-mail address; needs the caller's current password", tag: "auth", request: profileUpdateRequest{}, response: profileDTO{}}},
		{http.MethodPatch, profile, token, s.patchProfile, doc{summary: "Change the username or e-mail address; only the fields sent change; needs the caller's current password", tag: "auth", request: profileUpdateRequest{}, response: profileDTO{}}},
		{http.MethodDelete, profile, token, s.deleteProfile, doc{summary: "Delete a user: the caller, or anyone for a superuser", tag: "auth", status: http.StatusNoContent}},
		{http.MethodPatch, "/api/account/changePassword/change", token, s.changePassword, doc{summary: "Change the caller's password; revokes every token of the caller and returns a new one", tag: "account", request: changePasswordRequest{}, response: loginDTO{}}},
		{http.MethodPost, "/api/account/resetPassword/request", public, s.requestPasswordReset, doc{summary: "Mail a password-reset link when a user has this address; the response is the same either way", tag: "account", request: resetRequest{}, response: detailDTO{}}},
		{http.MethodGet, "/api/account/resetPassword/validate", public, s.validateResetLink, doc{summary: "Check a password-reset link without using it", tag: "account", response: messageDTO{}, query: linkQuery}},
		{http.MethodPatch, "/api/account/resetPassword/confirm", public, s.confirmPasswordReset, doc{summary: "Set a new password with a password-reset link; the link is spent and every token of the user revoked", tag: "account", request: resetConfirmRequest{}, response: detailDTO{}, query: linkQuery}},
	}
}

var errBadCredentials = errField("non_field_errors", "Unable to log in with provided credentials.")

// dummyHash is checked against when the username is unknown, so that a login takes as long
// for an unknown user as for a wrong password and its duration does not tell them apart.
var dummyHash = sync.OnceValue(func() string {
	h, _ := password.Hash("no user has this password")
	return h
})

// login exchanges a username and password for a new token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) (any, error) {
	var req loginRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	user, err := s.store.UserByUsername(r.Context(), req.Username)
	if errors.Is(err, store.ErrNotFound) {
		password.Check(req.Password, dummyHash())
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if !password.Check(req.Password, user.PasswordHash) {
		return nil, errBadCredentials
	}
	if !user.IsActive {
		return nil, s.inactiveLogin(r, user)
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

// inactiveLogin handles a login with the correct password of an inactive user. A user still waiting for
// activation gets estela's 403 and, at most once per activationResendInterval, a new link. A
// user deactivated after activation gets the usual credentials error. Unlike estela, nothing
// happens before the password is checked, so the answer reveals nothing about the username.
func (s *Server) inactiveLogin(r *http.Request, user *store.User) error {
	ctx := r.Context()
	pending, err := s.store.ActivationPending(ctx, user.ID)
	if err != nil {
		return err
	}
	if !pending {
		return errBadCredentials
	}
	recent, err := s.store.CountAccountTokens(ctx, user.ID, store.PurposeActivation, activationResendInterval)
	if err != nil {
		return err
	}
	if recent == 0 {
		token, err := s.store.IssueAccountToken(ctx, user.ID, store.PurposeActivation, s.opts.Accounts.ActivationTTL)
		if err != nil {
			return err
		}
		s.sendLater(user.ID, s.activationMail(r, user, token))
	}
	return errMessage(http.StatusForbidden, "Check the verification email that was sent to you.")
}

// register creates an inactive user and mails it an activation link. Unlike estela, a user
// whose activation mail cannot be sent is deleted again, so the name stays free for a retry.
func (s *Server) register(w http.ResponseWriter, r *http.Request) (any, error) {
	if !s.opts.Accounts.Register {
		// An empty Allow means that the configuration disabled every method (RFC 9110, 10.2.1).
		w.Header().Set("Allow", "")
		return nil, errDetail(http.StatusMethodNotAllowed, "Registration is disabled on this server.")
	}
	var req registerRequest
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
	user := &store.User{Username: req.Username, Email: req.Email, PasswordHash: hash}
	reg, err := s.store.RegisterAccount(r.Context(), user, s.opts.Accounts.ActivationTTL)
	if err != nil {
		return nil, accountConflict(err)
	}

	if err := s.sendNow(r.Context(), s.activationMail(r, user, reg.ActivationToken)); err != nil {
		s.log.Error("send activation mail; deleting the new user", "user_id", user.ID, "error", err)
		if err := s.store.DeleteUser(context.WithoutCancel(r.Context()), user.ID); err != nil {
			s.log.Error("delete user after failed activation mail", "user_id", user.ID, "error", err)
		}
		return nil, errMessage(http.StatusServiceUnavailable, "The activation e-mail could not be sent, so the account was not created. Please try again later.")
	}
	return loginDTO{User: userDTO{user.Username, user.Email}, Key: reg.Key}, nil
}

// checkNewAccount validates the fields of a new user and reports every problem at once,
// under the field it belongs to.
func (s *Server) checkNewAccount(ctx context.Context, username, email, plain string) error {
	problems := map[string][]string{}
	add := func(field string, msgs ...string) {
		if len(msgs) > 0 {
			problems[field] = append(problems[field], msgs...)
		}
	}
	add("username", usernameProblems(username)...)
	add("email", emailProblems(email)...)
	add("password", passwordProblems(plain, username, email)...)
	if _, err := s.store.UserByUsername(ctx, username); err == nil {
		add("username", usernameTaken)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		add("email", emailTaken)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if len(problems) > 0 {
		return &apiError{http.StatusBadRequest, problems}
	}
	return nil
}

const (
	usernameTaken = "A user with that username already exists."
	emailTaken    = "A user with that email already exists."
)

// accountConflict turns a uniqueness error of a concurrent write into the field error that
// checkNewAccount would have given.
func accountConflict(err error) error {
	switch {
	case errors.Is(err, store.ErrUsernameTaken):
		return errField("username", usernameTaken)
	case errors.Is(err, store.ErrEmailTaken):
		return errField("email", emailTaken)
	}
	return err
}

// activate spends an activation link and redirects the browser to the web UI.
func (s *Server) activate(w http.ResponseWriter, r *http.Request) (any, error) {
	frontend := s.opts.Accounts.FrontendURL
	userID, ok := decodePair(r.URL.Query().Get("pair"))
	token := r.URL.Query().Get("token")

	err := store.ErrNotFound
	// The router sends HEAD requests to GET routes too, and a link checker probing with HEAD
	// must not spend the link.
	if ok && token != "" && r.Method == http.MethodGet {
		err = s.store.ActivateUser(r.Context(), userID, token)
	}
	switch {
	case err == nil:
		http.Redirect(w, r, frontend+"/activatedAccount", http.StatusFound)
	case errors.Is(err, store.ErrNotFound):
		http.Redirect(w, r, frontend+"/", http.StatusFound)
	default:
		return nil, err
	}
	return written, nil
}

// logout revokes the calling token, or every token of the caller with all=true.
func (s *Server) logout(_ http.ResponseWriter, r *http.Request) (any, error) {
	all := false
	if raw := r.URL.Query().Get("all"); raw != "" {
		var err error
		if all, err = strconv.ParseBool(raw); err != nil {
			return nil, errField("all", "Must be a valid boolean.")
		}
	}
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}

	if all {
		_, err = s.store.DeleteUserTokens(r.Context(), user.ID)
	} else {
		err = s.store.DeleteUserToken(r.Context(), user.ID, requestKey(r))
	}
	// A concurrent logout may have revoked the token first; it is gone either way.
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return noContent, nil
}

// requestKey returns the key of the request's Authorization header, which authed has checked.
func requestKey(r *http.Request) string {
	_, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.TrimSpace(key)
}

// encodePair encodes a user id for a mailed link as Django's urlsafe_base64_encode does:
// base64url of the decimal digits, without padding.
func encodePair(userID int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(userID, 10)))
}

// decodePair is the inverse of encodePair; it also accepts padding.
func decodePair(pair string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pair, "="))
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	return id, err == nil && id > 0
}

// mailedLink appends the token and pair query of a mailed link to base.
func mailedLink(base, token string, userID int64) string {
	return base + "?token=" + url.QueryEscape(token) + "&pair=" + encodePair(userID)
}

func (s *Server) activationMail(r *http.Request, user *store.User, token string) mail.Message {
	api := s.opts.Accounts.APIURL
	if api == "" {
		api = requestScheme(r) + "://" + r.Host
	}
	link := mailedLink(api+"/api/auth/activate", token, user.ID)
	return mail.Message{To: user.Email, Subject: "Activate your estela account.", Body: fmt.Sprintf(
		"Hello %s,\n\nOpen this link to activate your estela account:\n\n%s\n\nThe link works once and expires in %s. If you did not register, ignore this e-mail.\n",
		user.Username, link, humanDuration(s.opts.Accounts.ActivationTTL))}
}

// sendNow delivers a message within mailTimeout.
func (s *Server) sendNow(ctx context.Context, m mail.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
	defer cancel()
	return s.opts.Mailer.Send(ctx, m)
}

// sendLater delivers a message in the background and logs a failure. Routes whose response
// must not depend on the delivery, or must not take longer because of it, use it.
func (s *Server) sendLater(userID int64, m mail.Message) {
	if m.To == "" {
		s.log.Debug("account mail skipped: user has no e-mail address", "user_id", userID, "subject", m.Subject)
		return
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		if err := s.sendNow(context.Background(), m); err != nil {
			s.log.Error("send account mail", "user_id", userID, "subject", m.Subject, "error", err)
		}
	}()
}

// humanDuration writes a link lifetime for a mail, such as "24 hours" or "30 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int64(d/time.Minute), "minute")
	}
	return plural(int64(d/time.Second), "second")
}
