package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxFormBytes caps JSON and form bodies other than uploads and ingest.
const maxFormBytes = 1 << 20

// pathID reads a numeric path variable such as sid or jid.
func pathID(r *http.Request, name string) (int64, error) {
	raw := r.PathValue(name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 {
		return 0, errNotFound
	}
	return id, nil
}

// pathPID reads the project UUID from the path; a malformed one is simply not found.
func pathPID(r *http.Request) (string, error) {
	pid := strings.ToLower(r.PathValue("pid"))
	if !validUUID(pid) {
		return "", errNotFound
	}
	return pid, nil
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdef", c):
			return false
		}
	}
	return true
}

// fields is a decoded request body, whatever its encoding, with typed accessors that collect
// one error list per field.
type fields struct {
	values map[string]any
	errs   map[string][]string
}

// decodeBody reads a JSON, form-urlencoded or multipart body into fields.
func decodeBody(w http.ResponseWriter, r *http.Request) (*fields, error) {
	f := &fields{values: map[string]any{}, errs: map[string][]string{}}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			return nil, errDetail(http.StatusBadRequest, "Malformed form body: "+err.Error())
		}
		f.setForm(r.PostForm)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxFormBytes); err != nil {
			return nil, errDetail(http.StatusBadRequest, "Malformed multipart body: "+err.Error())
		}
		f.setForm(r.MultipartForm.Value)
	default:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		var body any
		if err := dec.Decode(&body); err != nil {
			if err.Error() == "EOF" {
				return f, nil
			}
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				return nil, err
			}
			return nil, errDetail(http.StatusBadRequest, "JSON parse error - "+err.Error())
		}
		if _, err := dec.Token(); err != io.EOF {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				return nil, err
			}
			return nil, errDetail(http.StatusBadRequest, "JSON parse error - extra data after the JSON object; send one object.")
		}
		obj, ok := body.(map[string]any)
		if !ok {
			return nil, errField("non_field_errors", "Invalid data. Expected a dictionary.")
		}
		f.values = obj
	}
	return f, nil
}

// decodeInto decodes the body and binds it to dst, returning every field error as one 400.
func decodeInto(w http.ResponseWriter, r *http.Request, dst any) error {
	f, err := decodeBody(w, r)
	if err != nil {
		return err
	}
	bind(f, dst)
	return f.err()
}

func (f *fields) setForm(values url.Values) {
	for k, v := range values {
		if len(v) == 1 {
			f.values[k] = v[0]
			continue
		}
		list := make([]any, len(v))
		for i, s := range v {
			list[i] = s
		}
		f.values[k] = list
	}
}

func (f *fields) has(name string) bool {
	v, ok := f.values[name]
	return ok && v != nil
}

func (f *fields) fail(name, msg string) {
	f.errs[name] = append(f.errs[name], msg)
}

// err returns the collected field errors as one 400, or nil.
func (f *fields) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return &apiError{http.StatusBadRequest, f.errs}
}

// str returns a string field; numbers and booleans are rejected.
func (f *fields) str(name string, maxLen int) (string, bool) {
	v, ok := f.values[name]
	if !ok || v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		f.fail(name, "Not a valid string.")
		return "", false
	}
	if maxLen > 0 && len(s) > maxLen {
		f.fail(name, fmt.Sprintf("Ensure this field has no more than %d characters.", maxLen))
		return "", false
	}
	return s, true
}

// requiredStr returns a non-blank string field or records that it is missing.
func (f *fields) requiredStr(name string, maxLen int) string {
	s, ok := f.str(name, maxLen)
	if !ok {
		if _, failed := f.errs[name]; !failed {
			f.fail(name, "This field is required.")
		}
		return ""
	}
	if strings.TrimSpace(s) == "" {
		f.fail(name, "This field may not be blank.")
	}
	return s
}

// integer returns an integer field given as a JSON number or a decimal string.
func (f *fields) integer(name string, min, max int64) (int64, bool) {
	v, ok := f.values[name]
	if !ok || v == nil {
		return 0, false
	}
	var n int64
	var err error
	switch t := v.(type) {
	case json.Number:
		n, err = t.Int64()
	case string:
		n, err = strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil {
		f.fail(name, "A valid integer is required.")
		return 0, false
	}
	if n < min || n > max {
		// bind uses ±1<<62 for a bound its field does not set; such a bound is not named.
		switch {
		case max >= 1<<62:
			f.fail(name, fmt.Sprintf("Ensure this value is greater than or equal to %d.", min))
		case min <= -1<<62:
			f.fail(name, fmt.Sprintf("Ensure this value is less than or equal to %d.", max))
		default:
			f.fail(name, fmt.Sprintf("Ensure this value is between %d and %d.", min, max))
		}
		return 0, false
	}
	return n, true
}

// choice returns a string field that must be one of the allowed values.
func (f *fields) choice(name string, allowed ...string) (string, bool) {
	s, ok := f.str(name, 0)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	f.fail(name, fmt.Sprintf("%q is not a valid choice; use one of %s.", s, strings.Join(allowed, ", ")))
	return "", false
}

// objects returns a list field whose entries are JSON objects.
func (f *fields) objects(name string) []map[string]any {
	v, ok := f.values[name]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		f.fail(name, "Expected a list of items.")
		return nil
	}
	out := make([]map[string]any, 0, len(list))
	for i, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			f.fail(name, fmt.Sprintf("Item %d: expected an object.", i))
			return nil
		}
		out = append(out, obj)
	}
	return out
}

// sortedKeys returns the keys of a map in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
