package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/estela-go/estela-go/core/internal/store"
)

// apiError is an error with the status code and JSON body the client gets.
type apiError struct {
	status int
	body   any
}

func (e *apiError) Error() string {
	b, _ := json.Marshal(e.body)
	return fmt.Sprintf("%d %s", e.status, b)
}

// errDetail gives DRF's {"detail": msg} body.
func errDetail(status int, msg string) error {
	return &apiError{status, map[string]string{"detail": msg}}
}

// errMessage gives estela's custom {"error": msg} body.
func errMessage(status int, msg string) error {
	return &apiError{status, map[string]string{"error": msg}}
}

// errField gives a 400 with a field map {"field": [msg]}.
func errField(field, msg string) error {
	return &apiError{http.StatusBadRequest, map[string][]string{field: {msg}}}
}

// joinFieldErrors merges the errors of errField among errs into one 400 that names every
// invalid field. The first other error is returned as it is, and nil when every err is nil.
func joinFieldErrors(errs ...error) error {
	var merged map[string][]string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var e *apiError
		if !errors.As(err, &e) || e.status != http.StatusBadRequest {
			return err
		}
		fields, ok := e.body.(map[string][]string)
		if !ok {
			return err
		}
		if merged == nil {
			merged = make(map[string][]string)
		}
		for field, msgs := range fields {
			merged[field] = append(merged[field], msgs...)
		}
	}
	if merged == nil {
		return nil
	}
	return &apiError{http.StatusBadRequest, merged}
}

var (
	errNotFound  = errDetail(http.StatusNotFound, "Not found.")
	errForbidden = errDetail(http.StatusForbidden, "You do not have permission to perform this action.")
)

// result carries a status other than 200 with its body.
type result struct {
	status int
	body   any
}

func created(body any) result { return result{http.StatusCreated, body} }

// noContent is a 204 response with no body.
var noContent = result{status: http.StatusNoContent}

// written marks a response that the handler already wrote whole.
var written = result{status: -1}

// handlerFunc is the shape of every API handler: it returns the body to send (or a result)
// and an error that wrap maps to a status code.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// wrap turns a handlerFunc into an http.Handler: it writes the value as JSON, maps errors to
// status codes and logs every 5xx.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		value, err := h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if res, ok := value.(result); ok {
			status, value = res.status, res.body
		}
		switch status {
		case written.status:
		case http.StatusNoContent:
			w.WriteHeader(status)
		default:
			s.writeJSON(w, r, status, value)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *apiError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, store.ErrNotFound):
		apiErr = errNotFound.(*apiError)
	case errors.As(err, &maxErr):
		apiErr = &apiError{http.StatusRequestEntityTooLarge, map[string]string{
			"detail": fmt.Sprintf("Request body is larger than the limit of %d bytes.", maxErr.Limit)}}
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		apiErr = &apiError{http.StatusInternalServerError, map[string]string{"error": "Internal server error; the server log has the details."}}
	}
	if apiErr.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Token")
	}
	s.writeJSON(w, r, apiErr.status, apiErr.body)
}

// writeJSON writes v as the JSON body of a reply with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	buf := replyBuffers.Get().(*[]byte)
	defer putReplyBuffer(buf)
	b, err := encodeReply((*buf)[:0], v)
	if err != nil {
		// Only a value that encoding/json cannot write, a fault of the handler, gets here.
		s.log.Error("encode reply", "method", r.Method, "path", r.URL.Path, "error", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal server error; the server log has the details."}`+"\n")
	} else {
		*buf = b
	}
	// The whole reply in one write, with its length: the job list's replies of about 40 KB
	// took several writes to the socket in chunked encoding.
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// encodeReply appends the JSON of v and a newline to b.
func encodeReply(b []byte, v any) ([]byte, error) {
	if a, ok := v.(jsonAppender); ok {
		b, err := a.appendJSON(b)
		return append(b, '\n'), err
	}
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// replyBuffers keeps the buffers of replies for reuse. Buffers that grew past
// maxPooledReply are left to the garbage collector, so that one large reply does not keep
// its memory.
var replyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledReply = 1 << 20

func putReplyBuffer(b *[]byte) {
	if cap(*b) <= maxPooledReply {
		replyBuffers.Put(b)
	}
}

// searchText returns the search query parameter. Text with a NUL or invalid UTF-8 gets a 400,
// because the database cannot compare it as written.
func searchText(r *http.Request) (string, error) {
	text := r.URL.Query().Get("search")
	switch {
	case strings.ContainsRune(text, 0):
		return "", errField("search", "Search text must not contain a NUL character.")
	case !utf8.ValidString(text):
		return "", errField("search", "Search text must be valid UTF-8.")
	}
	return text, nil
}
