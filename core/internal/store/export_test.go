package store

import "context"

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
