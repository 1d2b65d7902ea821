package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/api"
	"github.com/estela-go/estela-go/core/internal/mail"
)

// mailbox is a mail.Sender that keeps every message, or fails when failing is set.
type mailbox struct {
	mu      sync.Mutex
	sent    []mail.Message
	failing bool
}

func (m *mailbox) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return errors.New("mail server unreachable")
	}
	m.sent = append(m.sent, msg)
	return nil
}

func (m *mailbox) messages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mail.Message(nil), m.sent...)
}

// accountFixture is the API fixture served with a mailbox and the given account settings.
type accountFixture struct {
	*fixture
	server *api.Server
	mail   *mailbox
}

const frontendURL = "http://web.example"

func newAccountFixture(t *testing.T, opts api.AccountOptions) *accountFixture {
	t.Helper()
	f := newFixture(t)
	box := &mailbox{}
	if opts.FrontendURL == "" {
		opts.FrontendURL = frontendURL
	}
	srv := api.New(f.st, nil, nil, nil, nil, api.Options{Mailer: box, Accounts: opts}, hclog.NewNullLogger())
	f.srv.Close()
	f.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(f.srv.Close)
	return &accountFixture{fixture: f, server: srv, mail: box}
}

// sent waits for the mail that requests send in the background and returns every message.
func (f *accountFixture) sent() []mail.Message {
	f.server.Wait()
	return f.mail.messages()
}

var linkPattern = regexp.MustCompile(`https?://\S+`)

// link returns the URL in a mail body.
func link(t *testing.T, m mail.Message) *url.URL {
	t.Helper()
	raw := linkPattern.FindString(m.Body)
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		t.Fatalf("mail %q has no link: %q", m.Subject, m.Body)
	}
	return u
}

// visit sends a GET without following redirects and returns the status and Location.
func (f *accountFixture) visit(pathAndQuery string) (int, string) {
	f.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(f.srv.URL + pathAndQuery)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

func messages(r response, field string) string {
	list, _ := r.body[field].([]any)
	var out []string
	for _, m := range list {
		s, _ := m.(string)
		out = append(out, s)
	}
	return strings.Join(out, " | ")
}

func TestRegisterDisabledByDefault(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	r := f.json("", http.MethodPost, "/api/auth/register", map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"})
	expectStatus(t, r, http.StatusMethodNotAllowed, "register while disabled")
	if detail, _ := r.body["detail"].(string); !strings.Contains(detail, "disabled") {
		t.Errorf("register while disabled: body %s, want a detail saying registration is disabled", r.raw)
	}
	if allow, ok := r.header["Allow"]; !ok || len(allow) != 1 || allow[0] != "" {
		t.Errorf("register while disabled: Allow %q, want one empty value", allow)
	}
}

func TestRegisterAndActivate(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{Register: true})

	r := f.json("", http.MethodPost, "/api/auth/register", map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"})
	expectStatus(t, r, http.StatusOK, "register")
	key, _ := r.body["key"].(string)
	user, _ := r.body["user"].(map[string]any)
	if len(key) != 40 || user["username"] != "newbie" || user["email"] != "newbie@example.com" {
		t.Fatalf("register body %s, want a 40-character key and the user", r.raw)
	}
	if r := f.get(key, "/api/auth/profile"); r.status != http.StatusUnauthorized {
		t.Errorf("token before activation: status %d, want 401", r.status)
	}
	r = f.login("newbie", "long enough pw 42")
	if r.status != http.StatusForbidden || r.body["error"] != "Check the verification email that was sent to you." {
		t.Errorf("login before activation: %d %s, want 403 asking to check the mail", r.status, r.raw)
	}

	sent := f.sent()
	if len(sent) != 1 || sent[0].To != "newbie@example.com" || sent[0].Subject != "Activate your estela account." {
		t.Fatalf("sent %+v, want one activation mail to newbie", sent)
	}
	activation := link(t, sent[0])
	if activation.Path != "/api/auth/activate" || activation.Query().Get("token") == "" || activation.Query().Get("pair") == "" {
		t.Fatalf("activation link %s lacks the route, token or pair", activation)
	}
	status, location := f.visit(activation.RequestURI())
	if status != http.StatusFound || location != frontendURL+"/activatedAccount" {
		t.Errorf("activate: %d to %q, want 302 to %s/activatedAccount", status, location, frontendURL)
	}
	if r := f.get(key, "/api/auth/profile"); r.status != http.StatusOK {
		t.Errorf("registration token after activation: %d %s, want 200", r.status, r.raw)
	}
	expectStatus(t, f.login("newbie", "long enough pw 42"), http.StatusOK, "login after activation")

	status, location = f.visit(activation.RequestURI())
	if status != http.StatusFound || location != frontendURL+"/" {
		t.Errorf("second activation with the same link: %d to %q, want 302 to the frontend root", status, location)
	}
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{Register: true})
	valid := map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"}
	with := func(field, value string) map[string]string {
		out := map[string]string{}
		for k, v := range valid {
			out[k] = v
		}
		out[field] = value
		return out
	}
	cases := []struct {
		name  string
		body  map[string]string
		field string
		want  string
	}{
		{"username with space", with("username", "new bie"), "username", "Enter a valid username."},
		{"username too long", with("username", strings.Repeat("a", 151)), "username", "at most 150 characters"},
		{"username a dot", with("username", "."), "username", "cannot be . or .."},
		{"username two dots", with("username", ".."), "username", "cannot be . or .."},
		{"username taken", with("username", "owner"), "username", "A user with that username already exists."},
		{"email invalid", with("email", "not-an-address"), "email", "Enter a valid email address."},
		{"email with display name", with("email", "Ana <ana@example.com>"), "email", "Enter a valid email address."},
		{"email taken in other case", with("email", "OWNER@example.com"), "email", "A user with that email already exists."},
		{"password short", with("password", "x1y2z3"), "password", "too short"},
		{"password numeric", with("password", "1234567890"), "password", "entirely numeric"},
		{"password like username", with("password", "newbie12"), "password", "too similar to the username"},
		{"password common", with("password", "password1"), "password", "too common"},
		{"username missing", map[string]string{"email": "a@example.com", "password": "long enough pw 42"}, "username", "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.json("", http.MethodPost, "/api/auth/register", tc.body)
			expectField(t, r, tc.field, tc.name)
			if got := messages(r, tc.field); !strings.Contains(got, tc.want) {
				t.Errorf("%s: %s messages %q, want one containing %q", tc.name, tc.field, got, tc.want)
			}
		})
	}
	if sent := f.sent(); len(sent) != 0 {
		t.Errorf("rejected registrations sent %d mails", len(sent))
	}
}

func TestRegisterMailFailureKeepsNoUser(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{Register: true})
	f.mail.mu.Lock()
	f.mail.failing = true
	f.mail.mu.Unlock()
	body := map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"}

	r := f.json("", http.MethodPost, "/api/auth/register", body)
	if r.status != http.StatusServiceUnavailable || r.body["error"] == nil {
		t.Errorf("register with failing mail: %d %s, want 503 with an error", r.status, r.raw)
	}
	f.mail.mu.Lock()
	f.mail.failing = false
	f.mail.mu.Unlock()
	expectStatus(t, f.json("", http.MethodPost, "/api/auth/register", body), http.StatusOK, "register again once mail works")
}

func TestActivateRejectsBadLinks(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{Register: true, ActivationTTL: time.Millisecond})
	r := f.json("", http.MethodPost, "/api/auth/register", map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"})
	expectStatus(t, r, http.StatusOK, "register")
	activation := link(t, f.sent()[0])
	pair := activation.Query().Get("pair")
	time.Sleep(20 * time.Millisecond)

	for name, query := range map[string]string{
		"expired token": activation.RawQuery,
		"wrong token":   "token=nope&pair=" + pair,
		"bad pair":      "token=" + activation.Query().Get("token") + "&pair=%21%21",
		"no query":      "",
	} {
		status, location := f.visit("/api/auth/activate?" + query)
		if status != http.StatusFound || location != frontendURL+"/" {
			t.Errorf("%s: %d to %q, want 302 to the frontend root", name, status, location)
		}
	}
	if r := f.login("newbie", "long enough pw 42"); r.status != http.StatusForbidden {
		t.Errorf("login after failed activations: %d %s, want 403 (still inactive)", r.status, r.raw)
	}
}

func TestLoginOfInactiveUserRevealsNothing(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{Register: true})
	expectStatus(t, f.json("", http.MethodPost, "/api/auth/register", map[string]string{"username": "newbie", "email": "newbie@example.com", "password": "long enough pw 42"}), http.StatusOK, "register")

	r := f.login("newbie", "wrong password")
	want := `{"non_field_errors":["Unable to log in with provided credentials."]}` + "\n"
	if r.status != http.StatusBadRequest || r.raw != want {
		t.Errorf("wrong password of inactive user: %d %s, want 400 %s", r.status, r.raw, want)
	}
	if r := f.login("nobody", "wrong password"); r.raw != want {
		t.Errorf("unknown user: %d %s, want the same body", r.status, r.raw)
	}
	expectStatus(t, f.login("newbie", "long enough pw 42"), http.StatusForbidden, "right password of inactive user")
	if sent := f.sent(); len(sent) != 1 {
		t.Errorf("sent %d mails, want only the registration's: a login right after it sends no new link", len(sent))
	}
}

func TestProfileList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	r := f.get("viewer", "/api/auth/profile")
	var own []map[string]any
	_ = json.Unmarshal([]byte(r.raw), &own)
	if r.status != http.StatusOK || len(own) != 1 || own[0]["username"] != "viewer" || own[0]["email"] != "viewer@example.com" ||
		own[0]["is_superuser"] != false || own[0]["memory_quota"] == nil {
		t.Errorf("viewer's list: %d %s, want the viewer's profile alone", r.status, r.raw)
	}
	r = f.get("admin", "/api/auth/profile")
	var names []string
	for _, line := range regexp.MustCompile(`"username":"([^"]+)"`).FindAllStringSubmatch(r.raw, -1) {
		names = append(names, line[1])
	}
	if got := strings.Join(names, ","); r.status != http.StatusOK || got != "admin,developer,outsider,owner,viewer" {
		t.Errorf("superuser's list: %d %s, want every user by name", r.status, r.raw)
	}
}

func TestProfileCreateSuperuserOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := map[string]string{"username": "made", "email": "made@example.com", "password": "long enough pw 42"}

	expectStatus(t, f.json("owner", http.MethodPost, "/api/auth/profile", body), http.StatusForbidden, "owner creates a user")
	expectStatus(t, f.login("made", "long enough pw 42"), http.StatusBadRequest, "login of a user that was not created")

	r := f.json("admin", http.MethodPost, "/api/auth/profile", body)
	want := `{"username":"made","email":"made@example.com","is_superuser":false,"memory_quota":6144}` + "\n"
	if r.status != http.StatusCreated || r.raw != want {
		t.Errorf("superuser creates a user: %d %s, want 201 %s", r.status, r.raw, want)
	}
	expectStatus(t, f.login("made", "long enough pw 42"), http.StatusOK, "login of the created user (hashed password)")
	expectField(t, f.json("admin", http.MethodPost, "/api/auth/profile", body), "username", "create a taken username")
	expectField(t, f.json("admin", http.MethodPost, "/api/auth/profile", map[string]string{"username": "x", "email": "x@example.com", "password": "123"}), "password", "create with a weak password")
}

func (f *fixture) login(username, password string) response {
	return f.json("", http.MethodPost, "/api/auth/login", map[string]string{"username": username, "password": password})
}

func TestProfileReadPermissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cases := []struct {
		caller, name string
		status       int
	}{
		{"viewer", "viewer", http.StatusOK},
		{"viewer", "owner", http.StatusForbidden},
		{"viewer", "nobody", http.StatusForbidden},
		{"admin", "owner", http.StatusOK},
		{"admin", "nobody", http.StatusNotFound},
	}
	for _, tc := range cases {
		r := f.get(tc.caller, "/api/auth/profile/"+tc.name)
		expectStatus(t, r, tc.status, tc.caller+" reads "+tc.name)
		if tc.status == http.StatusOK && r.body["username"] != tc.name {
			t.Errorf("%s reads %s: body %s", tc.caller, tc.name, r.raw)
		}
	}
	if r := f.get("admin", "/api/auth/profile/nobody"); r.body["error"] != "This user doesn't exist in estela." {
		t.Errorf("superuser reads an unknown user: body %s", r.raw)
	}
	expectStatus(t, f.get("", "/api/auth/profile/viewer"), http.StatusUnauthorized, "anonymous read")
}

func TestProfileUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const pw = "pw-123456"

	expectField(t, f.json("viewer", http.MethodPut, "/api/auth/profile/viewer", map[string]string{"username": "v2", "email": "v2@example.com"}), "password", "PUT without password")
	expectField(t, f.json("viewer", http.MethodPut, "/api/auth/profile/viewer", map[string]string{"username": "v2", "email": "v2@example.com", "password": "wrong"}), "non_field_errors", "PUT with a wrong password")
	expectField(t, f.json("viewer", http.MethodPut, "/api/auth/profile/viewer", map[string]string{"username": "v2", "password": pw}), "email", "PUT without email")
	expectField(t, f.json("viewer", http.MethodPatch, "/api/auth/profile/viewer", map[string]string{"email": "OWNER@example.com", "password": pw}), "email", "PATCH to a taken email")
	expectField(t, f.json("viewer", http.MethodPatch, "/api/auth/profile/viewer", map[string]string{"username": "owner", "password": pw}), "username", "PATCH to a taken username")
	expectStatus(t, f.json("viewer", http.MethodPatch, "/api/auth/profile/owner", map[string]string{"email": "x@example.com", "password": pw}), http.StatusForbidden, "viewer edits owner")

	r := f.json("viewer", http.MethodPatch, "/api/auth/profile/viewer", map[string]string{"email": "seer@example.com", "password": pw})
	if r.status != http.StatusOK || r.body["username"] != "viewer" || r.body["email"] != "seer@example.com" {
		t.Errorf("PATCH email only: %d %s, want the username kept and the new email", r.status, r.raw)
	}
	r = f.json("viewer", http.MethodPut, "/api/auth/profile/viewer", map[string]string{"username": "seer", "email": "seer@example.com", "password": pw})
	if r.status != http.StatusOK || r.body["username"] != "seer" {
		t.Errorf("PUT: %d %s, want username seer", r.status, r.raw)
	}
	expectStatus(t, f.get("viewer", "/api/auth/profile/seer"), http.StatusOK, "read under the new name with the old token")

	r = f.json("admin", http.MethodPatch, "/api/auth/profile/owner", map[string]string{"email": "boss@example.com", "password": pw})
	if r.status != http.StatusOK || r.body["email"] != "boss@example.com" {
		t.Errorf("superuser edits owner with own password: %d %s", r.status, r.raw)
	}
}

func TestProfileDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	expectStatus(t, f.do("viewer", http.MethodDelete, "/api/auth/profile/owner", "", nil), http.StatusForbidden, "viewer deletes owner")
	expectStatus(t, f.do("viewer", http.MethodDelete, "/api/auth/profile/viewer", "", nil), http.StatusNoContent, "viewer deletes self")
	expectStatus(t, f.get("viewer", "/api/auth/profile"), http.StatusUnauthorized, "token of the deleted user")
	expectStatus(t, f.do("admin", http.MethodDelete, "/api/auth/profile/developer", "", nil), http.StatusNoContent, "superuser deletes developer")
	expectStatus(t, f.login("developer", "pw-123456"), http.StatusBadRequest, "login of the deleted developer")
	expectStatus(t, f.do("admin", http.MethodDelete, "/api/auth/profile/developer", "", nil), http.StatusNotFound, "delete twice")
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{})
	const path = "/api/account/changePassword/change"
	change := func(old, new, confirm string) response {
		return f.json("viewer", http.MethodPatch, path, map[string]string{"old_password": old, "new_password": new, "confirm_new_password": confirm})
	}
	second := f.login("viewer", "pw-123456").body["key"].(string)

	r := change("wrong", "fresh secret 42", "fresh secret 42")
	if r.status != http.StatusUnauthorized || r.body["detail"] != "Incorrect authentication credentials." {
		t.Errorf("wrong old password: %d %s, want 401", r.status, r.raw)
	}
	if r := change("pw-123456", "fresh secret 42", "fresh secret 43"); messages(r, "new_password") != "The new passwords do not match." {
		t.Errorf("mismatch: %d %s", r.status, r.raw)
	}
	if r := change("pw-123456", "short1", "short1"); !strings.Contains(messages(r, "new_password"), "too short") {
		t.Errorf("short password: %d %s", r.status, r.raw)
	}
	if r := change("pw-123456", "pw-123456", "pw-123456"); messages(r, "new_password") != "The new password cannot be the same as the old password." {
		t.Errorf("same password: %d %s", r.status, r.raw)
	}
	expectField(t, f.json("viewer", http.MethodPatch, path, map[string]string{"old_password": "pw-123456"}), "new_password", "missing new password")

	r = change("pw-123456", "fresh secret 42", "fresh secret 42")
	expectStatus(t, r, http.StatusOK, "change password")
	key, _ := r.body["key"].(string)
	if len(key) != 40 || key == f.tokens["viewer"] || r.body["user"] == nil {
		t.Fatalf("change password body %s, want a new 40-character key and the user", r.raw)
	}
	expectStatus(t, f.get("viewer", "/api/auth/profile"), http.StatusUnauthorized, "old token after the change")
	expectStatus(t, f.get(second, "/api/auth/profile"), http.StatusUnauthorized, "second old token after the change")
	expectStatus(t, f.get(key, "/api/auth/profile"), http.StatusOK, "new token")
	expectStatus(t, f.login("viewer", "pw-123456"), http.StatusBadRequest, "login with the old password")
	expectStatus(t, f.login("viewer", "fresh secret 42"), http.StatusOK, "login with the new password")
	if sent := f.sent(); len(sent) != 1 || sent[0].Subject != "Your estela password has been changed." {
		t.Errorf("sent %+v, want one password-changed notice", sent)
	}
}

const resetPath = "/api/account/resetPassword"

func TestPasswordResetRequestRevealsNothing(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{})

	known := f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "Viewer@example.com"})
	unknown := f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "nobody@example.com"})
	want := `{"detail":"If an account with that e-mail exists, a reset link was sent."}` + "\n"
	if known.status != http.StatusOK || known.raw != want {
		t.Errorf("known address: %d %s, want 200 %s", known.status, known.raw, want)
	}
	if unknown.status != known.status || unknown.raw != known.raw {
		t.Errorf("unknown address: %d %s differs from the known address's answer", unknown.status, unknown.raw)
	}
	if strings.Contains(known.raw, "key") || strings.Contains(known.raw, "token") {
		t.Errorf("reset request answer %s carries a token", known.raw)
	}
	expectField(t, f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "nope"}), "email", "invalid address")

	sent := f.sent()
	if len(sent) != 1 || sent[0].To != "viewer@example.com" || sent[0].Subject != "Change your estela password." {
		t.Fatalf("sent %+v, want one reset mail to the viewer", sent)
	}
	reset := link(t, sent[0])
	if reset.Scheme+"://"+reset.Host != frontendURL || reset.Path != "/resetPassword" || reset.Query().Get("token") == "" || reset.Query().Get("pair") == "" {
		t.Errorf("reset link %s, want %s/resetPassword with token and pair", reset, frontendURL)
	}
}

func TestPasswordResetRateLimit(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{})

	for i := 0; i < 5; i++ {
		expectStatus(t, f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "viewer@example.com"}), http.StatusOK, "reset request")
	}
	if sent := f.sent(); len(sent) != 3 {
		t.Errorf("sent %d reset mails for 5 requests, want 3 (the limit)", len(sent))
	}
}

func TestPasswordResetConfirm(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{})
	expectStatus(t, f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "viewer@example.com"}), http.StatusOK, "reset request")
	query := link(t, f.sent()[0]).RawQuery
	pair := link(t, f.sent()[0]).Query().Get("pair")
	confirm := func(query, new, confirm string) response {
		return f.json("", http.MethodPatch, resetPath+"/confirm?"+query, map[string]string{"new_password": new, "confirm_new_password": confirm})
	}
	second := f.login("viewer", "pw-123456").body["key"].(string)

	if r := f.get("", resetPath+"/validate?"+query); r.status != http.StatusOK || r.body["message"] != "Token is valid." {
		t.Errorf("validate a fresh link: %d %s", r.status, r.raw)
	}
	for name, q := range map[string]string{"wrong token": "token=nope&pair=" + pair, "unknown user": "token=nope&pair=OTk5OTk", "bad pair": "token=nope&pair=%21%21"} {
		if r := f.get("", resetPath+"/validate?"+q); r.status != http.StatusBadRequest || r.body["message"] != "Token is invalid." {
			t.Errorf("validate with %s: %d %s, want 400 Token is invalid.", name, r.status, r.raw)
		}
	}
	expectField(t, f.get("", resetPath+"/validate"), "token", "validate without query")

	expectField(t, confirm("token=nope&pair="+pair, "fresh secret 42", "fresh secret 42"), "token", "confirm with a wrong token")
	if r := confirm(query, "fresh secret 42", "fresh secret 43"); messages(r, "new_password") != "New passwords do not match." {
		t.Errorf("confirm with a mismatch: %d %s", r.status, r.raw)
	}
	expectField(t, confirm(query, "12345678", "12345678"), "new_password", "confirm with a numeric password")
	expectStatus(t, f.get("", resetPath+"/validate?"+query), http.StatusOK, "link after rejected passwords")

	r := confirm(query, "fresh secret 42", "fresh secret 42")
	expectStatus(t, r, http.StatusOK, "confirm")
	if _, ok := r.body["detail"]; !ok || strings.Contains(r.raw, "key") {
		t.Errorf("confirm body %s, want a detail and no token", r.raw)
	}
	expectStatus(t, f.get("viewer", "/api/auth/profile"), http.StatusUnauthorized, "fixture token after the reset")
	expectStatus(t, f.get(second, "/api/auth/profile"), http.StatusUnauthorized, "login token after the reset")
	expectStatus(t, f.login("viewer", "fresh secret 42"), http.StatusOK, "login with the new password")
	expectField(t, confirm(query, "other secret 42", "other secret 42"), "token", "confirm with a spent link")
	expectStatus(t, f.get("", resetPath+"/validate?"+query), http.StatusBadRequest, "validate a spent link")
	expectStatus(t, f.login("viewer", "fresh secret 42"), http.StatusOK, "password after the replayed confirm")
}

func TestPasswordResetExpiredLink(t *testing.T) {
	t.Parallel()
	f := newAccountFixture(t, api.AccountOptions{ResetTTL: time.Millisecond})
	expectStatus(t, f.json("", http.MethodPost, resetPath+"/request", map[string]string{"email": "viewer@example.com"}), http.StatusOK, "reset request")
	query := link(t, f.sent()[0]).RawQuery
	time.Sleep(20 * time.Millisecond)

	r := f.json("", http.MethodPatch, resetPath+"/confirm?"+query, map[string]string{"new_password": "fresh secret 42", "confirm_new_password": "fresh secret 42"})
	expectField(t, r, "token", "confirm with an expired link")
	expectStatus(t, f.login("viewer", "pw-123456"), http.StatusOK, "old password after the rejected reset")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.login("viewer", "pw-123456").body["key"].(string)
	second := f.login("viewer", "pw-123456").body["key"].(string)

	expectStatus(t, f.do(first, http.MethodPost, "/api/auth/logout", "", nil), http.StatusNoContent, "logout")
	expectStatus(t, f.get(first, "/api/auth/profile"), http.StatusUnauthorized, "token after its logout")
	expectStatus(t, f.get(second, "/api/auth/profile"), http.StatusOK, "other token after one logout")
	expectField(t, f.do(second, http.MethodPost, "/api/auth/logout?all=maybe", "", nil), "all", "logout with all=maybe")

	expectStatus(t, f.do(second, http.MethodPost, "/api/auth/logout?all=true", "", nil), http.StatusNoContent, "logout everywhere")
	expectStatus(t, f.get(second, "/api/auth/profile"), http.StatusUnauthorized, "calling token after logout everywhere")
	expectStatus(t, f.get("viewer", "/api/auth/profile"), http.StatusUnauthorized, "fixture token after logout everywhere")
	expectStatus(t, f.get("owner", "/api/auth/profile"), http.StatusOK, "another user's token")
	expectStatus(t, f.do("", http.MethodPost, "/api/auth/logout", "", nil), http.StatusUnauthorized, "anonymous logout")
}
