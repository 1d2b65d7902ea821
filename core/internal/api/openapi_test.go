package api_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/api"
)

var updateDocs = flag.Bool("update-docs", false, "write docs/api.yaml from the route table")

// docs/api.yaml is generated from the route table; this test fails when code and document
// drift apart. Regenerate it with `make docs`.
func TestOpenAPIDocumentUpToDate(t *testing.T) {
	t.Parallel()
	srv := api.New(nil, nil, nil, nil, nil, api.Options{}, hclog.NewNullLogger())
	got, err := srv.OpenAPIYAML()
	if err != nil {
		t.Fatalf("generate document: %v", err)
	}
	const path = "../../../docs/api.yaml"
	if *updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v; run `make docs`", path, err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("docs/api.yaml differs from the route table; run `make docs` and commit the result")
	}
}

func TestOpenAPIDocumentShape(t *testing.T) {
	t.Parallel()
	doc := api.New(nil, nil, nil, nil, nil, api.Options{}, hclog.NewNullLogger()).OpenAPI()
	paths := doc["paths"].(map[string]map[string]any)
	login := paths["/api/auth/login"]["post"].(map[string]any)
	if sec := login["security"].([]any); len(sec) != 0 {
		t.Errorf("login security = %v, want none", sec)
	}
	job := paths["/api/projects/{pid}/spiders/{sid}/jobs/{jid}"]["get"].(map[string]any)
	sec := job["security"].([]any)
	if len(sec) != 1 || sec[0].(map[string]any)["TokenAuth"] == nil {
		t.Errorf("job detail security = %v, want TokenAuth", sec)
	}
	scheme := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)["TokenAuth"].(map[string]any)
	if scheme["type"] != "apiKey" || scheme["in"] != "header" || scheme["name"] != "Authorization" {
		t.Errorf("TokenAuth = %v, want an apiKey in the Authorization header", scheme)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	create := schemas["ProjectCreateRequest"].(map[string]any)
	if req := create["required"].([]string); len(req) != 1 || req[0] != "name" {
		t.Errorf("ProjectCreateRequest required = %v, want [name]", req)
	}
	if _, ok := schemas["JobPage"]; !ok {
		t.Errorf("schemas lack JobPage: %v", keys(schemas))
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The document must be valid OpenAPI 3, checked by an independent implementation.
func TestOpenAPIDocumentValid(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../docs/api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("load docs/api.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("docs/api.yaml is not valid OpenAPI 3: %v", err)
	}
}
