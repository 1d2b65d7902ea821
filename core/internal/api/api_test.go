package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/api"
	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/password"
	"github.com/estela-go/estela-go/core/internal/queue"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
	"github.com/estela-go/estela-go/sdk/engine"
)

// stoppingEngine is an engine that only accepts stop requests, which the API makes when a
// user stops a job that reached the engine. The tests launch nothing.
type stoppingEngine struct {
	engine.Engine
}

func (stoppingEngine) StopJob(context.Context, *engine.StopJobRequest) (*engine.StopJobResponse, error) {
	return &engine.StopJobResponse{}, nil
}

// fixture is an API server on a fresh database with users of every role on project P, a
// second project Q of another owner, and spiders deployed in both.
type fixture struct {
	t                *testing.T
	srv              *httptest.Server
	st               *store.Store
	tokens           map[string]string // by username: owner, developer, viewer, outsider, admin
	p, q             string            // project ids
	pSpider, qSpider int64
	// writeStats writes a job's live stats to Redis, as the job does while it runs.
	writeStats func(j *store.Job, stats map[string]string)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	pool := queue.NewPool(testenv.RedisURL(t))
	t.Cleanup(func() { pool.Close() })
	ns := testenv.Namespace()
	q := queue.New(pool, ns)
	stats := livestats.NewReader(pool, ns+":")
	log := hclog.NewNullLogger()
	d := dispatch.New(st, stoppingEngine{}, nil, q, stats, dispatch.Settings{MaxDispatchAttempts: 3}, log)
	srv := api.New(st, q, d, nil, stats, api.Options{CORSOrigins: []string{"http://web.example"}, MaxIngestBytes: 64 << 10, MaxUploadBytes: 64 << 10}, log)
	f := &fixture{t: t, st: st, tokens: map[string]string{}, srv: httptest.NewServer(srv.Handler())}
	f.writeStats = func(j *store.Job, values map[string]string) {
		conn := pool.Get()
		defer conn.Close()
		args := []any{stats.Key(j.Key())}
		for k, v := range values {
			args = append(args, k, v)
		}
		if _, err := conn.Do("HSET", args...); err != nil {
			t.Fatalf("write live stats: %v", err)
		}
	}
	t.Cleanup(f.srv.Close)

	hash, err := password.Hash("pw-123456")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*store.User{}
	for _, name := range []string{"owner", "developer", "viewer", "outsider", "admin"} {
		u := &store.User{Username: name, Email: name + "@example.com", PasswordHash: hash, IsActive: true, IsSuperuser: name == "admin"}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users[name] = u
		if f.tokens[name], err = st.CreateUserToken(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.p, f.pSpider = f.project("shop", users["owner"].ID)
	f.q, f.qSpider = f.project("other", users["outsider"].ID)
	for name, role := range map[string]string{"developer": store.RoleDeveloper, "viewer": store.RoleViewer} {
		if err := st.AddMember(ctx, f.p, users[name].ID, role); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) project(name string, owner int64) (string, int64) {
	ctx := context.Background()
	p := &store.Project{Name: name, Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT", DataExpiryDays: 1}
	if err := f.st.CreateProject(ctx, p, owner); err != nil {
		f.t.Fatal(err)
	}
	d := &store.Deploy{ProjectID: p.PID, UserID: &owner}
	if err := f.st.CreateDeploy(ctx, d); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SucceedDeploy(ctx, d.DID, "/nowhere", []string{"quotes"}); err != nil {
		f.t.Fatal(err)
	}
	spiders, _, err := f.st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	if err != nil {
		f.t.Fatal(err)
	}
	return p.PID, spiders[0].SID
}

// job creates a job on project P's spider straight in the store.
func (f *fixture) job() *store.Job {
	f.t.Helper()
	j := &store.Job{ProjectID: f.p, SpiderID: f.pSpider, DataStatus: "PERSISTENT", ResourceTier: "LARGE"}
	if err := f.st.CreateJob(context.Background(), j); err != nil {
		f.t.Fatal(err)
	}
	return j
}

// claimedJob creates a job, claims it as a launch does, and keeps its job token as user "job".
func (f *fixture) claimedJob() *store.Job {
	f.t.Helper()
	ctx := context.Background()
	j := f.job()
	if _, err := f.st.ClaimJob(ctx, j.JID); err != nil {
		f.t.Fatal(err)
	}
	token, err := f.st.CreateJobToken(ctx, j.JID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.tokens["job"] = token
	return j
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(user, method, path, contentType string, body io.Reader) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token, ok := f.tokens[user]; ok {
		req.Header.Set("Authorization", "Token "+token)
	} else if user != "" {
		req.Header.Set("Authorization", "Token "+user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (f *fixture) get(user, path string) response { return f.do(user, http.MethodGet, path, "", nil) }

func (f *fixture) json(user, method, path string, body any) response {
	b, _ := json.Marshal(body)
	return f.do(user, method, path, "application/json", bytes.NewReader(b))
}

func (f *fixture) form(user, method, path string, values url.Values) response {
	return f.do(user, method, path, "application/x-www-form-urlencoded", strings.NewReader(values.Encode()))
}

func (f *fixture) jobURL(j *store.Job) string {
	return fmt.Sprintf("/api/projects/%s/spiders/%d/jobs/%d", j.ProjectID, j.SpiderID, j.JID)
}

func expectStatus(t *testing.T, r response, want int, what string) {
	t.Helper()
	if r.status != want {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, want, r.raw)
	}
}

func expectField(t *testing.T, r response, field, what string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Errorf("%s: status %d, want 400; body %s", what, r.status, r.raw)
		return
	}
	if _, ok := r.body[field]; !ok {
		t.Errorf("%s: body %s does not name field %q", what, r.raw, field)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	r := f.get("", "/api/projects")
	expectStatus(t, r, http.StatusUnauthorized, "no token")
	if r.body["detail"] != "Authentication credentials were not provided." || r.header.Get("WWW-Authenticate") != "Token" {
		t.Errorf("no token: body %s, WWW-Authenticate %q", r.raw, r.header.Get("WWW-Authenticate"))
	}
	r = f.get("0123456789abcdef0123456789abcdef01234567", "/api/projects")
	if r.status != http.StatusUnauthorized || r.body["detail"] != "Invalid token." {
		t.Errorf("unknown token: %d %s, want 401 Invalid token.", r.status, r.raw)
	}
	if r := f.get("", "/"); r.status != http.StatusOK || r.raw != "OK" {
		t.Errorf("GET /: %d %q, want 200 OK", r.status, r.raw)
	}
	if r := f.get("", "/api"); r.status != http.StatusOK || r.body["projects"] != f.srv.URL+"/api/projects" {
		t.Errorf("GET /api: %d %s, want the projects URL", r.status, r.raw)
	}
}

// The job list reads the token's user in its own statement. Any caller but an active user
// gets the response that authentication gives on every route.
func TestJobListAuthentication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.jobWithToken(t)
	for _, u := range []*store.User{
		{Username: "inactive", Email: "inactive@example.com", PasswordHash: "x", IsActive: false},
		{Username: "staff", Email: "staff@example.com", PasswordHash: "x", IsActive: true, IsStaff: true},
	} {
		if err := f.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		token, err := f.st.CreateUserToken(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[u.Username] = token
		if u.IsActive {
			continue // staff, not a member
		}
		if err := f.st.AddMember(ctx, f.p, u.ID, store.RoleViewer); err != nil {
			t.Fatal(err)
		}
	}
	jobs := fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider)
	unknownSpider := fmt.Sprintf("/api/projects/%s/spiders/999999/jobs", f.p)
	for _, tt := range []struct {
		name, user, path string
		status           int
		detail           string
	}{
		{"no token", "", jobs, http.StatusUnauthorized, "Authentication credentials were not provided."},
		{"unknown token", "0123456789abcdef", jobs, http.StatusUnauthorized, "Invalid token."},
		{"unknown token with a bad page", "0123456789abcdef", jobs + "?page=abc", http.StatusUnauthorized, "Invalid token."},
		{"unknown token on an unknown spider", "0123456789abcdef", unknownSpider, http.StatusUnauthorized, "Invalid token."},
		{"inactive member", "inactive", jobs, http.StatusUnauthorized, "Invalid token."},
		{"job token", "job", jobs, http.StatusForbidden, ""},
		{"staff reads a project of which it is no member", "staff", jobs, http.StatusOK, ""},
		{"viewer", "viewer", jobs, http.StatusOK, ""},
	} {
		r := f.get(tt.user, tt.path)
		expectStatus(t, r, tt.status, tt.name)
		if tt.detail != "" && r.body["detail"] != tt.detail {
			t.Errorf("%s: detail %v, want %q", tt.name, r.body["detail"], tt.detail)
		}
		if tt.status == http.StatusOK && r.body["count"] != float64(1) {
			t.Errorf("%s: %s, want the spider's one job", tt.name, r.raw)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	r := f.json("", http.MethodPost, "/api/auth/login", map[string]string{"username": "viewer", "password": "pw-123456"})
	expectStatus(t, r, http.StatusOK, "login")
	key, _ := r.body["key"].(string)
	user, _ := r.body["user"].(map[string]any)
	if len(key) != 40 || user["username"] != "viewer" || user["email"] != "viewer@example.com" {
		t.Errorf("login body %s, want a 40-character key and the user", r.raw)
	}
	if r := f.get(key, "/api/projects"); r.status != http.StatusOK {
		t.Errorf("new token rejected: %d %s", r.status, r.raw)
	}
	r = f.form("", http.MethodPost, "/api/auth/login", url.Values{"username": {"viewer"}, "password": {"wrong"}})
	want := `{"non_field_errors":["Unable to log in with provided credentials."]}` + "\n"
	if r.status != http.StatusBadRequest || r.raw != want {
		t.Errorf("wrong password: %d %s, want 400 %s", r.status, r.raw, want)
	}
	expectField(t, f.json("", http.MethodPost, "/api/auth/login", map[string]string{"password": "x"}), "username", "login without username")
}

func TestCreateProject(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	expectField(t, f.json("viewer", http.MethodPost, "/api/projects", map[string]string{}), "name", "project without name")
	expectField(t, f.json("viewer", http.MethodPost, "/api/projects", map[string]string{"name": "x", "category": "TOYS"}), "category", "unknown category")
	expectField(t, f.json("viewer", http.MethodPost, "/api/projects", map[string]any{"name": "x", "data_expiry_days": "soon"}), "data_expiry_days", "bad expiry")

	r := f.json("viewer", http.MethodPost, "/api/projects", map[string]string{"name": "mine"})
	expectStatus(t, r, http.StatusCreated, "create project")
	users, _ := r.body["users"].([]any)
	if len(users) != 1 || !strings.Contains(fmt.Sprint(users[0]), "OWNER") || r.body["framework"] != "SCRAPY" {
		t.Errorf("created project %s, want the caller as OWNER and framework SCRAPY", r.raw)
	}
	list := f.get("viewer", "/api/projects")
	if list.body["count"] != float64(2) {
		t.Errorf("viewer lists %v projects, want 2 (shop and mine): %s", list.body["count"], list.raw)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := 0; i < 3; i++ {
		f.job()
	}
	base := fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider)

	r := f.get("viewer", base+"?page_size=2")
	expectStatus(t, r, http.StatusOK, "first page")
	next, _ := r.body["next"].(string)
	if r.body["count"] != float64(3) || !strings.HasPrefix(next, f.srv.URL+base+"?") || r.body["previous"] != nil {
		t.Errorf("first page %s, want count 3, an absolute next and no previous", r.raw)
	}
	r = f.get("viewer", strings.TrimPrefix(next, f.srv.URL))
	if results, _ := r.body["results"].([]any); len(results) != 1 || r.body["next"] != nil {
		t.Errorf("second page %s, want one job and no next", r.raw)
	}
	// As in DRF, the link to the first page has no page parameter.
	if previous, _ := r.body["previous"].(string); previous != f.srv.URL+base+"?page_size=2" {
		t.Errorf("second page's previous = %q, want %q", previous, f.srv.URL+base+"?page_size=2")
	}
	r = f.get("viewer", base+"?page=5")
	if r.status != http.StatusNotFound || r.body["detail"] != "Invalid page." {
		t.Errorf("page past the end: %d %s, want 404 Invalid page.", r.status, r.raw)
	}
	expectField(t, f.get("viewer", base+"?page=abc"), "page", "page=abc")
	// A page number whose offset would overflow, with and without a filter, and from an
	// outsider, whose request the statement runs before the role check.
	for _, user := range []string{"viewer", "outsider"} {
		expectField(t, f.get(user, base+"?page=9223372036854775807"), "page", user+": page=2^63-1")
		expectField(t, f.get(user, base+"?page=1000000001&tag=t1"), "page", user+": page=10^9+1 with a tag")
	}
	expectField(t, f.get("viewer", base+"?page_size=0"), "page_size", "page_size=0")
	expectField(t, f.get("viewer", base+"?status=PAUSED"), "status", "status=PAUSED")
	// Every invalid parameter is named, not only the first.
	r = f.get("viewer", base+"?page=0&page_size=x&status=PAUSED&cronjob=-1")
	for _, field := range []string{"page", "page_size", "status", "cronjob"} {
		expectField(t, r, field, "four invalid parameters")
	}
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.job()
	jobs := fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider)
	newJob := map[string]any{"data_status": "PERSISTENT"}

	tests := []struct {
		name   string
		user   string
		method string
		path   string
		want   int
	}{
		{"viewer reads project", "viewer", http.MethodGet, "/api/projects/" + f.p, http.StatusOK},
		{"viewer reads job", "viewer", http.MethodGet, f.jobURL(j), http.StatusOK},
		{"viewer cannot run job", "viewer", http.MethodPost, jobs, http.StatusForbidden},
		{"viewer cannot stop job", "viewer", http.MethodPut, f.jobURL(j) + "/stop", http.StatusForbidden},
		{"developer runs job", "developer", http.MethodPost, jobs, http.StatusCreated},
		{"outsider cannot read project", "outsider", http.MethodGet, "/api/projects/" + f.p, http.StatusForbidden},
		{"outsider cannot read job", "outsider", http.MethodGet, f.jobURL(j), http.StatusForbidden},
		{"admin reads any project", "admin", http.MethodGet, "/api/projects/" + f.p, http.StatusOK},
		{"spider of another project", "admin", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/%d", f.p, f.qSpider), http.StatusNotFound},
		{"job on a spider of another project", "developer", http.MethodPost, fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.qSpider), http.StatusNotFound},
		{"job on an unknown spider", "developer", http.MethodPost, fmt.Sprintf("/api/projects/%s/spiders/999999/jobs", f.p), http.StatusNotFound},
		{"outsider runs a job on an unknown spider", "outsider", http.MethodPost, fmt.Sprintf("/api/projects/%s/spiders/999999/jobs", f.p), http.StatusForbidden},
		{"viewer lists jobs", "viewer", http.MethodGet, jobs, http.StatusOK},
		{"viewer lists running jobs", "viewer", http.MethodGet, jobs + "?status=RUNNING", http.StatusOK},
		{"admin lists jobs of any project", "admin", http.MethodGet, jobs, http.StatusOK},
		{"outsider cannot list jobs", "outsider", http.MethodGet, jobs, http.StatusForbidden},
		{"outsider cannot list running jobs", "outsider", http.MethodGet, jobs + "?status=RUNNING", http.StatusForbidden},
		{"outsider lists jobs of an unknown spider", "outsider", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/999999/jobs", f.p), http.StatusForbidden},
		{"jobs of an unknown spider", "viewer", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/999999/jobs", f.p), http.StatusNotFound},
		{"jobs of a spider of another project", "viewer", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.qSpider), http.StatusNotFound},
		{"jobs of a spider of an unknown project", "admin", http.MethodGet, fmt.Sprintf("/api/projects/00000000-0000-4000-8000-000000000000/spiders/%d/jobs", f.pSpider), http.StatusNotFound},
		{"cron job on a spider of another project", "developer", http.MethodPost, fmt.Sprintf("/api/projects/%s/spiders/%d/cronjobs", f.p, f.qSpider), http.StatusNotFound},
		{"job under another project", "admin", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/%d/jobs/%d", f.q, f.pSpider, j.JID), http.StatusNotFound},
		{"job under another spider", "admin", http.MethodGet, fmt.Sprintf("/api/projects/%s/spiders/%d/jobs/%d", f.p, f.qSpider, j.JID), http.StatusNotFound},
		{"unknown project", "admin", http.MethodGet, "/api/projects/00000000-0000-4000-8000-000000000000", http.StatusNotFound},
		{"malformed project id", "admin", http.MethodGet, "/api/projects/not-a-uuid", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.json(tt.user, tt.method, tt.path, newJob)
			expectStatus(t, r, tt.want, tt.name)
		})
	}
}

func TestCreateJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	secret := &store.EnvVar{ProjectID: &f.q, Name: "TOKEN", Value: "other-project-secret", Masked: true}
	if err := f.st.CreateEnvVar(ctx, secret); err != nil {
		t.Fatal(err)
	}
	own := &store.EnvVar{ProjectID: &f.p, Name: "API_KEY", Value: "shop-secret", Masked: true}
	if err := f.st.CreateEnvVar(ctx, own); err != nil {
		t.Fatal(err)
	}
	jobs := fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider)

	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"resource_tier": "GIGANTIC"}), "resource_tier", "unknown tier")
	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"data_status": "PENDING", "data_expiry_days": 0}), "data_expiry_days", "zero expiry")
	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"args": []any{map[string]any{"name": 1}}}), "args", "bad arg")
	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"cronjob": 999}), "cronjob", "unknown cron job")
	if r := f.json("developer", http.MethodPost, jobs, map[string]any{"cronjob": 0}); !strings.Contains(r.raw, "greater than or equal to 1.") {
		t.Errorf("cron job 0: %d %s, want the lower bound alone", r.status, r.raw)
	}
	twice := []any{map[string]any{"name": "MODE", "value": "a"}, map[string]any{"name": "MODE", "value": "b"}}
	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"env_vars": twice}), "env_vars", "variable given twice")
	nul := []any{map[string]any{"name": "MODE", "value": "a\x00b"}}
	expectField(t, f.json("developer", http.MethodPost, jobs, map[string]any{"env_vars": nul}), "env_vars", "NUL in a value")
	if list := f.get("developer", jobs); list.body["count"] != float64(0) {
		t.Errorf("jobs after rejected creations: %s, want none", list.raw)
	}
	r := f.json("developer", http.MethodPost, jobs, map[string]any{"env_vars": []any{map[string]any{"evid": secret.EVID, "value": "__MASKED__"}}})
	expectField(t, r, "env_vars", "evid of another project")
	if strings.Contains(r.raw, "other-project-secret") {
		t.Errorf("answer leaks another project's secret: %s", r.raw)
	}

	r = f.json("developer", http.MethodPost, jobs, map[string]any{
		"args":          []any{map[string]any{"name": "category", "value": "poetry"}},
		"tags":          []any{map[string]any{"name": "daily"}},
		"env_vars":      []any{map[string]any{"evid": own.EVID, "name": "API_KEY", "value": "__MASKED__", "masked": true}, map[string]any{"name": "MODE", "value": "fast"}},
		"resource_tier": "SMALL", "data_status": "PENDING", "data_expiry_days": 3,
	})
	expectStatus(t, r, http.StatusCreated, "create job")
	if strings.Contains(r.raw, "shop-secret") {
		t.Errorf("answer shows a masked value: %s", r.raw)
	}
	if r.body["job_status"] != "IN_QUEUE" || r.body["resource_tier"] != "SMALL" || r.body["data_expiry_days"] != float64(3) {
		t.Errorf("created job %s, want IN_QUEUE, SMALL, 3 days", r.raw)
	}
	jid := int64(r.body["jid"].(float64))
	vars, err := f.st.JobEnvVars(ctx, jid)
	if err != nil || len(vars) != 2 || vars[0].Value != "shop-secret" || !vars[0].Masked {
		t.Errorf("stored env vars %+v, %v; want the copied masked API_KEY and MODE", vars, err)
	}
	if name := r.body["name"]; name != fmt.Sprintf("sj-%d-%s", jid, f.p) {
		t.Errorf("job name %v, want sj-<jid>-<pid>", name)
	}
}

// The spider's and the project's job lists show a running job's counters from its live stats,
// as the job view does, and a finished job's stored ones.
func TestJobListsShowLiveCounters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	running := f.claimedJob()
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(running), url.Values{"status": {"RUNNING"}}), http.StatusOK, "job reports RUNNING")
	f.writeStats(running, map[string]string{"item_scraped_count": "7", "downloader/request_count": "9", "elapsed_time_seconds": "65.2"})
	silent := f.claimedJob()
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(silent), url.Values{"status": {"RUNNING"}}), http.StatusOK, "second job reports RUNNING")
	done := f.claimedJob()
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(done), url.Values{"status": {"COMPLETED"}, "item_count": {"12"}}), http.StatusOK, "third job reports COMPLETED")
	f.writeStats(done, map[string]string{"item_scraped_count": "99"})

	want := map[float64][2]any{
		float64(running.JID): {float64(7), "00:01:05.200000"},
		float64(silent.JID):  {float64(0), "00:00:00"},
		float64(done.JID):    {float64(12), "00:00:00"},
	}
	for _, path := range []string{
		fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider),
		"/api/projects/" + f.p + "/jobs",
	} {
		r := f.get("viewer", path)
		expectStatus(t, r, http.StatusOK, "list jobs")
		results, _ := r.body["results"].([]any)
		if len(results) != len(want) {
			t.Fatalf("%s: %d jobs, want %d: %s", path, len(results), len(want), r.raw)
		}
		for _, raw := range results {
			job := raw.(map[string]any)
			w := want[job["jid"].(float64)]
			if job["item_count"] != w[0] || job["lifespan"] != w[1] {
				t.Errorf("%s: job %v has item_count %v and lifespan %v, want %v and %v", path, job["jid"], job["item_count"], job["lifespan"], w[0], w[1])
			}
		}
	}
	view := f.get("viewer", f.jobURL(running))
	if view.body["item_count"] != float64(7) || view.body["request_count"] != float64(9) {
		t.Errorf("job view shows item_count %v and request_count %v, want the live 7 and 9", view.body["item_count"], view.body["request_count"])
	}
}

// A job stopped by a user still records the counters of its last report, and stays STOPPED.
func TestStoppedJobLastReport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.claimedJob()
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"RUNNING"}}), http.StatusOK, "job reports RUNNING")
	f.writeStats(j, map[string]string{"item_scraped_count": "7"})
	r := f.do("developer", http.MethodPut, f.jobURL(j)+"/stop", "", nil)
	expectStatus(t, r, http.StatusOK, "user stops the job")
	if r.body["item_count"] != float64(7) {
		t.Errorf("stop returned item_count %v, want the live stats' 7", r.body["item_count"])
	}
	// The stop saves the live stats in the background. A real job gets the stop signal only
	// after that, so the last report here waits for it too.
	deadline := time.Now().Add(30 * time.Second)
	for f.get("viewer", f.jobURL(j)).body["item_count"] != float64(7) {
		if time.Now().After(deadline) {
			t.Fatal("the stop did not save the live stats within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	r = f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"COMPLETED"}, "item_count": {"12"}, "request_count": {"3"}})
	expectStatus(t, r, http.StatusOK, "stopped job reports COMPLETED")
	if r.body["status"] != "STOPPED" {
		t.Errorf("last report returned status %v, want STOPPED", r.body["status"])
	}
	got := f.get("viewer", f.jobURL(j))
	if got.body["job_status"] != "STOPPED" {
		t.Errorf("job status after the last report = %v, want STOPPED", got.body["job_status"])
	}
	if got.body["item_count"] != float64(12) {
		t.Errorf("item_count after the last report = %v, want 12", got.body["item_count"])
	}
	r = f.form("developer", http.MethodPatch, f.jobURL(j), url.Values{"status": {"COMPLETED"}})
	if r.status != http.StatusBadRequest || r.body["error"] != "Job is stopped" {
		t.Errorf("user completes a stopped job: %d %s, want 400 Job is stopped", r.status, r.raw)
	}
}

func TestJobStatusRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.claimedJob()
	other := f.job()

	r := f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"RUNNING"}, "lifespan": {"0:00:00"}, "item_count": {"0"}, "proxy_usage_data": {"{}"}})
	expectStatus(t, r, http.StatusOK, "job reports RUNNING")
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(other), url.Values{"status": {"RUNNING"}}), http.StatusForbidden, "job token on another job")
	expectStatus(t, f.get("job", "/api/projects"), http.StatusForbidden, "job token lists projects")
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"STOPPED"}}), http.StatusBadRequest, "job stops itself")
	expectStatus(t, f.form("developer", http.MethodPatch, f.jobURL(j), url.Values{"status": {"COMPLETED"}}), http.StatusBadRequest, "user completes job")
	expectField(t, f.form("developer", http.MethodPatch, f.jobURL(j), url.Values{"item_count": {"5"}}), "item_count", "user sets counters")
	expectField(t, f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"lifespan": {"soon"}}), "lifespan", "bad lifespan")

	r = f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"COMPLETED"}, "lifespan": {"1 day, 0:00:05"},
		"item_count": {"12"}, "request_count": {"3"}, "total_response_bytes": {"4096"}, "proxy_usage_data": {`{"proxy_name": "", "bytes": 0}`}})
	expectStatus(t, r, http.StatusOK, "job reports COMPLETED")
	if r.body["lifespan"] != "1 00:00:05" || r.body["item_count"] != float64(12) || r.body["status"] != "COMPLETED" {
		t.Errorf("completed job %s, want lifespan 1 00:00:05 and 12 items", r.raw)
	}
	expectStatus(t, f.form("job", http.MethodPatch, f.jobURL(j), url.Values{"status": {"RUNNING"}}), http.StatusUnauthorized, "token of an ended job")

	r = f.do("developer", http.MethodPut, f.jobURL(other)+"/stop", "", nil)
	if r.status != http.StatusOK || r.body["status"] != "STOPPED" {
		t.Errorf("stop queued job: %d %s, want 200 STOPPED", r.status, r.raw)
	}
	r = f.json("developer", http.MethodPatch, f.jobURL(other), map[string]string{"status": "RUNNING"})
	if r.status != http.StatusBadRequest || r.body["error"] != "Job is stopped" {
		t.Errorf("change stopped job: %d %s, want 400 Job is stopped", r.status, r.raw)
	}
	r = f.json("developer", http.MethodPatch, f.jobURL(other), map[string]any{"data_status": "PERSISTENT"})
	if r.status != http.StatusOK || r.body["data_status"] != "PERSISTENT" {
		t.Errorf("make job persistent: %d %s, want 200 PERSISTENT", r.status, r.raw)
	}
}

// jobWithToken creates a job and lets the fixture act as it under the name "job".
func (f *fixture) jobWithToken(t *testing.T) *store.Job {
	t.Helper()
	j := f.job()
	token, err := f.st.CreateJobToken(context.Background(), j.JID)
	if err != nil {
		t.Fatal(err)
	}
	f.tokens["job"] = token
	return j
}

func TestIngest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.jobWithToken(t)
	batch := map[string]any{"type": "items", "batch_id": "b-1", "records": []any{map[string]any{"n": 1}, map[string]any{"n": 2}}}

	r := f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", batch)
	if r.status != http.StatusCreated || r.body["stored"] != float64(2) || r.body["duplicate"] != false {
		t.Errorf("first batch: %d %s, want 201 stored 2", r.status, r.raw)
	}
	r = f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", batch)
	if r.status != http.StatusOK || r.body["duplicate"] != true {
		t.Errorf("same batch again: %d %s, want 200 duplicate", r.status, r.raw)
	}
	items := f.get("viewer", f.jobURL(j)+"/data?type=items")
	if items.body["count"] != float64(2) {
		t.Errorf("items after a re-sent batch: %s, want count 2", items.raw)
	}
	expectStatus(t, f.json("developer", http.MethodPost, f.jobURL(j)+"/ingest", batch), http.StatusForbidden, "user token ingests")
	expectField(t, f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", map[string]any{"type": "pictures", "batch_id": "b-2", "records": []any{map[string]any{}}}), "type", "unknown type")
	expectField(t, f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", map[string]any{"type": "items", "batch_id": "b-3", "records": []any{1}}), "records", "record not an object")
	expectField(t, f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", map[string]any{"type": "items", "records": []any{map[string]any{}}}), "batch_id", "no batch id")
	// Stats batches share the ledger: a batch id already sent is a duplicate, whatever its type.
	stats := map[string]any{"type": "stats", "batch_id": "st-1", "records": []any{map[string]any{"item_scraped_count": 2}}}
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		if r := f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", stats); r.status != want {
			t.Errorf("stats batch, sending %d: %d %s, want %d", i+1, r.status, r.raw, want)
		}
	}
	stats["batch_id"] = "b-1"
	if r := f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", stats); r.status != http.StatusOK || r.body["duplicate"] != true {
		t.Errorf("stats batch with an items batch's id: %d %s, want 200 duplicate", r.status, r.raw)
	}
	r = f.do("job", http.MethodPost, f.jobURL(j)+"/ingest", "application/json", strings.NewReader(`{"type": "stats", "batch_id": "st-2", "records": [{"x": 1\}]}`))
	expectField(t, r, "records", "malformed stats")
	if !strings.Contains(r.raw, "Expected a JSON array of objects: invalid character") {
		t.Errorf("malformed stats: %s, want the JSON error named", r.raw)
	}
	big := map[string]any{"type": "items", "batch_id": "b-4", "records": []any{map[string]any{"x": strings.Repeat("a", 70<<10)}}}
	expectStatus(t, f.json("job", http.MethodPost, f.jobURL(j)+"/ingest", big), http.StatusRequestEntityTooLarge, "batch over the limit")
}

// The ingest body is read without a JSON decoder, so malformed bodies must still get a 400
// that names the problem, and store nothing.
func TestIngestMalformedBodies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.jobWithToken(t)
	post := func(body string) response {
		return f.do("job", http.MethodPost, f.jobURL(j)+"/ingest", "application/json", strings.NewReader(body))
	}
	for _, tt := range []struct {
		name, body, field, says string
	}{
		{"invalid JSON inside a record", `{"type": "items", "batch_id": "b-1", "records": [{"a": 1}, {"a": x}]}`, "records", "Record 1 is not valid JSON"},
		{"raw newline inside a string", "{\"type\": \"items\", \"batch_id\": \"b-1\", \"records\": [{\"a\": \"line\nbreak\"}]}", "records", "control character"},
		{"records without a comma", `{"type": "items", "batch_id": "b-1", "records": [{"a": 1} {"a": 2}]}`, "records", "Expected ',' or ']' after record 0."},
		// COPY would read these backslashes as escapes and store {"a":1} and {"a":"x"}.
		{"backslash after a value", `{"type": "items", "batch_id": "b-1", "records": [{"a":1\}]}`, "records", "Record 0: a backslash outside a string."},
		{"backslash before a quote", `{"type": "items", "batch_id": "b-1", "records": [{"a":\"x"}]}`, "records", "Record 0: a backslash outside a string."},
		{"invalid JSON in another key", `{"type": "items", "batch_id": "b-1", "records": [{}], "extra": [tru]}`, "", "extra: the value is not valid JSON"},
		{"invalid records given before valid ones", `{"type": "items", "batch_id": "b-1", "records": [{"a": tru}], "records": [{}]}`, "", "records: the first of two values is not valid JSON"},
		{"unclosed records", `{"type": "items", "batch_id": "b-1", "records": [{"a": "x}]}`, "", "records: the string at byte 55 is not closed"},
		{"no type", `{"batch_id": "b-1", "records": [{}]}`, "type", "A data type is required"},
		{"NUL in the batch id", `{"type": "items", "batch_id": "b\u0000-1", "records": [{}]}`, "batch_id", "may not contain control characters"},
		{"lone surrogate in the batch id", `{"type": "items", "batch_id": "x\ud800", "records": [{}]}`, "batch_id", "may not contain a lone surrogate"},
		{"stats with a record that is not an object", `{"type": "stats", "batch_id": "st-9", "records": [{"a": 1}, null, {"b": 2}]}`, "records", "Record 1 is not a JSON object."},
		{"batch id of 101 characters", `{"type": "items", "batch_id": "` + strings.Repeat("é", 101) + `", "records": [{}]}`, "batch_id", "1 to 100 characters"},
		{"empty records", `{"type": "items", "batch_id": "b-1", "records": []}`, "records", "A batch needs at least one record."},
		{"mismatched brackets", `{"type": "items", "batch_id": "b-1", "records": [{"a": [1}]}`, "", "JSON parse error"},
		{"type not a string", `{"type": 1, "batch_id": "b-1", "records": [{}]}`, "", "type must be a string"},
		{"truncated body", `{"type": "items", "batch_id": "b-1", "records": [{"a": 1}`, "", "is not closed"},
		{"data after the object", `{"type": "items", "batch_id": "b-1", "records": [{}]} {}`, "", "unexpected data after the object"},
		{"not an object", `[{"a": 1}]`, "", "expected a JSON object"},
	} {
		r := post(tt.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.raw, tt.says) {
			t.Errorf("%s: %d %s, want 400 saying %q", tt.name, r.status, r.raw, tt.says)
		}
		if tt.field != "" {
			expectField(t, r, tt.field, tt.name)
		}
	}

	// 100 characters of two bytes each make a valid batch id.
	r := post(`{"type": "logs", "batch_id": "` + strings.Repeat("é", 100) + `", "records": [{"message": "x"}]}`)
	if r.status != http.StatusCreated {
		t.Errorf("batch id of 100 two-byte characters: %d %s, want 201", r.status, r.raw)
	}

	// Keys in any order, escapes in keys and values; the batch id of a rejected batch is free.
	r = post(`{"records": [{"q": "a \"quoted\" \\ word"}, {"n": 2}], "batch_\u0069d": "b-1", "type": "items"}`)
	if r.status != http.StatusCreated || r.body["stored"] != float64(2) {
		t.Fatalf("batch with keys in another order: %d %s, want 201 stored 2", r.status, r.raw)
	}
	items := f.get("viewer", f.jobURL(j)+"/data?type=items")
	if items.body["count"] != float64(2) || !strings.Contains(items.raw, `a \"quoted\" \\ word`) {
		t.Errorf("items after the rejected batches: %s, want the 2 of the accepted batch, escapes kept", items.raw)
	}
}

func TestDeployUploadRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	deploys := "/api/projects/" + f.p + "/deploys"

	expectField(t, f.json("developer", http.MethodPost, deploys, map[string]any{}), "project_zip", "no file")
	traversal := upload(t, map[string]string{"scrapy.cfg": "", "../escape.py": "x"})
	r := f.do("developer", http.MethodPost, deploys, traversal.contentType, traversal.body)
	expectField(t, r, "project_zip", "path traversal")
	if !strings.Contains(r.raw, "leaves the project folder") {
		t.Errorf("traversal answer %s does not say what is wrong", r.raw)
	}
	large := upload(t, map[string]string{"scrapy.cfg": randomText(200 << 10)})
	expectField(t, f.do("developer", http.MethodPost, deploys, large.contentType, large.body), "project_zip", "archive over the limit")
	if list := f.get("developer", deploys); list.body["count"] != float64(1) {
		t.Errorf("deploys after rejected uploads: %s, want only the fixture's one", list.raw)
	}
	expectStatus(t, f.do("viewer", http.MethodPost, deploys, traversal.contentType, traversal.body), http.StatusForbidden, "viewer deploys")
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		origin string
		want   string
	}{{"http://web.example", "http://web.example"}, {"http://evil.example", ""}} {
		req, _ := http.NewRequest(http.MethodOptions, f.srv.URL+"/api/projects", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("preflight from %s: Allow-Origin %q, want %q", tt.origin, got, tt.want)
		}
		if tt.want != "" && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight from %s: Allow-Headers %q lacks Authorization", tt.origin, resp.Header.Get("Access-Control-Allow-Headers"))
		}
	}
}

type multipartBody struct {
	body        io.Reader
	contentType string
}

func upload(t *testing.T, files map[string]string) multipartBody {
	t.Helper()
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
	}
	zw.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("project_zip", "project.zip")
	_, _ = part.Write(zipped.Bytes())
	mw.Close()
	return multipartBody{bytes.NewReader(body.Bytes()), mw.FormDataContentType()}
}

// randomText returns n bytes that do not compress, so the zip stays as large as its content.
func randomText(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

// A user's stop that races with the worker's claim stops the job at its new status, where it
// returned a conflict.
func TestStopRacingClaim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	read := f.job()
	if _, err := f.st.ClaimJob(ctx, read.JID); err != nil {
		t.Fatal(err)
	}
	srv := api.New(f.st, nil, nil, nil, nil, api.Options{}, hclog.NewNullLogger())

	stopped, err := srv.StopAsUser(ctx, read)
	if err != nil {
		t.Fatalf("stop from IN_QUEUE after the claim: %v", err)
	}
	if stopped.Status != store.JobStopped {
		t.Errorf("job after the stop is %s, want STOPPED", stopped.Status)
	}

	again, err := srv.StopAsUser(ctx, read)
	if err != nil || again.Status != store.JobStopped {
		t.Errorf("second stop from the stale job = %v, %v; want the STOPPED job", again, err)
	}
}

// A JSON body is one object: text after it is rejected, where it was ignored.
func TestJSONBodyTrailingData(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	jobs := fmt.Sprintf("/api/projects/%s/spiders/%d/jobs", f.p, f.pSpider)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"one object and a newline", "{}\n", http.StatusCreated},
		{"text after the object", "{} xyz", http.StatusBadRequest},
		{"two objects", `{} {"data_status": "PENDING"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		r := f.do("developer", http.MethodPost, jobs, "application/json", strings.NewReader(tt.body))
		if r.status != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, r.status, r.raw, tt.want)
		}
		if tt.want == http.StatusBadRequest && !strings.Contains(r.raw, "extra data after the JSON object") {
			t.Errorf("%s: body %s, want it to name the extra data", tt.name, r.raw)
		}
	}
	if _, total, err := f.st.ListJobs(context.Background(), f.p, f.pSpider, store.JobFilter{}, store.Page{Limit: 10}); err != nil || total != 1 {
		t.Errorf("spider has %d jobs (%v), want only the valid request's", total, err)
	}
}

// A check that hangs, as that of a stopped plugin does, gets its own 5 seconds and leaves the
// others theirs.
func TestHealthCheckThatHangs(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	srv := api.New(st, nil, nil, nil, nil, api.Options{Health: map[string]api.HealthCheck{
		"engine": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"redis": func(ctx context.Context) error {
			time.Sleep(100 * time.Millisecond)
			return ctx.Err()
		},
	}}, hclog.NewNullLogger())
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	start := time.Now()
	resp, err := http.Get(ts.URL + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Healthy bool              `json:"healthy"`
		Checks  map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Checks["redis"] != "ok" || !strings.HasPrefix(body.Checks["engine"], "unhealthy") {
		t.Errorf("health with a hanging engine check = %d %+v, want 503 with redis ok and engine unhealthy", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the health check took %s, want about 5 s", took.Round(time.Millisecond))
	}
}
