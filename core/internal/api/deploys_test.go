package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
)

func (f *fixture) buildingDeploy() *store.Deploy {
	f.t.Helper()
	d := &store.Deploy{ProjectID: f.p}
	if err := f.st.CreateDeploy(context.Background(), d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func TestReportDeploy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	d := f.buildingDeploy()
	other := f.buildingDeploy()
	token, err := f.st.CreateDeployToken(ctx, d.DID)
	if err != nil {
		t.Fatal(err)
	}
	f.tokens["build"] = token
	path := fmt.Sprintf("/api/projects/%s/deploys/%d", f.p, d.DID)

	expectStatus(t, f.json("owner", http.MethodPut, path, map[string]any{"status": "SUCCESS", "spiders_names": []string{"x"}}), http.StatusForbidden, "owner reports a build")
	expectStatus(t, f.json("build", http.MethodPut, fmt.Sprintf("/api/projects/%s/deploys/%d", f.p, other.DID), map[string]any{"status": "FAILURE"}), http.StatusForbidden, "token of another deploy")
	expectStatus(t, f.get("build", "/api/projects/"+f.p), http.StatusForbidden, "build token reads the project")
	expectField(t, f.json("build", http.MethodPut, path, map[string]any{"status": "SUCCESS"}), "spiders_names", "success without spiders")
	expectField(t, f.json("build", http.MethodPut, path, map[string]any{"status": "DONE"}), "status", "unknown status")

	r := f.form("build", http.MethodPut, path, url.Values{"status": {"SUCCESS"}, "spiders_names": {"quotes", "books"}})
	if r.status != http.StatusOK || r.body["status"] != "SUCCESS" {
		t.Fatalf("report success, form-encoded with repeated keys: %d %s", r.status, r.raw)
	}
	spiders := f.get("owner", "/api/projects/"+f.p+"/spiders")
	if spiders.body["count"] != float64(2) {
		t.Errorf("spiders after the report: %s, want quotes and books", spiders.raw)
	}
	expectStatus(t, f.json("build", http.MethodPut, path, map[string]any{"status": "FAILURE"}), http.StatusUnauthorized, "build token after the report")
	r = f.json("admin", http.MethodPut, path, map[string]any{"status": "FAILURE"})
	if r.status != http.StatusBadRequest || r.body["error"] != "The deploy has finished and its status cannot be changed." {
		t.Errorf("change a finished deploy: %d %s", r.status, r.raw)
	}
	expectStatus(t, f.json("admin", http.MethodPut, path, map[string]any{"status": "SUCCESS", "spiders_names": []string{"quotes"}}), http.StatusOK, "report the same status again")
}

func TestCancelAndDeleteDeploy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d := f.buildingDeploy()
	path := fmt.Sprintf("/api/projects/%s/deploys/%d", f.p, d.DID)

	expectStatus(t, f.do("viewer", http.MethodPost, path+"/cancel", "", nil), http.StatusForbidden, "viewer cancels")
	r := f.do("developer", http.MethodPost, path+"/cancel", "", nil)
	if r.status != http.StatusOK || r.body["status"] != "CANCELED" {
		t.Errorf("cancel: %d %s, want CANCELED", r.status, r.raw)
	}
	expectStatus(t, f.do("developer", http.MethodPost, path+"/cancel", "", nil), http.StatusOK, "cancel a canceled deploy again")
	done := f.buildingDeploy()
	if err := f.st.ReportDeploy(context.Background(), done.DID, store.DeploySuccess, []string{"quotes"}, ""); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, f.do("developer", http.MethodPost, fmt.Sprintf("/api/projects/%s/deploys/%d/cancel", f.p, done.DID), "", nil), http.StatusBadRequest, "cancel a finished deploy")
	logs := f.get("viewer", path+"/logs")
	if logs.status != http.StatusOK || logs.body["logs"] != "=== Deploy ===\ncanceled by a user" {
		t.Errorf("logs: %d %s", logs.status, logs.raw)
	}
	expectStatus(t, f.do("developer", http.MethodDelete, path, "", nil), http.StatusForbidden, "developer deletes a deploy")
	expectStatus(t, f.do("outsider", http.MethodDelete, path, "", nil), http.StatusForbidden, "outsider deletes a deploy")
	expectStatus(t, f.do("owner", http.MethodDelete, path, "", nil), http.StatusNoContent, "owner deletes a deploy")
	expectStatus(t, f.get("owner", path), http.StatusNotFound, "deleted deploy")
}
