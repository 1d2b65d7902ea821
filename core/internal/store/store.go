// Package store keeps the platform's durable state in PostgreSQL: users and tokens, projects,
// spiders, deploys, jobs, cron jobs and job data. It is the only package that imports go-pg;
// driver errors become ErrNotFound or ErrConflict here, once.
package store

import (
	"context"
	"errors"
	"fmt"
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
}

// Open connects to the database at url (postgres://...) and checks the connection.
func Open(ctx context.Context, url string) (*Store, error) {
	opts, err := pg.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	opts.PoolSize = 20
	opts.DialTimeout = 5 * time.Second
	db := pg.Connect(opts)
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database %s:%s: %w", opts.Addr, opts.Database, err)
	}
	return &Store{db: db}, nil
}

// Close closes every connection of the pool.
func (s *Store) Close() error {
	return s.db.Close()
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
