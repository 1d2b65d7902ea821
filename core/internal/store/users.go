package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

// UserByID loads a user.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u := &User{}
	err := s.db.ModelContext(ctx, u).Where("id = ?", id).Select()
	return u, mapError("load user", err)
}

// UserByUsername loads a user by login name.
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	u := &User{}
	err := s.db.ModelContext(ctx, u).Where("username = ?", username).Select()
	return u, mapError("load user", err)
}

// UpsertSuperuser creates the user, or updates its password hash and makes it an active
// superuser when it exists. It returns true when the user was created.
func (s *Store) UpsertSuperuser(ctx context.Context, username, email, passwordHash string) (bool, error) {
	var created bool
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&created), `
		INSERT INTO users (username, email, password_hash, is_active, is_staff, is_superuser)
		VALUES (?, ?, ?, true, true, true)
		ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,
			is_active = true, is_staff = true, is_superuser = true
		RETURNING (xmax = 0)`, username, email, passwordHash)
	return created, mapError("upsert superuser", err)
}

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	_, err := s.db.ModelContext(ctx, u).Returning("*").Insert()
	return mapError("create user", err)
}

// TouchLogin records a successful login.
func (s *Store) TouchLogin(ctx context.Context, userID int64) error {
	_, err := s.db.ExecContext(ctx, "UPDATE users SET last_login = now() WHERE id = ?", userID)
	return mapError("record login", err)
}

// Principal is who a token acts for: a user, a single job, or a single deploy's build.
type Principal struct {
	User     *User
	JobID    int64
	DeployID int64
}

// NewTokenKey returns a random 40-hex-digit key, the shape estela clients expect.
func NewTokenKey() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// CreateUserToken makes a new token for a user and returns its key; only a hash is stored.
func (s *Store) CreateUserToken(ctx context.Context, userID int64) (string, error) {
	return s.createToken(ctx, s.db, "user_id", userID)
}

// CreateJobToken makes a token that may only report on one job.
func (s *Store) CreateJobToken(ctx context.Context, jobID int64) (string, error) {
	return s.createToken(ctx, s.db, "job_id", jobID)
}

func (s *Store) createToken(ctx context.Context, db pg.DBI, column string, ownerID int64) (string, error) {
	key, err := NewTokenKey()
	if err != nil {
		return "", err
	}
	_, err = db.ExecContext(ctx, "INSERT INTO tokens (key_hash, ?) VALUES (?, ?)", pg.Ident(column), hashKey(key), ownerID)
	if err != nil {
		return "", mapError("create token", err)
	}
	return key, nil
}

var authenticateQuery = newPreparedQuery("estela_authenticate", `SELECT t.job_id AS token_job_id,
	t.deploy_id AS token_deploy_id, u.* FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.key_hash = ?`)

// Authenticate resolves a token key to the principal it acts for. Unknown keys and keys of
// inactive users give ErrNotFound.
func (s *Store) Authenticate(ctx context.Context, key string) (*Principal, error) {
	// One round trip reads the token and, for a user token, its user: every request pays it.
	var row struct {
		JobID    *int64 `pg:"token_job_id"`
		DeployID *int64 `pg:"token_deploy_id"`
		User
	}
	_, err := s.queryPrepared(ctx, &row, true, authenticateQuery, hashKey(key))
	if err != nil {
		return nil, mapError("authenticate", err)
	}
	if row.JobID != nil {
		return s.jobPrincipal(ctx, *row.JobID)
	}
	if row.DeployID != nil {
		return &Principal{DeployID: *row.DeployID}, nil
	}
	if !row.User.IsActive {
		return nil, fmt.Errorf("authenticate: user inactive: %w", ErrNotFound)
	}
	u := row.User
	return &Principal{User: &u}, nil
}

// CreateDeployToken makes a token that may only fetch one deploy's archive and report its
// result.
func (s *Store) CreateDeployToken(ctx context.Context, deployID int64) (string, error) {
	return s.createToken(ctx, s.db, "deploy_id", deployID)
}

// DeleteDeployTokens revokes every token of a deploy.
func (s *Store) DeleteDeployTokens(ctx context.Context, deployID int64) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM tokens WHERE deploy_id = ?", deployID)
	return mapError("delete deploy tokens", err)
}

// JobTokenGrace is how long a job token keeps working after its job ended, so that a stopped
// or failed job can still send the data it buffered while it shuts down.
const JobTokenGrace = 10 * time.Minute

func (s *Store) jobPrincipal(ctx context.Context, jid int64) (*Principal, error) {
	var usable bool
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&usable), `SELECT status NOT IN (?, ?, ?) OR status_changed > now() - ?::interval
		FROM jobs WHERE jid = ?`, JobCompleted, JobError, JobStopped, fmt.Sprintf("%d seconds", int(JobTokenGrace.Seconds())), jid)
	if err != nil {
		return nil, mapError("authenticate job token", err)
	}
	if !usable {
		return nil, fmt.Errorf("authenticate: job %d ended: %w", jid, ErrNotFound)
	}
	return &Principal{JobID: jid}, nil
}

// DeleteJobTokens revokes every token of a job.
func (s *Store) DeleteJobTokens(ctx context.Context, jobID int64) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM tokens WHERE job_id = ?", jobID)
	return mapError("delete job tokens", err)
}
