package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/api"
)

// fillPath puts ids into a route's path variables.
func fillPath(path string, ids map[string]string) string {
	for name, id := range ids {
		path = strings.ReplaceAll(path, "{"+name+"}", id)
	}
	return path
}

// Every route of the table, checked the same way: token routes reject a missing token, project
// routes reject a user without a role on the project, nested ids under another project are
// not found, and nothing answers 500.
func TestEveryRouteGuarded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.job()
	d := f.buildingDeploy()
	routes := api.New(nil, nil, nil, nil, nil, api.Options{}, hclog.NewNullLogger()).RoutesForTest()
	own := map[string]string{"pid": f.p, "sid": fmt.Sprint(f.pSpider), "jid": fmt.Sprint(j.JID), "did": fmt.Sprint(d.DID),
		"cjid": "1", "nid": "1", "proxyid": "1", "username": "owner"}
	foreign := map[string]string{}
	for k, v := range own {
		foreign[k] = v
	}
	foreign["pid"] = f.q

	if len(routes) < 60 {
		t.Fatalf("the route table has %d routes; the estela API has more than 60", len(routes))
	}
	checked := 0
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		path := fillPath(rt.Path, own)
		if rt.NeedsToken {
			r := f.do("", rt.Method, path, "application/json", strings.NewReader("{}"))
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d, want 401", name, r.status)
			}
		}
		if !strings.HasPrefix(rt.Path, "/api/projects/{pid}") && !strings.HasPrefix(rt.Path, "/api/stats/{pid}") {
			continue
		}
		r := f.do("outsider", rt.Method, path, "application/json", strings.NewReader("{}"))
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("%s by a user without a role: %d, want 403 or 404: %s", name, r.status, r.raw)
		}
		checked++
		if strings.Contains(rt.Path, "{sid}") || strings.Contains(rt.Path, "{did}") {
			r = f.do("admin", rt.Method, fillPath(rt.Path, foreign), "application/json", strings.NewReader("{}"))
			if r.status != http.StatusNotFound {
				t.Errorf("%s with ids of another project: %d, want 404: %s", name, r.status, r.raw)
			}
		}
		r = f.do("admin", rt.Method, fillPath(rt.Path, map[string]string{"pid": "not-a-uuid", "sid": "0", "jid": "0", "did": "0", "cjid": "0"}), "application/json", strings.NewReader("{}"))
		if r.status >= 500 {
			t.Errorf("%s with malformed ids: %d, want a 4xx: %s", name, r.status, r.raw)
		}
	}
	t.Logf("%d routes, %d of them project-scoped", len(routes), checked)
}
