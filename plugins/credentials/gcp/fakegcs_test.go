package main

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGCS serves the parts of the Cloud Storage JSON API that the plugin
// calls, for one bucket, testBucket, with the request and response shapes
// of Google's API reference: resumable uploads, media downloads, object
// lists and deletes.
type fakeGCS struct {
	server     *httptest.Server
	validToken func(string) bool

	mu       sync.Mutex
	objects  map[string][]byte
	sessions map[string]*uploadSession
	requests []string // "METHOD escaped-path?query"
	// Failure modes, set by tests before the requests they affect.
	persistHalf bool // each upload request persists only half of its bytes
	wrongMD5    bool // the uploaded object reports a wrong MD5 digest
	denyAll     bool // every request gets a 403 response
	pageSize    int  // maximum items per list page
}

type uploadSession struct {
	name string
	data []byte
}

func startFakeGCS(t *testing.T, validToken func(string) bool) *fakeGCS {
	t.Helper()
	f := &fakeGCS{validToken: validToken, objects: map[string][]byte{}, sessions: map[string]*uploadSession{}, pageSize: 1000}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

// writeError writes an error response in the JSON API's format.
func writeError(w http.ResponseWriter, status int, reason, message string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code":    status,
		"message": message,
		"errors":  []map[string]string{{"message": message, "domain": "global", "reason": reason}},
	}})
}

func writeJSONResponse(w http.ResponseWriter, value any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(value)
}

func (f *fakeGCS) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+path+"?"+r.URL.RawQuery)

	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !f.validToken(token):
		writeError(w, http.StatusUnauthorized, "required", "Anonymous caller does not have storage.objects.get access.")
		return
	case f.denyAll:
		writeError(w, http.StatusForbidden, "forbidden", testClientEmail+" does not have storage.objects.create access to the Google Cloud Storage bucket.")
		return
	}
	if upload, ok := strings.CutPrefix(path, "/upload/storage/v1/b/"); ok {
		f.serveUpload(w, r, upload)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/storage/v1/b/"); ok {
		f.serveObjects(w, r, rest)
		return
	}
	writeError(w, http.StatusNotFound, "notFound", "Not Found")
}

// splitBucket splits "<bucket>/o[/<object>]" and responds 404 for a
// bucket other than testBucket.
func splitBucket(w http.ResponseWriter, rest string) (object string, isObject, ok bool) {
	bucket, tail, _ := strings.Cut(rest, "/")
	if bucket != testBucket {
		writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return "", false, false
	}
	if tail == "o" {
		return "", false, true
	}
	escaped, found := strings.CutPrefix(tail, "o/")
	name, err := url.PathUnescape(escaped)
	if !found || err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid object path.")
		return "", false, false
	}
	return name, true, true
}

func (f *fakeGCS) serveObjects(w http.ResponseWriter, r *http.Request, rest string) {
	name, isObject, ok := splitBucket(w, rest)
	switch {
	case !ok:
	case !isObject && r.Method == http.MethodGet:
		f.list(w, r)
	case isObject && r.Method == http.MethodGet && r.URL.Query().Get("alt") == "media":
		data, found := f.objects[name]
		if !found {
			writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("No such object: %s/%s", testBucket, name))
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(data)
	case isObject && r.Method == http.MethodDelete:
		if _, found := f.objects[name]; !found {
			writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("No such object: %s/%s", testBucket, name))
			return
		}
		delete(f.objects, name)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusBadRequest, "invalid", "Unsupported request.")
	}
}

// list serves one page of objects.list. The page token is the last name of
// the previous page, so deleting listed objects does not shift later pages,
// as with Cloud Storage.
func (f *fakeGCS) list(w http.ResponseWriter, r *http.Request) {
	prefix, after := r.URL.Query().Get("prefix"), r.URL.Query().Get("pageToken")
	var names []string
	for name := range f.objects {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	page := map[string]any{"kind": "storage#objects"}
	var items []map[string]string
	for _, name := range names[:min(f.pageSize, len(names))] {
		items = append(items, map[string]string{"kind": "storage#object", "name": name, "bucket": testBucket})
	}
	if len(items) > 0 {
		page["items"] = items
	}
	if len(names) > f.pageSize {
		page["nextPageToken"] = names[f.pageSize-1]
	}
	writeJSONResponse(w, page)
}

func (f *fakeGCS) serveUpload(w http.ResponseWriter, r *http.Request, rest string) {
	if _, _, ok := splitBucket(w, rest); !ok {
		return
	}
	query := r.URL.Query()
	id := query.Get("upload_id")
	switch {
	case r.Method == http.MethodPost && query.Get("uploadType") == "resumable":
		id = strconv.Itoa(len(f.requests))
		f.sessions[id] = &uploadSession{name: query.Get("name")}
		w.Header().Set("Location", f.server.URL+"/upload/storage/v1/b/"+testBucket+"/o?uploadType=resumable&upload_id="+id)
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPut && f.sessions[id] != nil:
		f.receiveChunk(w, r, f.sessions[id], id)
	case r.Method == http.MethodDelete && f.sessions[id] != nil:
		delete(f.sessions, id)
		w.WriteHeader(499)
	default:
		writeError(w, http.StatusNotFound, "notFound", "No such upload session.")
	}
}

// receiveChunk appends one request's bytes to a session, and stores the
// object once the total size is reached.
func (f *fakeGCS) receiveChunk(w http.ResponseWriter, r *http.Request, session *uploadSession, id string) {
	first, total, err := parseContentRange(r.Header.Get("Content-Range"))
	body, _ := io.ReadAll(r.Body)
	if err != nil || (len(body) > 0 && first != int64(len(session.data))) {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid Content-Range %q", r.Header.Get("Content-Range")))
		return
	}
	if f.persistHalf && len(body) > 1 {
		body = body[:len(body)/2]
	}
	session.data = append(session.data, body...)
	if total < 0 || int64(len(session.data)) < total {
		if len(session.data) > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(session.data)-1))
		}
		w.WriteHeader(statusResumeIncomplete)
		return
	}
	delete(f.sessions, id)
	f.objects[session.name] = session.data
	digest := md5.Sum(session.data)
	if f.wrongMD5 {
		digest = md5.Sum([]byte("other bytes"))
	}
	writeJSONResponse(w, map[string]string{
		"kind":        "storage#object",
		"name":        session.name,
		"bucket":      testBucket,
		"size":        strconv.Itoa(len(session.data)),
		"md5Hash":     base64.StdEncoding.EncodeToString(digest[:]),
		"contentType": "application/zip",
	})
}

// parseContentRange parses "bytes <first>-<last>/<total>" and
// "bytes */<total>", where total may be "*", returned as -1.
func parseContentRange(header string) (first, total int64, err error) {
	spec, ok := strings.CutPrefix(header, "bytes ")
	span, totalText, found := strings.Cut(spec, "/")
	if !ok || !found {
		return 0, 0, fmt.Errorf("invalid Content-Range %q", header)
	}
	total = -1
	if totalText != "*" {
		if total, err = strconv.ParseInt(totalText, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	if span == "*" {
		return 0, total, nil
	}
	firstText, _, _ := strings.Cut(span, "-")
	first, err = strconv.ParseInt(firstText, 10, 64)
	return first, total, err
}

// set changes the server's state under its lock.
func (f *fakeGCS) set(change func(f *fakeGCS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// object returns a stored object's contents.
func (f *fakeGCS) object(name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.objects[name]
	return data, ok
}

func (f *fakeGCS) objectNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.objects))
}

// countRequests returns how many recorded requests start with prefix.
func (f *fakeGCS) countRequests(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeGCS) openSessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}
