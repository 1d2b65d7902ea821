package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

// Kinds of metered usage records.
const (
	MeterJobClose   = "JOB_CLOSE"
	MeterDataDelete = "DATA_DELETE"
	MeterAdjustment = "ADJUSTMENT"
	MeterDeltaSlice = "DELTA_SLICE"
)

// MeteredUsage is one fact of the append-only usage ledger: what a resource of a project used
// during the half-open interval [IntervalStart, IntervalEnd).
type MeteredUsage struct {
	tableName struct{} `pg:"metered_usage_records"`

	ID               string         `pg:"id,pk,type:uuid"`
	RecordedAt       time.Time      `pg:"recorded_at,default:now()"`
	IdempotencyKey   string         `pg:"idempotency_key,notnull"`
	ProjectID        string         `pg:"project_id,type:uuid"`
	IntervalStart    time.Time      `pg:"interval_start"`
	IntervalEnd      time.Time      `pg:"interval_end"`
	Kind             string         `pg:"kind,notnull"`
	SourceRef        string         `pg:"source_ref,use_zero"`
	AdjustmentReason string         `pg:"adjustment_reason,use_zero"`
	ResourceKind     string         `pg:"resource_kind,use_zero"`
	ResourceID       string         `pg:"resource_id,use_zero"`
	Reporter         string         `pg:"reporter,use_zero"`
	Metrics          map[string]any `pg:"metrics,type:jsonb,use_zero"`
}

// AppendMeteredUsage inserts a record unless one with the same idempotency key exists in any
// project. It returns the stored record and whether this call created it. For a duplicate key
// it returns the earlier record, which may belong to another project.
func (s *Store) AppendMeteredUsage(ctx context.Context, rec *MeteredUsage) (*MeteredUsage, bool, error) {
	if rec.ID == "" {
		rec.ID = NewUUID()
	}
	// On a conflict RETURNING yields no row, which go-pg reports as pg.ErrNoRows.
	_, err := s.db.ModelContext(ctx, rec).OnConflict("(idempotency_key) DO NOTHING").Returning("*").Insert()
	if err == nil {
		return rec, true, nil
	}
	if !errors.Is(err, pg.ErrNoRows) {
		return nil, false, mapError("append metered usage", err)
	}
	existing := &MeteredUsage{}
	err = s.db.ModelContext(ctx, existing).Where("idempotency_key = ?", rec.IdempotencyKey).Select()
	return existing, false, mapError(fmt.Sprintf("load metered usage %q", rec.IdempotencyKey), err)
}

// MeteredUsageOfProject returns a project's ledger records whose interval starts in
// [from, to), in interval order.
func (s *Store) MeteredUsageOfProject(ctx context.Context, pid string, from, to time.Time) ([]MeteredUsage, error) {
	var out []MeteredUsage
	err := s.db.ModelContext(ctx, &out).Where("project_id = ? AND interval_start >= ? AND interval_start < ?", pid, from, to).
		Order("interval_start", "recorded_at").Select()
	if err == pg.ErrNoRows {
		err = nil
	}
	return out, mapError("list metered usage", err)
}

// UsageTotals are the resources a project's jobs used: crawl time, downloaded bytes, Scrapy's
// item and request counters, and the bytes PostgreSQL stores for the jobs' items, requests and
// logs. A data size is the sum of pg_column_size over the records, so it is measured after
// compression and without row headers or indexes.
type UsageTotals struct {
	LifespanMicros   int64 `pg:"lifespan_us"`
	NetworkBytes     int64 `pg:"network_bytes"`
	ItemCount        int64 `pg:"item_count"`
	RequestCount     int64 `pg:"request_count"`
	ItemsDataSize    int64 `pg:"items_data_size"`
	RequestsDataSize int64 `pg:"requests_data_size"`
	LogsDataSize     int64 `pg:"logs_data_size"`
}

// UsageSnapshot is a project's usage up to a time.
type UsageSnapshot struct {
	At time.Time `pg:"last_ended"`
	UsageTotals
}

// dataSizeColumns sums the stored size of each kind of job data of the rows d.
var dataSizeColumns = fmt.Sprintf(`coalesce(sum(pg_column_size(d.data)) FILTER (WHERE d.kind = %d), 0)::bigint AS items_data_size,
	coalesce(sum(pg_column_size(d.data)) FILTER (WHERE d.kind = %d), 0)::bigint AS requests_data_size,
	coalesce(sum(pg_column_size(d.data)) FILTER (WHERE d.kind = %d), 0)::bigint AS logs_data_size`,
	DataItems, DataRequests, DataLogs)

const jobUsageColumns = `coalesce(sum(j.lifespan_us), 0)::bigint AS lifespan_us,
	coalesce(sum(j.total_response_bytes), 0)::bigint AS network_bytes,
	coalesce(sum(j.item_count), 0)::bigint AS item_count,
	coalesce(sum(j.request_count), 0)::bigint AS request_count`

// ProjectUsage returns the usage of every job of a project, running jobs included.
//
// NOTE: the data sizes read every stored record of the project, which is slow for projects
// with millions of records. Recording each batch's size at ingest would avoid the scan.
func (s *Store) ProjectUsage(ctx context.Context, pid string) (*UsageTotals, error) {
	u := &UsageTotals{}
	_, err := s.db.QueryOneContext(ctx, u, `SELECT c.*, sz.* FROM
		(SELECT `+jobUsageColumns+` FROM jobs j WHERE j.project_id = ?) c,
		(SELECT `+dataSizeColumns+` FROM job_data d JOIN jobs j ON j.jid = d.job_id WHERE j.project_id = ?) sz`, pid, pid)
	return u, mapError("sum project usage", err)
}

// UsageHistory returns a project's cumulative usage at the end of each UTC day in [from, to)
// on which at least one of its jobs ended, newest first. Each snapshot counts every job that
// ended (COMPLETED, ERROR or STOPPED) up to its time, so the sums include jobs older than from.
func (s *Store) UsageHistory(ctx context.Context, pid string, from, to time.Time) ([]UsageSnapshot, error) {
	var out []UsageSnapshot
	_, err := s.db.QueryContext(ctx, &out, `
	WITH ended AS (
		SELECT j.* FROM jobs j
		WHERE j.project_id = ? AND j.status IN (?, ?, ?) AND j.status_changed < ?
	), sizes AS (
		SELECT d.job_id, `+dataSizeColumns+`
		FROM job_data d JOIN ended j ON j.jid = d.job_id GROUP BY d.job_id
	), days AS (
		SELECT date_trunc('day', j.status_changed AT TIME ZONE 'UTC') AS day, max(j.status_changed) AS last_ended,
			`+jobUsageColumns+`,
			coalesce(sum(sz.items_data_size), 0) AS items_data_size,
			coalesce(sum(sz.requests_data_size), 0) AS requests_data_size,
			coalesce(sum(sz.logs_data_size), 0) AS logs_data_size
		FROM ended j LEFT JOIN sizes sz ON sz.job_id = j.jid GROUP BY 1
	), running AS (
		SELECT day, last_ended,
			sum(lifespan_us) OVER w AS lifespan_us, sum(network_bytes) OVER w AS network_bytes,
			sum(item_count) OVER w AS item_count, sum(request_count) OVER w AS request_count,
			sum(items_data_size) OVER w AS items_data_size, sum(requests_data_size) OVER w AS requests_data_size,
			sum(logs_data_size) OVER w AS logs_data_size
		FROM days WINDOW w AS (ORDER BY day)
	)
	SELECT last_ended, lifespan_us::bigint, network_bytes::bigint, item_count::bigint, request_count::bigint,
		items_data_size::bigint, requests_data_size::bigint, logs_data_size::bigint
	FROM running WHERE last_ended >= ? ORDER BY day DESC`,
		pid, JobCompleted, JobError, JobStopped, to, from)
	return out, mapError("read usage history", err)
}

// OwnerQuota is the memory quota of a project's owner and the jobs that count against it.
type OwnerQuota struct {
	// OwnerID is 0 when the project has no owner.
	OwnerID int64
	// QuotaMi is the owner's memory quota in MiB.
	QuotaMi int
	// ActiveJobsByTier counts the WAITING and RUNNING jobs of every project the owner owns, by
	// resource tier.
	ActiveJobsByTier map[string]int
}

// OwnerQuotaOf returns the quota of a project's owner and the owner's active jobs.
func (s *Store) OwnerQuotaOf(ctx context.Context, pid string) (*OwnerQuota, error) {
	q := &OwnerQuota{ActiveJobsByTier: map[string]int{}}
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&q.OwnerID, &q.QuotaMi), `SELECT u.id, u.memory_quota
		FROM permissions p JOIN users u ON u.id = p.user_id
		WHERE p.project_id = ? AND p.role = ? ORDER BY p.id LIMIT 1`, pid, RoleOwner)
	if err == pg.ErrNoRows {
		return q, nil
	}
	if err != nil {
		return nil, mapError("load project owner", err)
	}
	var rows []struct {
		Tier string `pg:"resource_tier"`
		Jobs int    `pg:"jobs"`
	}
	_, err = s.db.QueryContext(ctx, &rows, `SELECT j.resource_tier, count(*) AS jobs FROM jobs j
		WHERE j.status IN (?, ?) AND j.project_id IN
			(SELECT project_id FROM permissions WHERE user_id = ? AND role = ?)
		GROUP BY j.resource_tier`, JobWaiting, JobRunning, q.OwnerID, RoleOwner)
	for _, r := range rows {
		q.ActiveJobsByTier[r.Tier] = r.Jobs
	}
	return q, mapError("count the owner's active jobs", err)
}
