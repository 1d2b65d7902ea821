package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/store"
)

// dataKinds maps the type query parameter to the stored kind; stats are stored apart.
var dataKinds = map[string]store.DataKind{"items": store.DataItems, "requests": store.DataRequests, "logs": store.DataLogs}

// cliChunkSize is how many records one chunk of estela-cli's download protocol holds.
const cliChunkSize = 1000

func readDataType(r *http.Request, allowStats bool) (string, error) {
	t := r.URL.Query().Get("type")
	if t == "" {
		t = "items"
	}
	if _, ok := dataKinds[t]; ok || (allowStats && t == "stats") {
		return t, nil
	}
	allowed := "items, requests, logs"
	if allowStats {
		allowed += ", stats"
	}
	return "", errField("type", fmt.Sprintf("%q is not a valid data type; use one of %s.", t, allowed))
}

// jobData lists a job's items, requests, logs or stats. Browsers get pages of
// {count, previous, next, results}; estela-cli (User-Agent estela-cli/...) or a request with
// mode=chunks gets chunks of {count, results, next_chunk}, continued with current_chunk.
func (s *Server) jobData(_ http.ResponseWriter, r *http.Request) (any, error) {
	dataType, typeErr := readDataType(r, true)
	page, pageErr := readBoundedPage(r, 50, 100)
	if err := joinFieldErrors(typeErr, pageErr); err != nil {
		return nil, err
	}
	job, _, err := s.jobFor(r, actRead)
	if err != nil {
		return nil, err
	}

	if dataType == "stats" {
		return s.statsData(r, job)
	}
	kind := dataKinds[dataType]
	count, err := s.store.CountJobData(r.Context(), job.JID, kind)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if strings.HasPrefix(r.UserAgent(), "estela-cli/") || q.Get("mode") == "chunks" || q.Has("current_chunk") {
		return s.chunk(r, job.JID, kind, count)
	}
	filter, err := readLogFilter(r)
	if err != nil {
		return nil, err
	}
	if dataType == "logs" && (filter.Level != "" || filter.Search != "") {
		records, count, err := s.store.FilteredLogs(r.Context(), job.JID, filter, page.store())
		if err != nil {
			return nil, err
		}
		return pageLinks(r, page, count, rawResults(records)), nil
	}
	records, err := s.store.JobDataPage(r.Context(), job.JID, kind, page.store())
	if err != nil {
		return nil, err
	}
	return pageLinks(r, page, count, rawResults(records)), nil
}

// chunk serves one chunk of the CLI protocol. next_chunk is present while the chunk is not
// empty, so the CLI's last call gets an empty chunk and stops.
func (s *Server) chunk(r *http.Request, jid int64, kind store.DataKind, count int) (any, error) {
	var after int64
	if raw := r.URL.Query().Get("current_chunk"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return nil, errField("current_chunk", "Use the next_chunk value of the previous answer.")
		}
		after = n
	}
	records, err := s.store.JobDataAfter(r.Context(), jid, kind, after, cliChunkSize)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"count": count, "results": rawResults(records)}
	if len(records) > 0 {
		body["next_chunk"] = strconv.FormatInt(records[len(records)-1].ID, 10)
	}
	return body, nil
}

// statsData returns a one-element list: the live stats of a running job, or its final stats.
func (s *Server) statsData(r *http.Request, job *store.Job) (any, error) {
	results := []any{}
	if job.Status == lifecycle.Running {
		stats, err := s.stats.Read(r.Context(), job.Key())
		if err != nil {
			return nil, err
		}
		if len(stats) > 0 {
			results = append(results, livestats.Decode(stats))
		}
	} else {
		stats, err := s.store.JobStats(r.Context(), job.JID)
		if err == nil {
			results = append(results, stats)
		} else if !isNotFound(err) {
			return nil, err
		}
	}
	return pageOf[any]{Count: len(results), Results: results}, nil
}

func rawResults(records []store.DataRecord) []json.RawMessage {
	out := make([]json.RawMessage, len(records))
	for i, rec := range records {
		out[i] = rec.Data
	}
	return out
}

// downloadJobData streams every record of a type: format=json (the default) gives estela's
// {"results": [...]}, format=jsonl one JSON document per line.
func (s *Server) downloadJobData(w http.ResponseWriter, r *http.Request) (any, error) {
	dataType, err := readDataType(r, false)
	if err != nil {
		return nil, err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "jsonl" {
		return nil, errField("format", fmt.Sprintf("%q is not a valid format; use json or jsonl.", format))
	}
	job, _, err := s.jobFor(r, actRead)
	if err != nil {
		return nil, err
	}

	name := fmt.Sprintf("%s-%s.%s", job.Name(), dataType, format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	kind := dataKinds[dataType]
	if format == "jsonl" {
		w.Header().Set("Content-Type", "application/x-ndjson")
		err = s.store.ExportJobData(r.Context(), job.JID, kind, w)
	} else {
		w.Header().Set("Content-Type", "application/json")
		err = s.exportJSON(r, job.JID, kind, w)
	}
	if err != nil {
		// The status line is gone; the client sees a truncated body.
		s.log.Error("export job data", "jid", job.JID, "type", dataType, "error", err)
	}
	return written, nil
}

func (s *Server) exportJSON(r *http.Request, jid int64, kind store.DataKind, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(`{"results": [`); err != nil {
		return err
	}
	lw := &jsonListWriter{w: bw}
	if err := s.store.ExportJobData(r.Context(), jid, kind, lw); err != nil {
		return err
	}
	if _, err := bw.WriteString("]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// jsonListWriter turns newline-separated JSON documents into the elements of a JSON array.
type jsonListWriter struct {
	w       *bufio.Writer
	started bool
	pending bool // a newline was seen: a comma goes before the next document
}

func (l *jsonListWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if len(chunk) > 0 {
			if l.pending && l.started {
				l.w.WriteByte(',')
			}
			l.pending, l.started = false, true
			l.w.Write(chunk)
		}
		if i < 0 {
			break
		}
		l.pending = true
		p = p[i+1:]
	}
	return n, nil
}

var logLevels = []string{"ALL", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

// readLogFilter reads level (ignored when empty or ALL) and search for log listings.
func readLogFilter(r *http.Request) (store.LogFilter, error) {
	q := r.URL.Query()
	level := strings.ToUpper(strings.TrimSpace(q.Get("level")))
	if level != "" && !slices.Contains(logLevels, level) {
		return store.LogFilter{}, errField("level", fmt.Sprintf("%q is not a log level; use one of %s.", q.Get("level"), strings.Join(logLevels, ", ")))
	}
	if level == "ALL" {
		level = ""
	}
	search, err := searchText(r)
	return store.LogFilter{Level: level, Search: search}, err
}

type dataDeletedDTO struct {
	Deleted int `json:"deleted"`
}

// deleteJobData removes every record of one type from a job. When no items, requests or logs
// remain, the job's data_status becomes DELETED.
func (s *Server) deleteJobData(_ http.ResponseWriter, r *http.Request) (any, error) {
	job, actor, err := s.jobFor(r, actRun)
	if err != nil {
		return nil, err
	}
	if actor != lifecycle.User {
		return nil, errForbidden
	}
	if r.URL.Query().Get("type") == "" {
		return nil, errField("type", "Name the data to delete: items, requests or logs.")
	}
	dataType, err := readDataType(r, false)
	if err != nil {
		return nil, err
	}

	deleted, err := s.store.DeleteJobData(r.Context(), job.JID, dataKinds[dataType])
	if err != nil {
		return nil, err
	}
	if deleted == 0 {
		return nil, errDetail(http.StatusNotFound, "The job has no "+dataType+" to delete.")
	}
	return dataDeletedDTO{Deleted: deleted}, nil
}

type errorLogsDTO struct {
	Logs *string `json:"logs"`
}

// jobErrorLogs returns why a job ended in ERROR, or null.
func (s *Server) jobErrorLogs(_ http.ResponseWriter, r *http.Request) (any, error) {
	job, _, err := s.jobFor(r, actRead)
	if err != nil {
		return nil, err
	}
	if job.ErrorReason == "" {
		return errorLogsDTO{}, nil
	}
	return errorLogsDTO{Logs: &job.ErrorReason}, nil
}
