package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/store"
)

// ingestBody is one batch of data sent by a job, read by parseIngestBody. Records stay raw
// JSON: the store turns the array into COPY rows in one pass.
type ingestBody struct {
	Type    string          `json:"type" validate:"required" enum:"items,requests,logs,stats"`
	BatchID string          `json:"batch_id" validate:"required" maxlen:"100" doc:"the same on every retry of the batch"`
	Records json.RawMessage `json:"records" validate:"required" doc:"a JSON array of objects, at least one"`
}

// bodyBuffers holds the bodies of ingest requests being handled. The records stored from a
// body are slices of it, so it goes back only when the handler returns.
var bodyBuffers = store.NewBufferPool()

// ingest stores a batch of items, requests, logs or the final stats of a job. Only the job's
// own token may send them. The batch is acknowledged after it is committed; a batch id the job
// already sent is acknowledged again without storing the batch twice.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) (any, error) {
	job, actor, err := s.jobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	if actor != lifecycle.JobProcess {
		return nil, errDetail(http.StatusForbidden, "Only the job itself may send its data; use the job's token.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxIngestBytes)
	raw := bodyBuffers.Get()
	defer bodyBuffers.Put(raw)
	if r.ContentLength > 0 && r.ContentLength <= s.opts.MaxIngestBytes {
		raw.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := raw.ReadFrom(r.Body); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, err
		}
		return nil, errDetail(http.StatusBadRequest, "Could not read the request body: "+err.Error())
	}
	body, err := parseIngestBody(raw.Bytes())
	if err != nil {
		return nil, errDetail(http.StatusBadRequest, "JSON parse error - "+err.Error())
	}
	if err := validateBatch(&body); err != nil {
		return nil, err
	}

	if body.Type == "stats" {
		return s.ingestStats(r, job.JID, body.BatchID, body.Records)
	}
	stored, duplicate, err := s.store.IngestArray(r.Context(), job.JID, dataKinds[body.Type], body.BatchID, body.Records)
	if errors.Is(err, store.ErrInvalidRecords) {
		return nil, errField("records", sentence(strings.TrimPrefix(err.Error(), store.ErrInvalidRecords.Error()+": ")))
	}
	if err != nil {
		return nil, err
	}
	if duplicate {
		return ingestedDTO{Duplicate: true}, nil
	}
	return created(ingestedDTO{Stored: stored}), nil
}

// ingestStats stores the last record of a stats batch as the job's final stats.
func (s *Server) ingestStats(r *http.Request, jid int64, batchID string, array json.RawMessage) (any, error) {
	var records []json.RawMessage
	if err := json.Unmarshal(array, &records); err != nil {
		return nil, errField("records", sentence("expected a JSON array of objects: "+err.Error()))
	}
	if len(records) == 0 {
		return nil, errField("records", "A stats batch needs at least one record. The last record is kept.")
	}
	for i, rec := range records {
		if len(rec) == 0 || rec[0] != '{' {
			return nil, errField("records", fmt.Sprintf("Record %d is not a JSON object.", i))
		}
	}
	duplicate, err := s.store.IngestStats(r.Context(), jid, batchID, records[len(records)-1])
	if err != nil {
		return nil, err
	}
	if duplicate {
		return ingestedDTO{Duplicate: true}, nil
	}
	return created(ingestedDTO{Stored: 1}), nil
}

func validateBatch(b *ingestBody) error {
	if b.Type == "" {
		return errField("type", "A data type is required: items, requests, logs or stats.")
	}
	if _, ok := dataKinds[b.Type]; !ok && b.Type != "stats" {
		return errField("type", fmt.Sprintf("%q is not a valid data type; use items, requests, logs or stats.", b.Type))
	}
	if n := utf8.RuneCountInString(b.BatchID); n == 0 || n > 100 {
		return errField("batch_id", "A batch id of 1 to 100 characters is required, the same on every retry of the batch.")
	}
	if strings.ContainsFunc(b.BatchID, unicode.IsControl) {
		return errField("batch_id", "A batch id may not contain control characters such as NUL, tab or newline.")
	}
	// The JSON decoder turns a lone surrogate (\ud800) into U+FFFD, so two different ids
	// would be recorded as one.
	if strings.ContainsRune(b.BatchID, utf8.RuneError) {
		return errField("batch_id", "A batch id may not contain a lone surrogate such as \\ud800, or U+FFFD.")
	}
	if len(b.Records) == 0 {
		return errField("records", "A batch needs at least one record.")
	}
	return nil
}

// sentence starts msg with a capital letter and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	first, size := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(first)) + msg[size:]
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, ".)") {
		msg += "."
	}
	return msg
}

func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound)
}
