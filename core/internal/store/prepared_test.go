package store_test

import (
	"context"
	"testing"

	"github.com/go-pg/pg/v10"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

func TestPreparedStatementText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query, prepare, execute string
	}{
		{"SELECT 1", "PREPARE s AS SELECT 1", "EXECUTE s"},
		{"SELECT * FROM t WHERE a = ?", "PREPARE s AS SELECT * FROM t WHERE a = $1", "EXECUTE s(?)"},
		{"SELECT ? + ?, ?", "PREPARE s AS SELECT $1 + $2, $3", "EXECUTE s(?, ?, ?)"},
	}
	for _, tt := range tests {
		prepare, execute := store.PreparedStatements("s", tt.query)
		if prepare != tt.prepare {
			t.Errorf("PREPARE of %q = %q, want %q", tt.query, prepare, tt.prepare)
		}
		if execute != tt.execute {
			t.Errorf("EXECUTE of %q = %q, want %q", tt.query, execute, tt.execute)
		}
	}
}

// preparedHere is a query whose result shows whether it ran as a prepared statement, because
// only then does its session hold the statement.
const preparedHere = `SELECT count(*) AS n FROM pg_prepared_statements WHERE name = 'estela_test_here' AND ? > 0`

func TestPreparedQueryRunsPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	for i := range 3 {
		var n int
		if err := st.QueryPrepared(ctx, pg.Scan(&n), "estela_test_here", preparedHere, "", 1); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if n != 1 {
			t.Errorf("call %d found %d statements named estela_test_here in its session, want 1", i, n)
		}
	}
}

// A session that keeps no prepared statement, as behind a pooler in transaction mode, runs the
// query as plain text.
func TestPreparedQueryWithoutStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	var n int
	if err := st.QueryPrepared(ctx, pg.Scan(&n), "estela_test_here", preparedHere, "SELECT 1", 1); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the plain query found %d statements named estela_test_here, want 0", n)
	}
}

// A statement prepared before a table gained a column is prepared again, and its rows have the
// new column.
func TestPreparedQueryAfterColumnAdded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts, err := pg.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db := pg.Connect(opts)
	defer db.Close()

	if _, err := db.Exec("CREATE TABLE shelf (a int); INSERT INTO shelf VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	const query = "SELECT * FROM shelf WHERE a = ?"
	var before []struct{ A, B int }
	for range 3 {
		if err := st.QueryPrepared(ctx, &before, "estela_test_shelf", query, "", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("ALTER TABLE shelf ADD COLUMN b int NOT NULL DEFAULT 7"); err != nil {
		t.Fatal(err)
	}
	var after []struct{ A, B int }
	if err := st.QueryPrepared(ctx, &after, "estela_test_shelf", query, "", 1); err != nil {
		t.Fatalf("query after the column was added: %v", err)
	}
	if len(after) != 1 || after[0].B != 7 {
		t.Errorf("rows after the column was added = %+v, want one row with b = 7", after)
	}
}
