package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-pg/pg/v10"
)

// preparedQuery is a statement that every request runs, prepared on each connection the
// first time it runs there. go-pg sends each query as text to be parsed and planned, and for
// the short statements of authentication and role checks the planning takes several times as
// long as the execution.
//
// The statement is prepared lazily rather than when a connection opens, so that a connection
// opened before the migrations (or after a migration that changed a table's columns) prepares
// it against the current tables. Only statements run outside transactions are prepared: a
// failed EXECUTE would abort a transaction.
type preparedQuery struct {
	name string
	// query has go-pg's ? placeholders. It runs as is when the statement cannot be prepared,
	// behind a pooler that moves sessions between server connections, for example.
	query   string
	prepare string
	execute string
}

// newPreparedQuery makes a prepared query from a query whose parameters are all ? placeholders,
// in order. The query must contain no other question mark.
func newPreparedQuery(name, query string) *preparedQuery {
	var prepare, execute strings.Builder
	n := 0
	prepare.WriteString("PREPARE " + name + " AS ")
	for _, part := range strings.SplitAfter(query, "?") {
		if !strings.HasSuffix(part, "?") {
			prepare.WriteString(part)
			continue
		}
		n++
		prepare.WriteString(strings.TrimSuffix(part, "?") + "$" + strconv.Itoa(n))
	}
	execute.WriteString("EXECUTE " + name)
	if n > 0 {
		execute.WriteString("(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")")
	}
	return &preparedQuery{name: name, query: query, prepare: prepare.String(), execute: execute.String()}
}

// genericPlans makes Postgres plan each prepared statement once per connection. Left to
// choose, it plans the job list on every call, because the estimated cost of a plan for any
// page size and offset exceeds that of a plan for the given ones, though both plans are the
// same. That higher estimate also passes jit_above_cost, and JIT compiling took 10 to 35 ms on
// each call of a statement that runs in 0.5 ms, so JIT is turned off too.
//
// Both settings last for the session. plan_cache_mode applies to prepared statements and
// PL/pgSQL statements only, so a statement whose best plan depends on its parameters' values
// must not be prepared this way. Without JIT, a long analytical query on the same connection
// runs interpreted; the store has none.
const genericPlans = "SET plan_cache_mode = force_generic_plan; SET jit = off; "

// Postgres error codes after which a prepared statement is made again.
const (
	codeUnknownStatement   = "26000" // invalid_sql_statement_name: not prepared on this connection
	codeCachedPlanChanged  = "0A000" // feature_not_supported: a table's columns changed since PREPARE
	codeStatementDuplicate = "42P05" // duplicate_prepared_statement
)

// queryPrepared runs q with params on one connection of the pool, preparing it there first when
// needed, and scans the rows into model as QueryContext does. With expectOne set, it expects
// exactly one row, as QueryOneContext does.
func (s *Store) queryPrepared(ctx context.Context, model any, expectOne bool, q *preparedQuery, params ...any) (pg.Result, error) {
	conn := s.db.Conn()
	defer conn.Close()
	run := func(query string) (pg.Result, error) {
		if expectOne {
			return conn.QueryOneContext(ctx, model, query, params...)
		}
		return conn.QueryContext(ctx, model, query, params...)
	}

	res, err := run(q.execute)
	switch pgErrorCode(err) {
	case codeUnknownStatement:
	case codeCachedPlanChanged:
		if _, derr := conn.ExecContext(ctx, "DEALLOCATE "+q.name); derr != nil {
			return nil, fmt.Errorf("deallocate statement %s: %w", q.name, derr)
		}
	default:
		return res, err
	}
	if _, perr := conn.ExecContext(ctx, genericPlans+q.prepare); perr != nil && pgErrorCode(perr) != codeStatementDuplicate {
		return nil, fmt.Errorf("prepare statement %s: %w", q.name, perr)
	}
	res, err = run(q.execute)
	if pgErrorCode(err) == codeUnknownStatement {
		// The session did not keep the statement: a pooler in transaction mode gives each
		// statement any server connection.
		return run(q.query)
	}
	return res, err
}

// pgErrorCode returns the SQLSTATE of a Postgres error, or "" for any other error.
func pgErrorCode(err error) string {
	var pgErr pg.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C')
	}
	return ""
}
