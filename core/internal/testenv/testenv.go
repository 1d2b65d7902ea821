// Package testenv gives tests a fresh PostgreSQL database and a private Redis namespace on the
// services that `make test` starts (DATABASE_URL and REDIS_URL). A template database with every
// migration applied is made once per run and cloned for each test.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-pg/pg/v10"

	"github.com/estela-go/estela-go/core/internal/store"
)

// requireEnv is set by `make test`: missing services then fail tests instead of skipping them.
const requireEnv = "ESTELA_TEST_REQUIRE_SERVICES"

func lookup(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv(requireEnv) != "" {
			t.Fatalf("%s is not set; run the tests with `make test`", name)
		}
		t.Skipf("%s is not set; run the tests with `make test`", name)
	}
	return v
}

// DatabaseURL returns the URL of a new database cloned from the migrated template. The
// database is dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	admin := lookup(t, "DATABASE_URL")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	template, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	name := "test_" + randomHex(8)
	db := connect(t, admin)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE ? TEMPLATE ?", pg.Ident(name), pg.Ident(template)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db := connect(t, admin)
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS ? WITH (FORCE)", pg.Ident(name))
	})
	return withDatabase(t, admin, name)
}

// EmptyDatabaseURL returns the URL of a new database without any table, for tests of the
// migrations themselves. The database is dropped when the test ends.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	admin := lookup(t, "DATABASE_URL")
	name := "test_empty_" + randomHex(8)
	db := connect(t, admin)
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE ?", pg.Ident(name)); err != nil {
		t.Fatalf("create empty test database: %v", err)
	}
	t.Cleanup(func() {
		db := connect(t, admin)
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS ? WITH (FORCE)", pg.Ident(name))
	})
	return withDatabase(t, admin, name)
}

// Store opens a store on a fresh database and closes it when the test ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), DatabaseURL(t), store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// RedisURL returns the URL of the test Redis.
func RedisURL(t testing.TB) string {
	t.Helper()
	return lookup(t, "REDIS_URL")
}

// Namespace returns a Redis key prefix of the test's own, so tests never see each other's keys.
func Namespace() string {
	return "test-" + randomHex(6)
}

// ensureTemplate creates the template database for the current migrations once; its name
// carries a hash of the migrations so a changed migration gets a new template.
func ensureTemplate(ctx context.Context, admin string) (string, error) {
	migrations, err := store.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migrations {
		h.Write([]byte(m.Name))
		h.Write([]byte(m.SQL))
	}
	name := "estela_template_" + hex.EncodeToString(h.Sum(nil))[:12]

	opts, err := pg.ParseURL(admin)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	db := pg.Connect(opts)
	defer db.Close()
	// Test binaries of several packages run at once: one of them creates the template.
	if _, err := db.ExecContext(ctx, "SELECT pg_advisory_lock(7234002)"); err != nil {
		return "", fmt.Errorf("lock template creation: %w", err)
	}
	defer db.ExecContext(ctx, "SELECT pg_advisory_unlock(7234002)")
	var exists bool
	if _, err := db.QueryOneContext(ctx, pg.Scan(&exists), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)", name); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS ? WITH (FORCE)", pg.Ident(building)); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE ?", pg.Ident(building)); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + building
	st, err := store.Open(ctx, u.String(), store.Options{})
	if err != nil {
		return "", err
	}
	_, err = st.Migrate(ctx)
	st.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := db.ExecContext(ctx, "ALTER DATABASE ? RENAME TO ?", pg.Ident(building), pg.Ident(name)); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	return name, nil
}

func connect(t testing.TB, admin string) *pg.DB {
	t.Helper()
	opts, err := pg.ParseURL(admin)
	if err != nil {
		t.Fatalf("parse DATABASE_URL: %v", err)
	}
	return pg.Connect(opts)
}

func withDatabase(t testing.TB, admin, name string) string {
	t.Helper()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
