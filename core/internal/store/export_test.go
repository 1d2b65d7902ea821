package store

import (
	"context"

	"github.com/go-pg/pg/v10"
)

// QueryPrepared runs query as the prepared statement name, the way the store runs its
// frequent statements. A non-empty prepare replaces the PREPARE statement, so that a test can
// imitate a session that does not keep prepared statements.
func (s *Store) QueryPrepared(ctx context.Context, model any, name, query, prepare string, params ...any) error {
	q := newPreparedQuery(name, query)
	if prepare != "" {
		q.prepare = prepare
	}
	_, err := s.queryPrepared(ctx, model, false, q, params...)
	return err
}

// PreparedStatements returns the PREPARE and EXECUTE statements made for query.
func PreparedStatements(name, query string) (prepare, execute string) {
	q := newPreparedQuery(name, query)
	return q.prepare, q.execute
}

// Exec runs a statement on one connection of the store's pool; with a pool of one, the one
// that the store's own queries use.
func (s *Store) Exec(ctx context.Context, query string, params ...any) error {
	_, err := s.db.ExecContext(ctx, query, params...)
	return err
}

// QueryInt64 runs a query that returns one bigint, as Exec does.
func (s *Store) QueryInt64(ctx context.Context, query string, params ...any) (int64, error) {
	var n int64
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&n), query, params...)
	return n, err
}

// ListJobsWithReflection reads the same page as ListJobs without a filter, through go-pg's
// reflection instead of the job list's own scanners.
func (s *Store) ListJobsWithReflection(ctx context.Context, pid string, sid int64, page Page) ([]Job, int, error) {
	var rows []struct {
		Total int      `pg:"list_total"`
		Role  string   `pg:"list_role"`
		Vars  []EnvVar `pg:"list_env_vars,type:jsonb"`
		// The caller's columns, which the scanners test elsewhere.
		CallerID        *int64 `pg:"list_caller_id"`
		CallerSuperuser *bool  `pg:"list_caller_superuser"`
		CallerStaff     *bool  `pg:"list_caller_staff"`
		Job
	}
	if _, err := s.db.QueryContext(ctx, &rows, listJobsByID.query, 0, sid, pid, page.Offset, page.Limit); err != nil {
		return nil, 0, err
	}
	var jobs []Job
	for _, r := range rows {
		if r.JID != 0 {
			r.Job.EnvVars = r.Vars
			jobs = append(jobs, r.Job)
		}
	}
	if len(rows) == 0 {
		return nil, 0, nil
	}
	return jobs, rows[0].Total, nil
}
