package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/store"
)

// reportMeteredUsage appends a fact to the usage ledger. Staff and superusers may report for
// any live project, and other users for projects they are members of. A non-member gets 403
// even for a project that does not exist, so that project ids cannot be probed.
func (s *Server) reportMeteredUsage(w http.ResponseWriter, r *http.Request) (any, error) {
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	if reason, ok := f.values["adjustment_reason"].(string); ok && strings.TrimSpace(reason) == "" {
		delete(f.values, "adjustment_reason") // estela accepts a blank reason as none
	}
	var req meteringReportRequest
	bind(f, &req)
	pid := strings.ToLower(strings.TrimSpace(req.ProjectID))
	if _, failed := f.errs["project_id"]; !failed && !validUUID(pid) {
		f.fail("project_id", "Must be a valid UUID.")
	}
	if _, failed := f.errs["project_id"]; failed {
		return nil, f.err()
	}
	if err := s.authorizeMetering(r.Context(), user, pid); err != nil {
		return nil, err
	}
	rec := readMeteringReport(f, &req, pid)
	if err := f.err(); err != nil {
		return nil, err
	}

	stored, isNew, err := s.store.AppendMeteredUsage(r.Context(), rec)
	if err != nil {
		return nil, err
	}
	if isNew {
		return created(meteringReportToDTO(stored, false)), nil
	}
	if stored.ProjectID != pid {
		// The key is taken in another project, which the caller may not be allowed to see.
		return nil, &apiError{http.StatusConflict, map[string][]string{
			"idempotency_key": {"This idempotency key was already reported for another project; use a key of your own."}}}
	}
	return meteringReportToDTO(stored, true), nil
}

func (s *Server) authorizeMetering(ctx context.Context, user *store.User, pid string) error {
	if !user.IsStaff && !user.IsSuperuser {
		role, err := s.store.Role(ctx, pid, user.ID)
		if err != nil {
			return err
		}
		if role == "" {
			return errForbidden
		}
	}
	if _, err := s.store.Project(ctx, pid); err != nil {
		return orFieldNotFound(err, errField("project_id", "Project not found."))
	}
	return nil
}

// readMeteringReport checks the fields that bind cannot and builds the ledger record.
func readMeteringReport(f *fields, req *meteringReportRequest, pid string) *store.MeteredUsage {
	rec := &store.MeteredUsage{
		ProjectID: pid, IdempotencyKey: req.IdempotencyKey, ResourceKind: req.ResourceKind, ResourceID: req.ResourceID,
		Kind: orDefault(req.Kind, store.MeterDeltaSlice), SourceRef: orDefault(req.SourceRef, ""),
		AdjustmentReason: orDefault(req.AdjustmentReason, ""), Reporter: strings.TrimSpace(orDefault(req.Reporter, "")),
		Metrics: req.Metrics,
	}
	if rec.Reporter == "" {
		rec.Reporter = "estela"
	}
	var startOK, endOK bool
	rec.IntervalStart, startOK = readISOTime(f, "interval_start", req.IntervalStart)
	rec.IntervalEnd, endOK = readISOTime(f, "interval_end", req.IntervalEnd)
	if startOK && endOK && !rec.IntervalEnd.After(rec.IntervalStart) {
		f.fail("interval_end", "Must be after interval_start (the interval is half-open).")
	}
	if req.Metrics != nil && len(req.Metrics) == 0 {
		f.fail("metrics", "At least one metric key is required.")
	}
	if rec.Kind == store.MeterAdjustment && rec.AdjustmentReason == "" {
		f.fail("adjustment_reason", "Required when kind is ADJUSTMENT.")
	}
	return rec
}

// isoLayouts are the forms of ISO 8601 times that reporters send. A time without an offset
// is UTC.
var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

func readISOTime(f *fields, name, raw string) (time.Time, bool) {
	if _, failed := f.errs[name]; failed || raw == "" {
		return time.Time{}, false
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, strings.TrimSpace(raw)); err == nil {
			return t.UTC(), true
		}
	}
	f.fail(name, fmt.Sprintf("Invalid time %q: use ISO 8601, such as 2024-05-01T10:00:00Z.", raw))
	return time.Time{}, false
}

type meteringReportRequest struct {
	ProjectID        string         `json:"project_id" validate:"required" doc:"pid of the project the usage belongs to"`
	ResourceKind     string         `json:"resource_kind" validate:"required" maxlen:"64" doc:"such as SpiderJob, BuildJob or ProjectStorage"`
	ResourceID       string         `json:"resource_id" validate:"required" maxlen:"512"`
	IntervalStart    string         `json:"interval_start" validate:"required" doc:"ISO 8601 time, UTC when it has no offset; the interval is [interval_start, interval_end)"`
	IntervalEnd      string         `json:"interval_end" validate:"required" doc:"ISO 8601 time after interval_start"`
	Metrics          map[string]any `json:"metrics" validate:"required" doc:"a non-empty object, such as {\"network_bytes\": 1024}"`
	IdempotencyKey   string         `json:"idempotency_key" validate:"required" maxlen:"512" doc:"unique across all projects; a retry sends the same key"`
	Kind             *string        `json:"kind" enum:"JOB_CLOSE,DATA_DELETE,ADJUSTMENT,DELTA_SLICE" doc:"DELTA_SLICE when absent"`
	SourceRef        *string        `json:"source_ref" maxlen:"512"`
	Reporter         *string        `json:"reporter" maxlen:"64" doc:"the reporting service; estela when blank"`
	AdjustmentReason *string        `json:"adjustment_reason" enum:"RECONCILE_SCRAPY_FINAL,RECONCILE_STORAGE,MANUAL" doc:"required when kind is ADJUSTMENT"`
}

type meteringReportDTO struct {
	ID           string `json:"id"`
	RecordedAt   string `json:"recorded_at"`
	Duplicate    bool   `json:"duplicate"`
	ResourceKind string `json:"resource_kind"`
	ResourceID   string `json:"resource_id"`
}

func meteringReportToDTO(m *store.MeteredUsage, duplicate bool) meteringReportDTO {
	return meteringReportDTO{ID: m.ID, RecordedAt: formatJobTime(m.RecordedAt), Duplicate: duplicate,
		ResourceKind: m.ResourceKind, ResourceID: m.ResourceID}
}
