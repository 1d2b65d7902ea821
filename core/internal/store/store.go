// Package store keeps the platform's durable state in PostgreSQL: users and tokens, projects,
// spiders, deploys, jobs, cron jobs and job data. It is the only package that imports go-pg;
// driver errors become ErrNotFound or ErrConflict here, once.
package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/go-pg/pg/v10"
)

var (
	// ErrNotFound is returned when a looked-up row does not exist (or is soft-deleted).
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write breaks a uniqueness or state rule.
	ErrConflict = errors.New("conflict")
)

// Store is the PostgreSQL-backed repository for every table of the platform.
type Store struct {
	db *pg.DB
	// exports serves the downloads, which hold a connection for as long as a client reads.
	// With a pool of their own, slow downloads cannot take every connection from requests.
	exports *pg.DB
	// ingest stores the batches that jobs send. Each batch holds a connection while its rows
	// are copied, tens of milliseconds under load. With a pool of their own, running jobs
	// cannot take every connection from requests.
	ingest *pg.DB
}

// Options tunes Open. Zero fields take their defaults.
type Options struct {
	// PoolSize is the number of connections for statements and transactions, DefaultPoolSize()
	// when zero.
	PoolSize int
}

// exportConnections is the number of downloads that stream at once. More wait for a connection.
const exportConnections = 16

// ingestConnections is the number of job data batches stored at once. More wait for a
// connection.
const ingestConnections = 8

// DefaultPoolSize returns twice the number of CPU cores the process may use, between 4 and 20.
//
// Requests beyond the pool size wait for a connection in the order they came. A larger pool
// lets them wait inside Postgres instead, where they share its cores and each takes longer.
// With 16 concurrent job list requests on 2 cores, the 99th percentile was 57 ms at 1,347
// requests/s with 20 connections, and 21 ms at 1,189 requests/s with 4. The process's cores
// stand in for the database's, which the process cannot see. The cap of 20, the earlier
// fixed size, keeps several processes on large machines within Postgres's default
// max_connections of 100.
func DefaultPoolSize() int {
	return min(20, max(4, 2*runtime.GOMAXPROCS(0)))
}

// Open connects to the database at url (postgres://...) and checks the connection.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	opts, err := pg.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	opts.PoolSize = o.PoolSize
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize()
	}
	opts.DialTimeout = 5 * time.Second
	db := pg.Connect(opts)
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database %s:%s: %w", opts.Addr, opts.Database, err)
	}
	exportOpts := *opts
	exportOpts.PoolSize = exportConnections
	ingestOpts := *opts
	ingestOpts.PoolSize = ingestConnections
	return &Store{db: db, exports: pg.Connect(&exportOpts), ingest: pg.Connect(&ingestOpts)}, nil
}

// Close closes every connection of the pools.
func (s *Store) Close() error {
	return errors.Join(s.db.Close(), s.exports.Close(), s.ingest.Close())
}

// Ping checks that the database responds.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.Ping(ctx)
}

// mapError turns driver errors into the package's sentinel errors, keeping the rest wrapped.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pg.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var pgErr pg.Error
	if errors.As(err, &pgErr) {
		switch pgErr.Field('C') {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w: %s", op, ErrConflict, pgErr.Field('D'))
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w", op, ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// inTx runs fn in a transaction that is committed when fn returns nil and rolled back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *pg.Tx) error) error {
	return s.db.RunInTransaction(ctx, fn)
}
