package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestUpdateProject(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := "/api/projects/" + f.p

	expectStatus(t, f.json("viewer", http.MethodPatch, path, map[string]any{"name": "x"}), http.StatusForbidden, "viewer renames")
	r := f.json("developer", http.MethodPatch, path, map[string]any{"name": "shop2", "framework": "REQUESTS"})
	if r.status != http.StatusOK || r.body["name"] != "shop2" || r.body["framework"] != "REQUESTS" {
		t.Errorf("rename: %d %s", r.status, r.raw)
	}
	expectField(t, f.json("developer", http.MethodPatch, path, map[string]any{"framework": "SELENIUM"}), "framework", "unknown framework")

	r = f.json("developer", http.MethodPut, path, map[string]any{"env_vars": []any{
		map[string]any{"name": "TOKEN", "value": "s3cret", "masked": true}, map[string]any{"name": "MODE", "value": "fast"}}})
	if r.status != http.StatusOK || strings.Contains(r.raw, "s3cret") {
		t.Errorf("set env vars: %d %s, want 200 without the masked value", r.status, r.raw)
	}
	r = f.json("developer", http.MethodPut, path, map[string]any{"env_vars": []any{
		map[string]any{"name": "TOKEN", "value": "__MASKED__", "masked": true}}})
	expectStatus(t, r, http.StatusOK, "keep masked value, drop MODE")
	vars := r.body["env_vars"].([]any)
	if len(vars) != 1 || vars[0].(map[string]any)["name"] != "TOKEN" || vars[0].(map[string]any)["value"] != nil {
		t.Errorf("env vars after sync: %v, want TOKEN alone, masked", vars)
	}
	expectField(t, f.json("developer", http.MethodPut, path, map[string]any{"env_vars": []any{
		map[string]any{"name": "NEW", "value": "__MASKED__", "masked": true}}}), "env_vars", "placeholder for an unknown variable")

	r = f.json("owner", http.MethodPatch, path, map[string]any{"data_status": "PENDING", "data_expiry_days": 7, "apply_to_existing_spiders": true})
	expectStatus(t, r, http.StatusOK, "project data persistence")
	spider := f.get("owner", fmt.Sprintf("%s/spiders/%d", path, f.pSpider))
	if spider.body["data_status"] != "PENDING" || spider.body["data_expiry_days"] != float64(7) {
		t.Errorf("spider after apply_to_existing_spiders: %s", spider.raw)
	}
	r = f.json("developer", http.MethodPatch, fmt.Sprintf("%s/spiders/%d", path, f.pSpider), map[string]any{"data_status": "PERSISTENT"})
	if r.status != http.StatusOK || r.body["data_status"] != "PERSISTENT" {
		t.Errorf("make spider persistent: %d %s", r.status, r.raw)
	}
}

func TestProjectMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := "/api/projects/" + f.p
	member := func(email, action, role string) map[string]any {
		return map[string]any{"email": email, "action": action, "permission": role}
	}

	expectStatus(t, f.json("developer", http.MethodPatch, path, member("outsider@example.com", "add", "VIEWER")), http.StatusForbidden, "developer adds a member")
	expectField(t, f.json("owner", http.MethodPatch, path, member("outsider@example.com", "add", "OWNER")), "permission", "add a second owner")
	expectField(t, f.json("owner", http.MethodPatch, path, map[string]any{"email": "outsider@example.com"}), "action", "member change without action")
	// A blank email would match every user without one.
	for _, email := range []string{"", "  "} {
		expectField(t, f.json("owner", http.MethodPatch, path, member(email, "add", "VIEWER")), "email", fmt.Sprintf("add email %q", email))
		expectField(t, f.json("owner", http.MethodPatch, path, map[string]any{"email": email, "action": "remove"}), "email", fmt.Sprintf("remove email %q", email))
	}
	r := f.json("owner", http.MethodPatch, path, member("nobody@example.com", "add", "VIEWER"))
	if r.status != http.StatusNotFound || r.body["email"] != "User does not exist." {
		t.Errorf("add unknown user: %d %s", r.status, r.raw)
	}
	expectStatus(t, f.json("owner", http.MethodPatch, path, member("outsider@example.com", "add", "ADMIN")), http.StatusOK, "owner adds an admin")
	expectStatus(t, f.get("outsider", path), http.StatusOK, "new admin reads the project")
	expectStatus(t, f.json("outsider", http.MethodPatch, path, member("viewer@example.com", "update", "DEVELOPER")), http.StatusOK, "admin promotes a viewer")
	r = f.json("outsider", http.MethodPatch, path, member("owner@example.com", "update", "VIEWER"))
	if r.status != http.StatusBadRequest || r.body["error"] != "You cannot modify the permissions of an owner user." {
		t.Errorf("admin demotes the owner: %d %s", r.status, r.raw)
	}
	expectStatus(t, f.json("outsider", http.MethodPatch, path, member("viewer@example.com", "update", "OWNER")), http.StatusForbidden, "admin transfers ownership")
	expectStatus(t, f.json("owner", http.MethodPatch, path, member("outsider@example.com", "update", "OWNER")), http.StatusOK, "owner transfers ownership")
	roles := map[string]string{}
	for _, u := range f.get("owner", path).body["users"].([]any) {
		m := u.(map[string]any)
		roles[m["user"].(map[string]any)["username"].(string)] = m["permission"].(string)
	}
	if roles["outsider"] != "OWNER" || roles["owner"] != "ADMIN" || roles["viewer"] != "DEVELOPER" {
		t.Errorf("roles after the transfer: %v", roles)
	}
	expectStatus(t, f.do("owner", http.MethodDelete, path, "", nil), http.StatusForbidden, "former owner deletes")
	expectStatus(t, f.do("outsider", http.MethodDelete, path, "", nil), http.StatusNoContent, "new owner deletes")
	expectStatus(t, f.get("outsider", path), http.StatusNotFound, "deleted project")
}

func TestProjectJobsList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := 0; i < 3; i++ {
		f.job()
	}
	path := "/api/projects/" + f.p + "/jobs"
	r := f.get("viewer", path+"?page_size=2")
	if results, _ := r.body["results"].([]any); r.status != http.StatusOK || r.body["count"] != float64(3) || len(results) != 2 {
		t.Errorf("project jobs: %d %s, want 2 of 3", r.status, r.raw)
	}
	if _, hasNext := r.body["next"]; hasNext {
		t.Errorf("project jobs envelope has next; estela's is {results, count}")
	}
	expectField(t, f.get("viewer", path+"?page_size=101"), "page_size", "page_size over 100")
	expectField(t, f.get("viewer", path+"?page=x"), "page", "page=x")
}

func TestActivitiesRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := "/api/projects/" + f.p
	expectStatus(t, f.json("owner", http.MethodPatch, path, map[string]any{"name": "renamed"}), http.StatusOK, "rename")
	job := f.json("developer", http.MethodPost, fmt.Sprintf("%s/spiders/%d/jobs", path, f.pSpider), map[string]any{"data_status": "PERSISTENT"})
	expectStatus(t, job, http.StatusCreated, "run a job")
	expectStatus(t, f.json("owner", http.MethodPatch, path, map[string]any{"email": "outsider@example.com", "action": "add", "permission": "VIEWER"}), http.StatusOK, "add a member")

	r := f.get("viewer", path+"/activities?page_size=10")
	var got []string
	for _, a := range r.body["results"].([]any) {
		got = append(got, a.(map[string]any)["description"].(string))
	}
	want := []string{
		"added user outsider@example.com with role VIEWER.",
		fmt.Sprintf("run Job-%v for spider quotes.", job.body["jid"]),
		fmt.Sprintf("renamed project shop (%s) to renamed.", f.p),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("activities, newest first:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadInputRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	j := f.job()
	path := "/api/projects/" + f.p

	expectField(t, f.json("owner", http.MethodPatch, path, map[string]any{"name": "  "}), "name", "blank project name")
	expectField(t, f.json("owner", http.MethodPatch, path, map[string]any{"env_vars": []any{map[string]any{"name": "A B", "value": "x"}}}), "env_vars", "env var name with a space")
	expectField(t, f.json("owner", http.MethodPatch, fmt.Sprintf("%s/spiders/%d", path, f.pSpider), map[string]any{"env_vars": []any{map[string]any{"name": "1BAD", "value": "x"}}}), "env_vars", "spider env var name starting with a digit")
	expectField(t, f.json("developer", http.MethodPost, fmt.Sprintf("%s/spiders/%d/jobs", path, f.pSpider), map[string]any{"env_vars": []any{map[string]any{"name": "X=Y", "value": "x"}}}), "env_vars", "job env var name with =")
	expectField(t, f.do("developer", http.MethodPost, f.jobURL(j)+"/data/delete", "", nil), "type", "data delete without type")
	expectField(t, f.get("viewer", f.jobURL(j)+"/data?type=logs&level=LOUD"), "level", "unknown log level")
	big := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	expectStatus(t, f.do("owner", http.MethodPost, "/api/projects", "application/json", strings.NewReader(big)), http.StatusRequestEntityTooLarge, "body over the limit")
}
