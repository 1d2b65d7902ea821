package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"
)

// OpenAPI returns the OpenAPI 3 document of the API, made from the route table and the types
// of its request and response bodies.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{schemas: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range s.table() {
		path := openAPIPath(rt.path)
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rt.method)] = g.operation(rt)
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "estela-go API",
			"version":     "1",
			"description": "The estela HTTP API as estela-go serves it. Send `Authorization: Token <key>` with a key from POST /api/auth/login.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.schemas,
			"securitySchemes": map[string]any{
				"TokenAuth": map[string]any{
					"type": "apiKey", "in": "header", "name": "Authorization",
					"description": "The word Token, a space and the key: `Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b`.",
				},
			},
		},
	}
}

// OpenAPIYAML returns the document as YAML, with keys sorted so that it diffs well.
func (s *Server) OpenAPIYAML() ([]byte, error) {
	raw, err := json.Marshal(s.OpenAPI())
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(raw)
}

func (g *schemaGen) operation(rt route) map[string]any {
	d := rt.doc
	op := map[string]any{"summary": d.summary, "operationId": operationID(rt), "tags": []string{d.tag}}
	var params []any
	for _, name := range pathVariable.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, map[string]any{"name": name[1], "in": "path", "required": true, "schema": pathSchema(name[1])})
	}
	for _, q := range d.query {
		params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.description, "schema": q.schema})
	}
	if params != nil {
		op["parameters"] = params
	}
	if d.request != nil {
		op["requestBody"] = g.requestBody(d)
	}
	op["responses"] = g.responses(rt)
	if rt.access != public {
		op["security"] = []any{map[string]any{"TokenAuth": []string{}}}
	} else {
		op["security"] = []any{}
	}
	return op
}

func pathSchema(name string) map[string]any {
	switch name {
	case "pid":
		return map[string]any{"type": "string", "format": "uuid"}
	case "username":
		return map[string]any{"type": "string"}
	}
	return map[string]any{"type": "integer", "minimum": 1}
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func operationID(rt route) string {
	id := strings.ToLower(rt.method)
	for _, p := range nonWord.Split(openAPIPath(rt.path), -1) {
		id += upperFirst(p)
	}
	if strings.HasSuffix(rt.path, "/") {
		id += "Root"
	}
	return id
}

func (g *schemaGen) requestBody(d doc) map[string]any {
	encodings := d.encodings
	if len(encodings) == 0 {
		encodings = []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
	}
	schema := g.schema(reflect.TypeOf(d.request), true)
	content := map[string]any{}
	for _, e := range encodings {
		content[e] = map[string]any{"schema": schema}
	}
	return map[string]any{"required": true, "content": content}
}

func (g *schemaGen) responses(rt route) map[string]any {
	d := rt.doc
	status := d.status
	if status == 0 {
		status = http.StatusOK
	}
	ok := map[string]any{"description": http.StatusText(status)}
	switch {
	case d.produces != "":
		ok["content"] = map[string]any{d.produces: map[string]any{"schema": map[string]any{"type": "string"}}}
	case d.response != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(d.response), false)}}
	}
	out := map[string]any{strconv.Itoa(status): ok}
	errorRef := map[string]any{"$ref": "#/components/schemas/Error"}
	g.schemas["Error"] = map[string]any{
		"type":                 "object",
		"description":          `{"detail": message}, {"error": message}, or a map from each invalid field to its messages`,
		"additionalProperties": true,
	}
	errs := map[int]string{http.StatusBadRequest: "Invalid input; the body names each invalid field"}
	if rt.access != public {
		errs[http.StatusUnauthorized] = "Missing or invalid token"
		errs[http.StatusForbidden] = "The caller's role does not allow this"
	}
	if strings.Contains(rt.path, "{") {
		errs[http.StatusNotFound] = "Not found, or not under the path's project and spider"
	}
	if d.request == nil && d.query == nil {
		delete(errs, http.StatusBadRequest)
	}
	for code, desc := range errs {
		out[strconv.Itoa(code)] = map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errorRef}}}
	}
	return out
}

// schemaGen turns Go types into JSON schemas, naming struct types under components.
type schemaGen struct {
	schemas map[string]any
}

func (g *schemaGen) schema(t reflect.Type, request bool) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schema(t.Elem(), request)
		if !request {
			s = withNullable(s)
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), request)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), request)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.structRef(t, request)
	}
	return map[string]any{}
}

func withNullable(s map[string]any) map[string]any {
	if _, isRef := s["$ref"]; isRef {
		return map[string]any{"allOf": []any{s}, "nullable": true}
	}
	out := map[string]any{"nullable": true}
	for k, v := range s {
		out[k] = v
	}
	return out
}

func (g *schemaGen) structRef(t reflect.Type, request bool) map[string]any {
	name := schemaName(t)
	ref := map[string]any{"$ref": "#/components/schemas/" + name}
	if _, done := g.schemas[name]; done {
		return ref
	}
	g.schemas[name] = map[string]any{} // a placeholder stops recursion
	props := map[string]any{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if jsonName == "" || jsonName == "-" {
			continue
		}
		props[jsonName] = fieldSchema(g.schema(f.Type, request), f)
		if request && f.Tag.Get("validate") == "required" || !request && f.Type.Kind() != reflect.Pointer {
			required = append(required, jsonName)
		}
	}
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	g.schemas[name] = s
	return ref
}

// fieldSchema adds the binding tags of a field to its schema.
func fieldSchema(s map[string]any, f reflect.StructField) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	if v := f.Tag.Get("maxlen"); v != "" {
		n, _ := strconv.Atoi(v)
		out["maxLength"] = n
	}
	if v := f.Tag.Get("min"); v != "" {
		n, _ := strconv.Atoi(v)
		out["minimum"] = n
	}
	if v := f.Tag.Get("max"); v != "" {
		n, _ := strconv.Atoi(v)
		out["maximum"] = n
	}
	if v := f.Tag.Get("enum"); v != "" {
		out["enum"] = strings.Split(v, ",")
	}
	if v := f.Tag.Get("doc"); v != "" {
		out["description"] = v
	}
	if f.Name == "ProjectZip" {
		out["format"] = "binary"
	}
	return out
}

// schemaName names a struct type for the document: projectDTO is Project, pageOf[jobDTO] is
// JobPage, jobCreateRequest is JobCreateRequest.
func schemaName(t reflect.Type) string {
	name := t.Name()
	if base, arg, generic := strings.Cut(name, "["); generic {
		arg = strings.TrimSuffix(arg, "]")
		if i := strings.LastIndex(arg, "."); i >= 0 {
			arg = arg[i+1:]
		}
		switch base {
		case "pageOf":
			return upperFirst(strings.TrimSuffix(arg, "DTO")) + "Page"
		case "countedPage":
			return upperFirst(strings.TrimSuffix(arg, "DTO")) + "List"
		}
		return upperFirst(base) + upperFirst(arg)
	}
	return upperFirst(strings.TrimSuffix(name, "DTO"))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// serveDocs writes the OpenAPI document as JSON, or as YAML for ?format=yaml.
func (s *Server) serveDocs(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.URL.Query().Get("format") == "yaml" || strings.Contains(r.Header.Get("Accept"), "yaml") {
		out, err := s.OpenAPIYAML()
		if err != nil {
			return nil, err
		}
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(out)
		return written, nil
	}
	return s.OpenAPI(), nil
}
