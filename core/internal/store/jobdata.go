package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-pg/pg/v10"
)

// DataKind is the kind of a job data record.
type DataKind int16

// Kinds of job data kept in job_data. Stats live in job_stats.
const (
	DataItems    DataKind = 1
	DataRequests DataKind = 2
	DataLogs     DataKind = 3
)

// IngestBatch stores a batch of records of one kind for a job, with COPY, in one transaction.
// A batch whose id the job already has is not stored again: duplicate is then true. Records
// must each be a JSON value; they are compacted before storing.
func (s *Store) IngestBatch(ctx context.Context, jobID int64, kind DataKind, batchID string, records []json.RawMessage) (duplicate bool, err error) {
	var rows bytes.Buffer
	if err := encodeCopyRows(&rows, jobID, kind, records); err != nil {
		return false, err
	}
	_, duplicate, err = s.ingestRows(ctx, jobID, kind, batchID, &rows, len(records))
	return duplicate, err
}

// ErrInvalidRecords is wrapped by IngestArray's errors about the records themselves.
var ErrInvalidRecords = errors.New("invalid records")

// IngestArray is IngestBatch for records still in their JSON array, as a job sends them: one
// pass turns the array into COPY rows, with no decoding of each record. An array that is not
// an array of JSON objects, found by that pass or by Postgres when it stores the rows, gives
// an error wrapping ErrInvalidRecords, and nothing of the batch is stored. It returns how
// many records were stored: fewer than the batch had when a unique collection already held
// some.
func (s *Store) IngestArray(ctx context.Context, jobID int64, kind DataKind, batchID string, array []byte) (stored int, duplicate bool, err error) {
	rows := ingestBuffers.Get()
	defer ingestBuffers.Put(rows)
	rows.Grow(len(array) + len(array)/8)
	n, err := encodeArrayRows(rows, jobID, kind, array)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %v", ErrInvalidRecords, err)
	}
	if n == 0 {
		return 0, false, fmt.Errorf("%w: a batch needs at least one record", ErrInvalidRecords)
	}
	return s.ingestRows(ctx, jobID, kind, batchID, rows, n)
}

// ingestBuffers holds the COPY rows of batches being stored.
var ingestBuffers = NewBufferPool()

// ingestRows stores COPY rows of one batch and its ledger entry in one transaction, on a
// connection of the ingest pool. BEGIN travels with the ledger statement, so a batch costs
// three round trips (BEGIN with the ledger, COPY, COMMIT), where a pg.Tx takes four.
func (s *Store) ingestRows(ctx context.Context, jobID int64, kind DataKind, batchID string, rows *bytes.Buffer, records int) (stored int, duplicate bool, err error) {
	conn := s.ingest.Conn().WithContext(ctx)
	defer conn.Close()
	open := true
	defer func() {
		if open {
			// A broken connection is dropped by go-pg rather than returned to the pool, so
			// a failed ROLLBACK cannot leave a transaction open for the next batch.
			rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(rollbackCtx, "ROLLBACK")
		}
	}()

	// One round trip opens the transaction, records the batch, adds its bytes to the job's
	// and reads the job's shared collection, if any.
	var recorded []struct {
		Collection *string `pg:"collection"`
	}
	size := dataBytes(rows, records, jobID, kind)
	_, err = conn.QueryContext(ctx, &recorded, `BEGIN; WITH batch AS (
			INSERT INTO job_data_batches (job_id, batch_id, kind, records, bytes)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING job_id),
		job AS (
			UPDATE jobs SET storage_bytes = storage_bytes + ? WHERE jid = (SELECT job_id FROM batch))
		SELECT (SELECT collection FROM job_collections WHERE job_id = ?) AS collection FROM batch`,
		jobID, batchID, kind, records, size, size, jobID)
	if err != nil {
		return 0, false, mapError("record batch", err)
	}
	if len(recorded) == 0 {
		return 0, true, nil
	}
	collection := ""
	if recorded[0].Collection != nil {
		collection = *recorded[0].Collection
	}
	stored = records
	if kind == DataItems && collection != "" {
		stored, err = copyUniqueItems(ctx, conn, jobID, batchID, collection, rows, size)
	} else if _, copyErr := conn.CopyFrom(rows, "COPY job_data (job_id, kind, data) FROM STDIN"); copyErr != nil {
		err = copyError(copyErr)
	}
	if err != nil {
		return 0, false, err
	}
	open = false
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, false, mapError("commit batch", err)
	}
	return stored, false, nil
}

// dataBytes returns how many JSON bytes COPY rows hold: their length without each row's job
// id, kind and line end, and without the backslashes doubled for COPY.
func dataBytes(rows *bytes.Buffer, records int, jobID int64, kind DataKind) int64 {
	prefix := len(fmt.Sprintf("%d\t%d\t", jobID, kind))
	doubled := bytes.Count(rows.Bytes(), []byte{'\\'}) / 2
	return int64(rows.Len() - doubled - records*(prefix+1))
}

// copyLine finds the row number in the context of a COPY error.
var copyLine = regexp.MustCompile(`COPY \w+, line (\d+)`)

// copyError turns a COPY failure caused by a record's content (SQLSTATE class 22, data
// exception, such as invalid json) into ErrInvalidRecords naming the record, and maps others
// as usual. Records are the rows of the COPY, in order.
func copyError(err error) error {
	var pgErr pg.Error
	if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Field('C'), "22") {
		return mapError("copy job data", err)
	}
	record := "a record"
	if m := copyLine.FindStringSubmatch(pgErr.Field('W')); m != nil {
		if line, convErr := strconv.Atoi(m[1]); convErr == nil {
			record = fmt.Sprintf("record %d", line-1)
		}
	}
	reason := pgErr.Field('M')
	if detail := pgErr.Field('D'); detail != "" {
		reason += ": " + detail
	}
	return fmt.Errorf("%w: %s is not valid JSON (%s)", ErrInvalidRecords, record, reason)
}

// copyUniqueItems stores only the items that the shared collection does not hold yet, as
// estela's unique collections do, and counts what it stored in the batch ledger. copied is
// the size the batch was recorded with, corrected here to what was stored. It runs inside
// the batch's transaction on conn, and returns how many items it stored.
func copyUniqueItems(ctx context.Context, conn *pg.Conn, jobID int64, batchID, collection string, rows *bytes.Buffer, copied int64) (int, error) {
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE ingest_items (job_id bigint, kind smallint, data json) ON COMMIT DROP"); err != nil {
		return 0, mapError("create ingest table", err)
	}
	if _, err := conn.CopyFrom(rows, "COPY ingest_items (job_id, kind, data) FROM STDIN"); err != nil {
		return 0, copyError(err)
	}
	var stored int
	_, err := conn.QueryOneContext(ctx, pg.Scan(&stored), `WITH stored AS (
			INSERT INTO job_data (job_id, kind, data)
			SELECT job_id, kind, data FROM (SELECT DISTINCT ON (md5(data::text)) job_id, kind, data, ctid FROM ingest_items
				ORDER BY md5(data::text), ctid) fresh
			WHERE NOT EXISTS (SELECT 1 FROM job_data d JOIN job_collections c ON c.job_id = d.job_id
				WHERE c.collection = ? AND d.kind = ? AND md5(d.data::text) = md5(fresh.data::text))
			ORDER BY ctid
			RETURNING octet_length(data::text) AS size),
		batch AS (
			UPDATE job_data_batches SET records = (SELECT count(*) FROM stored),
				bytes = (SELECT coalesce(sum(size), 0) FROM stored)
			WHERE job_id = ? AND batch_id = ?)
		UPDATE jobs SET storage_bytes = storage_bytes - ? + (SELECT coalesce(sum(size), 0) FROM stored)
		WHERE jid = ? RETURNING (SELECT count(*) FROM stored)`, collection, DataItems, jobID, batchID, copied, jobID)
	return stored, mapError("store unique items", err)
}

// dataJobs returns the jobs whose records a job's data of a kind shows: the runs of its shared
// collection for items, otherwise the job alone.
func (s *Store) dataJobs(ctx context.Context, jobID int64, kind DataKind) ([]int64, error) {
	if kind != DataItems {
		return []int64{jobID}, nil
	}
	var ids []int64
	_, err := s.db.QueryContext(ctx, pg.Scan(pg.Array(&ids)), `SELECT coalesce(array_agg(o.job_id ORDER BY o.job_id), ARRAY[?::bigint])
		FROM job_collections c JOIN job_collections o ON o.collection = c.collection WHERE c.job_id = ?`, jobID, jobID)
	return ids, mapError("list collection jobs", err)
}

// encodeCopyRows writes one COPY text-format row per record.
func encodeCopyRows(w *bytes.Buffer, jobID int64, kind DataKind, records []json.RawMessage) error {
	var compact bytes.Buffer
	prefix := fmt.Sprintf("%d\t%d\t", jobID, kind)
	for i, r := range records {
		compact.Reset()
		if err := json.Compact(&compact, r); err != nil {
			return fmt.Errorf("record %d: invalid JSON: %w", i, err)
		}
		w.WriteString(prefix)
		writeCopyEscaped(w, compact.Bytes())
		w.WriteByte('\n')
	}
	return nil
}

// writeCopyEscaped writes compact JSON as a COPY text-format value. Compact JSON has no raw
// newline, carriage return or tab (JSON forbids them in strings and json.Compact removes them
// elsewhere), so only backslashes need escaping. Runs between them are written in one call,
// because a call per byte cost a sixth of the ingest path's CPU time.
func writeCopyEscaped(w *bytes.Buffer, compact []byte) {
	compact = replaceUnstorableEscapes(compact)
	for {
		i := bytes.IndexByte(compact, '\\')
		if i < 0 {
			w.Write(compact)
			return
		}
		w.Write(compact[:i])
		w.WriteString(`\\`)
		compact = compact[i+1:]
	}
}

// ledgerStats marks a stats batch in the batch ledger. Stats themselves live in job_stats.
const ledgerStats DataKind = 4

// IngestStats stores a stats batch sent by a job as its final stats, as SaveJobStats does,
// and records the batch id with the job's other batches. An id the job already sent, of any
// type, is not stored again (duplicate is then true), so a late retry of an older batch
// cannot replace newer stats.
func (s *Store) IngestStats(ctx context.Context, jobID int64, batchID string, stats json.RawMessage) (duplicate bool, err error) {
	var recorded int
	_, err = s.db.QueryOneContext(ctx, pg.Scan(&recorded), `WITH batch AS (
			INSERT INTO job_data_batches (job_id, batch_id, kind, records) VALUES (?, ?, ?, 1)
			ON CONFLICT DO NOTHING RETURNING job_id),
		saved AS (
			INSERT INTO job_stats (job_id, stats) SELECT job_id, ?::json FROM batch
			ON CONFLICT (job_id) DO UPDATE SET stats = excluded.stats, created = now()),
		job AS (
			UPDATE jobs SET peak_memory_bytes = coalesce(?::bigint, peak_memory_bytes) WHERE jid = (SELECT job_id FROM batch))
		SELECT count(*) FROM batch`,
		jobID, batchID, ledgerStats, string(replaceUnstorableEscapes(stats)), peakMemory(stats))
	if err != nil {
		return false, mapError("save job stats", err)
	}
	return recorded == 0, nil
}

// StoredRecords returns how many records of a kind the job's recorded batches stored.
func (s *Store) StoredRecords(ctx context.Context, jobID int64, kind DataKind) (int64, error) {
	var n int64
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&n), `SELECT coalesce(sum(records), 0) FROM job_data_batches
		WHERE job_id = ? AND kind = ?`, jobID, kind)
	return n, mapError("count stored records", err)
}

// SaveJobStats stores the final stats of a job, replacing earlier ones. Escapes that
// Postgres cannot read back are stored as \ufffd, as in job data.
func (s *Store) SaveJobStats(ctx context.Context, jobID int64, stats json.RawMessage) error {
	_, err := s.db.ExecContext(ctx, `WITH saved AS (
			INSERT INTO job_stats (job_id, stats) VALUES (?, ?)
			ON CONFLICT (job_id) DO UPDATE SET stats = excluded.stats, created = now())
		UPDATE jobs SET peak_memory_bytes = coalesce(?, peak_memory_bytes) WHERE jid = ?`,
		jobID, string(replaceUnstorableEscapes(stats)), peakMemory(stats), jobID)
	return mapError("save job stats", err)
}

// peakMemory reads a job's peak memory in bytes from its Scrapy stats: estela's
// resources/peak_memory_bytes when present, else the memusage extension's memusage/max. It
// returns nil when neither is a number.
func peakMemory(stats json.RawMessage) *int64 {
	var s struct {
		Peak   *float64 `json:"resources/peak_memory_bytes"`
		MemMax *float64 `json:"memusage/max"`
	}
	if json.Unmarshal(stats, &s) != nil {
		return nil
	}
	for _, v := range []*float64{s.Peak, s.MemMax} {
		if v != nil && *v >= 0 {
			n := int64(*v)
			return &n
		}
	}
	return nil
}

// JobStats returns the stored final stats of a job.
func (s *Store) JobStats(ctx context.Context, jobID int64) (json.RawMessage, error) {
	var stats string
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&stats), "SELECT stats FROM job_stats WHERE job_id = ?", jobID)
	return json.RawMessage(stats), mapError("load job stats", err)
}

// CountJobData returns how many records of a kind a job has, from the batch ledger.
func (s *Store) CountJobData(ctx context.Context, jobID int64, kind DataKind) (int, error) {
	jobs, err := s.dataJobs(ctx, jobID, kind)
	if err != nil {
		return 0, err
	}
	var n int
	_, err = s.db.QueryOneContext(ctx, pg.Scan(&n), "SELECT coalesce(sum(records), 0) FROM job_data_batches WHERE job_id = ANY(?) AND kind = ?", pg.Array(jobs), kind)
	return n, mapError("count job data", err)
}

// DataRecord is one stored record with its position, usable as a keyset cursor.
type DataRecord struct {
	ID   int64
	Data json.RawMessage
}

// JobDataPage returns records of a kind in storage order, skipping offset records.
func (s *Store) JobDataPage(ctx context.Context, jobID int64, kind DataKind, page Page) ([]DataRecord, error) {
	jobs, err := s.dataJobs(ctx, jobID, kind)
	if err != nil {
		return nil, err
	}
	return s.jobData(ctx, "job_id = ANY(?) AND kind = ? ORDER BY id OFFSET ? LIMIT ?", pg.Array(jobs), kind, page.Offset, page.Limit)
}

// JobDataAfter returns up to limit records of a kind that follow the record with id after.
func (s *Store) JobDataAfter(ctx context.Context, jobID int64, kind DataKind, after int64, limit int) ([]DataRecord, error) {
	jobs, err := s.dataJobs(ctx, jobID, kind)
	if err != nil {
		return nil, err
	}
	return s.jobData(ctx, "job_id = ANY(?) AND kind = ? AND id > ? ORDER BY id LIMIT ?", pg.Array(jobs), kind, after, limit)
}

func (s *Store) jobData(ctx context.Context, where string, params ...any) ([]DataRecord, error) {
	var rows []struct {
		ID   int64
		Data string
	}
	_, err := s.db.QueryContext(ctx, &rows, "SELECT id, data::text AS data FROM job_data WHERE "+where, params...)
	if err != nil {
		return nil, mapError("read job data", err)
	}
	out := make([]DataRecord, len(rows))
	for i, r := range rows {
		out[i] = DataRecord{ID: r.ID, Data: json.RawMessage(r.Data)}
	}
	return out, nil
}

// ExportJobData streams every record of a kind, one JSON document per line, straight
// from COPY TO STDOUT, so memory stays flat whatever the number of records.
func (s *Store) ExportJobData(ctx context.Context, jobID int64, kind DataKind, w io.Writer) error {
	jobs, err := s.dataJobs(ctx, jobID, kind)
	if err != nil {
		return err
	}
	ids := make([]string, len(jobs))
	for i, id := range jobs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	uw := &copyUnescaper{w: bufio.NewWriterSize(w, 64<<10)}
	// COPY takes no parameters; the ids are integers formatted here.
	query := fmt.Sprintf("COPY (SELECT data FROM job_data WHERE job_id IN (%s) AND kind = %d ORDER BY id) TO STDOUT", strings.Join(ids, ","), kind)
	if _, err := s.exports.WithContext(ctx).CopyTo(uw, query); err != nil {
		return mapError("export job data", err)
	}
	return uw.w.Flush()
}

// copyUnescaper turns COPY text-format output of one column back into raw lines.
type copyUnescaper struct {
	w       *bufio.Writer
	pending bool // the previous chunk ended with a backslash
}

// Write copies each run of bytes up to the next backslash in one call, because a call per
// byte cost most of an export's CPU time.
func (u *copyUnescaper) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if u.pending {
			u.pending = false
			if err := u.w.WriteByte(unescapeCopyByte(p[0])); err != nil {
				return 0, err
			}
			p = p[1:]
			continue
		}
		run := p
		if i := bytes.IndexByte(p, '\\'); i >= 0 {
			run, p = p[:i], p[i+1:]
			u.pending = true
		} else {
			p = nil
		}
		if _, err := u.w.Write(run); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// unescapeCopyByte returns the byte that a backslash followed by c encodes in COPY text format.
func unescapeCopyByte(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c
}

// LogFilter narrows a job's log lines: Level keeps lines of that level ("] LEVEL: " in the
// line, as Scrapy formats them), Search keeps lines containing the text, ignoring case.
type LogFilter struct {
	Level  string
	Search string
}

func (f LogFilter) empty() bool { return f.Level == "" && f.Search == "" }

func (f LogFilter) where() (string, []any) {
	where := ""
	var params []any
	if f.Level != "" {
		where += " AND data->>'log' LIKE ?"
		params = append(params, "%] "+escapeLike(f.Level)+": %")
	}
	if f.Search != "" {
		where += " AND data->>'log' ILIKE ?"
		params = append(params, "%"+escapeLike(f.Search)+"%")
	}
	return where, params
}

// FilteredLogs returns one page of a job's log lines that pass the filter, and how many pass.
func (s *Store) FilteredLogs(ctx context.Context, jobID int64, f LogFilter, page Page) ([]DataRecord, int, error) {
	where, params := f.where()
	var count int
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM job_data WHERE job_id = ? AND kind = ?"+where,
		append([]any{jobID, DataLogs}, params...)...)
	if err != nil {
		return nil, 0, mapError("count log lines", err)
	}
	records, err := s.jobData(ctx, "job_id = ? AND kind = ?"+where+" ORDER BY id OFFSET ? LIMIT ?",
		append(append([]any{jobID, DataLogs}, params...), page.Offset, page.Limit)...)
	return records, count, err
}

// DeleteJobData removes every record of a kind from a job and returns how many there were.
// When the job has no items, requests or logs left, its data status becomes DELETED.
func (s *Store) DeleteJobData(ctx context.Context, jobID int64, kind DataKind) (int, error) {
	var deleted int
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM job_data WHERE job_id = ? AND kind = ?", jobID, kind)
		if err != nil {
			return mapError("delete job data", err)
		}
		deleted = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `WITH batches AS (
				DELETE FROM job_data_batches WHERE job_id = ? AND kind = ? RETURNING bytes)
			UPDATE jobs SET storage_bytes = storage_bytes - (SELECT coalesce(sum(bytes), 0) FROM batches)
			WHERE jid = ?`, jobID, kind, jobID); err != nil {
			return mapError("delete job data batches", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET data_status = 'DELETED' WHERE jid = ?
			AND NOT EXISTS (SELECT 1 FROM job_data WHERE job_id = ?)`, jobID, jobID)
		return mapError("mark job data deleted", err)
	})
	return deleted, err
}
