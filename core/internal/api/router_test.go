package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// routeTag writes the route's position in the table and the path variables it reads.
func routeTag(i int, names []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var vars []string
		for _, name := range names {
			vars = append(vars, name+"="+r.PathValue(name))
		}
		fmt.Fprintf(w, "%d %s", i, strings.Join(vars, " "))
	})
}

func statusHandler(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

var varSegment = regexp.MustCompile(`\{([a-z]+):[^}]+\}`)

// samplePath fills each variable of a route path with a value its expression accepts.
func samplePath(pattern string) (string, []string, []string) {
	var names, values []string
	p := varSegment.ReplaceAllStringFunc(pattern, func(seg string) string {
		name := varSegment.FindStringSubmatch(seg)[1]
		value := fmt.Sprintf("%d", 10+len(names))
		switch name {
		case "pid":
			value = "0f8e4b6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
		case "username":
			value = "ana.lima"
		}
		names = append(names, name)
		values = append(values, name+"="+value)
		return value
	})
	return p, names, values
}

// serve sends method path to h and returns the recorded reply.
func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestRouterFindsEveryTableRoute(t *testing.T) {
	t.Parallel()
	table := (&Server{}).table()
	r := &router{notFound: statusHandler(http.StatusNotFound), methodNotAllowed: statusHandler(http.StatusMethodNotAllowed)}
	for i, rt := range table {
		_, names, _ := samplePath(rt.path)
		if err := r.handle(rt.method, rt.path, routeTag(i, names)); err != nil {
			t.Fatal(err)
		}
	}
	for i, rt := range table {
		path, _, values := samplePath(rt.path)
		want := fmt.Sprintf("%d %s", i, strings.Join(values, " "))
		if got := serve(r, rt.method, path); got.Code != http.StatusOK || got.Body.String() != want {
			t.Errorf("%s %s = %d %q, want the route %q", rt.method, path, got.Code, got.Body.String(), want)
		}
		if rt.method == http.MethodGet {
			if got := serve(r, http.MethodHead, path); got.Code != http.StatusOK || !strings.HasPrefix(got.Body.String(), fmt.Sprint(i, " ")) {
				t.Errorf("HEAD %s = %d %q, want the GET route %d", path, got.Code, got.Body.String(), i)
			}
		}
	}
}

func TestRouterUnknownPathsAndMethods(t *testing.T) {
	t.Parallel()
	r := &router{notFound: statusHandler(http.StatusNotFound), methodNotAllowed: statusHandler(http.StatusMethodNotAllowed)}
	for _, line := range []struct{ method, pattern string }{
		{http.MethodGet, "/api/projects/{pid:[0-9a-zA-Z-]+}/spiders/{sid:[0-9]+}/jobs"},
		{http.MethodPost, "/api/projects/{pid:[0-9a-zA-Z-]+}/spiders/{sid:[0-9]+}/jobs"},
		{http.MethodGet, "/api/projects/{pid:[0-9a-zA-Z-]+}"},
		{http.MethodDelete, "/api/projects/{pid:[0-9a-zA-Z-]+}"},
	} {
		if err := r.handle(line.method, line.pattern, statusHandler(http.StatusOK)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodGet, "/api/projects/p-1/spiders/7/jobs", http.StatusOK, ""},
		{http.MethodGet, "/api/projects/p-1/spiders/abc/jobs", http.StatusNotFound, ""},
		{http.MethodGet, "/api/projects/p_1", http.StatusNotFound, ""},
		{http.MethodGet, "/api/projects/p-1/spiders/7", http.StatusNotFound, ""},
		{http.MethodGet, "/api/projects/p-1/spiders/7/jobs/", http.StatusNotFound, ""},
		{http.MethodGet, "/api/projects/", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodPut, "/api/projects/p-1/spiders/7/jobs", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPatch, "/api/projects/p-1", http.StatusMethodNotAllowed, "DELETE, GET, HEAD"},
	}
	for _, tt := range tests {
		got := serve(r, tt.method, tt.path)
		if got.Code != tt.code || got.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d with Allow %q, want %d with Allow %q", tt.method, tt.path, got.Code, got.Header().Get("Allow"), tt.code, tt.allow)
		}
	}
}

func TestRouterRedirectsUncleanPaths(t *testing.T) {
	t.Parallel()
	r := &router{notFound: statusHandler(http.StatusNotFound), methodNotAllowed: statusHandler(http.StatusMethodNotAllowed)}
	if err := r.handle(http.MethodGet, "/api/projects", statusHandler(http.StatusOK)); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/api//projects?page=2":          "/api/projects?page=2",
		"/api/./projects":                "/api/projects",
		"/api/jobs/../projects?search=a": "/api/projects?search=a",
		"/api//projects/":                "/api/projects/",
	} {
		got := serve(r, http.MethodGet, path)
		if got.Code != http.StatusMovedPermanently || got.Header().Get("Location") != want {
			t.Errorf("GET %s = %d to %q, want 301 to %q", path, got.Code, got.Header().Get("Location"), want)
		}
	}
	// Clients send a GET after a 301, so other methods get a 308.
	for method, want := range map[string]int{http.MethodHead: http.StatusMovedPermanently, http.MethodPost: http.StatusPermanentRedirect, http.MethodDelete: http.StatusPermanentRedirect} {
		got := serve(r, method, "//api/projects")
		if got.Code != want || got.Header().Get("Location") != "/api/projects" {
			t.Errorf("%s //api/projects = %d to %q, want %d to /api/projects", method, got.Code, got.Header().Get("Location"), want)
		}
	}
}

func TestRouterLiteralsBeforeVariables(t *testing.T) {
	t.Parallel()
	r := &router{notFound: statusHandler(http.StatusNotFound), methodNotAllowed: statusHandler(http.StatusMethodNotAllowed)}
	for i, pattern := range []string{
		"/users/{name:[^/]+}/keys",
		"/users/me",
		"/users/me/settings",
		"/users/{id:[0-9]+}",
		"/users/{name:[a-z]+x}",
	} {
		if err := r.handle(http.MethodGet, pattern, routeTag(i, []string{"name", "id"})); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		"/users/me":          "1 name= id=",
		"/users/me/settings": "2 name= id=",
		// The literal "me" leads nowhere for keys: the variable gets the segment.
		"/users/me/keys": "0 name=me id=",
		"/users/42":      "3 name= id=42",
		// An expression outside the shared ones goes through the regexp package.
		"/users/box": "4 name=box id=",
	} {
		if got := serve(r, http.MethodGet, path); got.Code != http.StatusOK || got.Body.String() != want {
			t.Errorf("GET %s = %d %q, want %q", path, got.Code, got.Body.String(), want)
		}
	}
	if got := serve(r, http.MethodGet, "/users/boxy"); got.Code != http.StatusNotFound {
		t.Errorf("GET /users/boxy = %d, want 404: {name:[a-z]+x} must match the whole segment", got.Code)
	}

	// A literal route for other methods does not hide a variable's route for this one.
	if err := r.handle(http.MethodDelete, "/users/{name:[^/]+}", routeTag(5, []string{"name"})); err != nil {
		t.Fatal(err)
	}
	if got := serve(r, http.MethodDelete, "/users/me"); got.Code != http.StatusOK || got.Body.String() != "5 name=me" {
		t.Errorf("DELETE /users/me = %d %q, want the variable's DELETE route", got.Code, got.Body.String())
	}
	// The Allow header of a 405 names the methods of every route that matches.
	got := serve(r, http.MethodPut, "/users/me")
	if got.Code != http.StatusMethodNotAllowed || got.Header().Get("Allow") != "DELETE, GET, HEAD" {
		t.Errorf("PUT /users/me = %d with Allow %q, want 405 with Allow \"DELETE, GET, HEAD\"", got.Code, got.Header().Get("Allow"))
	}
}

func TestRouterRejectsBadRoutes(t *testing.T) {
	t.Parallel()
	r := &router{}
	if err := r.handle(http.MethodGet, "/a/{id:[0-9]+}", statusHandler(http.StatusOK)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, pattern, want string }{
		{http.MethodGet, "/a/{id:[0-9]+}", "defined twice"},
		{http.MethodHead, "/a/{id:[0-9]+}", "defined twice"},
		{http.MethodGet, "a", "must start with /"},
		{http.MethodGet, "/b/{id}", "not of the form"},
		{http.MethodGet, "/b/{id:[0-9]+", "not of the form"},
		{http.MethodGet, "/b/{id:[0-9}", "missing closing ]"},
	} {
		err := r.handle(tt.method, tt.pattern, statusHandler(http.StatusOK))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("handle(%s %s) = %v, want an error with %q", tt.method, tt.pattern, err, tt.want)
		}
	}
}

// BenchmarkRouterJobList measures finding the job list's route, the one the job list
// benchmark calls, through the whole table.
func BenchmarkRouterJobList(b *testing.B) {
	r := (&Server{}).routes()
	req := httptest.NewRequest(http.MethodGet, "/api/projects/0f8e4b6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/spiders/12/jobs?page=3&page_size=50", nil)
	rt, ok := r.(*router)
	if !ok {
		b.Fatalf("routes() returned a %T", r)
	}
	for b.Loop() {
		var buf [4]pathVar
		if n, _ := rt.root.find(req.URL.Path[1:], http.MethodGet, buf[:0]); n == nil {
			b.Fatal("no route for the job list")
		}
	}
}
