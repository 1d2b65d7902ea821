package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

// Purposes of account tokens, the single-use secrets in e-mailed links.
const (
	PurposeActivation    = "activation"
	PurposePasswordReset = "password_reset"
)

var (
	// ErrUsernameTaken is returned when another user has the username.
	ErrUsernameTaken = fmt.Errorf("username already taken: %w", ErrConflict)
	// ErrEmailTaken is returned when another user has the e-mail address, in any letter case.
	ErrEmailTaken = fmt.Errorf("email already taken: %w", ErrConflict)
)

// mapUserError maps errors as mapError does and also names the unique column of users that a
// write violated.
func mapUserError(op string, err error) error {
	var pgErr pg.Error
	if errors.As(err, &pgErr) && pgErr.Field('C') == "23505" {
		switch pgErr.Field('n') {
		case "users_username_key":
			return fmt.Errorf("%s: %w", op, ErrUsernameTaken)
		case "users_email_key":
			return fmt.Errorf("%s: %w", op, ErrEmailTaken)
		}
	}
	return mapError(op, err)
}

// UserByEmail loads the user with an e-mail address, compared case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	u := &User{}
	err := s.db.ModelContext(ctx, u).Where("lower(email) = lower(?) AND email <> ''", email).Select()
	return u, mapError("load user by email", err)
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	users := []User{}
	err := s.db.ModelContext(ctx, &users).Order("username").Select()
	return users, mapError("list users", err)
}

// CreateAccount inserts a user with the identity, password and active flag of u. A taken
// username or e-mail address gives ErrUsernameTaken or ErrEmailTaken.
func (s *Store) CreateAccount(ctx context.Context, u *User) error {
	return insertAccount(ctx, s.db, u)
}

// insertAccount inserts a user with the identity, password and active flag of u and the
// column defaults for the rest, such as memory_quota, and reads the row back into u.
func insertAccount(ctx context.Context, db pg.DBI, u *User) error {
	_, err := db.QueryOneContext(ctx, u, `
		INSERT INTO users (username, email, password_hash, is_active) VALUES (?, ?, ?, ?) RETURNING *`,
		u.Username, u.Email, u.PasswordHash, u.IsActive)
	return mapUserError("create user", err)
}

// Registration is the pair of secrets that RegisterAccount creates with the user.
type Registration struct {
	// ActivationToken goes into the activation link; only its hash is stored.
	ActivationToken string
	// Key is an API token of the user. Authentication with it fails until the user is active.
	Key string
}

// RegisterAccount inserts an inactive user with an activation token valid for ttl and an API
// token, in one transaction.
func (s *Store) RegisterAccount(ctx context.Context, u *User, ttl time.Duration) (Registration, error) {
	var reg Registration
	u.IsActive = false
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		err := insertAccount(ctx, tx, u)
		if err != nil {
			return err
		}
		if reg.ActivationToken, err = issueAccountToken(ctx, tx, u.ID, PurposeActivation, ttl); err != nil {
			return err
		}
		reg.Key, err = s.createToken(ctx, tx, "user_id", u.ID)
		return err
	})
	return reg, err
}

// UpdateAccount changes a user's username and e-mail address.
func (s *Store) UpdateAccount(ctx context.Context, id int64, username, email string) (*User, error) {
	u := &User{}
	_, err := s.db.QueryOneContext(ctx, u, "UPDATE users SET username = ?, email = ? WHERE id = ? RETURNING *", username, email, id)
	return u, mapUserError("update user", err)
}

// DeleteUser deletes a user. Its memberships and tokens go with it, and its deploys lose
// their author.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id)
	if err != nil {
		return mapError("delete user", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("delete user %d: %w", id, ErrNotFound)
	}
	return nil
}

// ChangePassword sets a user's password hash, revokes every API token and pending reset link
// of the user, and returns a new API token, in one transaction.
func (s *Store) ChangePassword(ctx context.Context, userID int64, passwordHash string) (string, error) {
	var key string
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		if err := setPassword(ctx, tx, userID, passwordHash); err != nil {
			return err
		}
		var err error
		key, err = s.createToken(ctx, tx, "user_id", userID)
		return err
	})
	return key, err
}

// ResetPassword spends a password-reset token, sets the password hash and revokes every API
// token of the user, in one transaction. An unknown, spent or expired token gives ErrNotFound
// and changes nothing.
func (s *Store) ResetPassword(ctx context.Context, userID int64, token, passwordHash string) error {
	return s.inTx(ctx, func(tx *pg.Tx) error {
		if err := spendAccountToken(ctx, tx, userID, PurposePasswordReset, token); err != nil {
			return err
		}
		return setPassword(ctx, tx, userID, passwordHash)
	})
}

func setPassword(ctx context.Context, tx *pg.Tx, userID int64, passwordHash string) error {
	res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", passwordHash, userID)
	if err != nil {
		return mapError("set password", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("set password of user %d: %w", userID, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM tokens WHERE user_id = ?", userID); err != nil {
		return mapError("revoke tokens", err)
	}
	_, err = tx.ExecContext(ctx, "UPDATE account_tokens SET used = now() WHERE user_id = ? AND purpose = ? AND used IS NULL",
		userID, PurposePasswordReset)
	return mapError("spend reset tokens", err)
}

// ActivateUser spends an activation token and makes its user active, in one transaction. An
// unknown, spent or expired token gives ErrNotFound and changes nothing.
func (s *Store) ActivateUser(ctx context.Context, userID int64, token string) error {
	return s.inTx(ctx, func(tx *pg.Tx) error {
		if err := spendAccountToken(ctx, tx, userID, PurposeActivation, token); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE users SET is_active = true WHERE id = ?", userID)
		return mapError("activate user", err)
	})
}

// ActivationPending reports whether a user registered itself and has not used any of its
// activation links. Users that an administrator deactivated after activation are not pending,
// so they cannot activate themselves again.
func (s *Store) ActivationPending(ctx context.Context, userID int64) (bool, error) {
	var pending bool
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&pending), `
		SELECT count(*) > 0 AND count(used) = 0 FROM account_tokens WHERE user_id = ? AND purpose = ?`,
		userID, PurposeActivation)
	return pending, mapError("check pending activation", err)
}

// IssueAccountToken stores a new token for a user and purpose, valid for ttl, and returns it.
func (s *Store) IssueAccountToken(ctx context.Context, userID int64, purpose string, ttl time.Duration) (string, error) {
	return issueAccountToken(ctx, s.db, userID, purpose, ttl)
}

func issueAccountToken(ctx context.Context, db pg.DBI, userID int64, purpose string, ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate account token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	_, err := db.ExecContext(ctx, `
		INSERT INTO account_tokens (user_id, purpose, token_hash, expires)
		VALUES (?, ?, ?, now() + ? * interval '1 microsecond')`, userID, purpose, hashKey(token), ttl.Microseconds())
	if err != nil {
		return "", mapError("issue account token", err)
	}
	return token, nil
}

// CheckAccountToken returns nil when a token of the user and purpose is unspent and unexpired,
// and ErrNotFound otherwise. It spends nothing.
func (s *Store) CheckAccountToken(ctx context.Context, userID int64, purpose, token string) error {
	var id int64
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&id), `
		SELECT id FROM account_tokens
		WHERE user_id = ? AND purpose = ? AND token_hash = ? AND used IS NULL AND expires > now()`,
		userID, purpose, hashKey(token))
	return mapError("check account token", err)
}

// spendAccountToken marks a valid token used, and with it every other unspent token of the
// same user and purpose. The row lock of the UPDATE makes a token single-use even under
// concurrent requests: the second one finds it spent.
func spendAccountToken(ctx context.Context, tx *pg.Tx, userID int64, purpose, token string) error {
	res, err := tx.ExecContext(ctx, `
		UPDATE account_tokens SET used = now()
		WHERE user_id = ? AND purpose = ? AND token_hash = ? AND used IS NULL AND expires > now()`,
		userID, purpose, hashKey(token))
	if err != nil {
		return mapError("spend account token", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("spend %s token of user %d: %w", purpose, userID, ErrNotFound)
	}
	_, err = tx.ExecContext(ctx, "UPDATE account_tokens SET used = now() WHERE user_id = ? AND purpose = ? AND used IS NULL",
		userID, purpose)
	return mapError("spend other account tokens", err)
}

// CountAccountTokens returns how many tokens of a user and purpose were issued within the
// last window, for rate limits.
func (s *Store) CountAccountTokens(ctx context.Context, userID int64, purpose string, window time.Duration) (int, error) {
	var n int
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&n), `
		SELECT count(*) FROM account_tokens
		WHERE user_id = ? AND purpose = ? AND created > now() - ? * interval '1 microsecond'`,
		userID, purpose, window.Microseconds())
	return n, mapError("count account tokens", err)
}

// DeleteUserToken revokes one API token of a user. A key that is not the user's gives
// ErrNotFound.
func (s *Store) DeleteUserToken(ctx context.Context, userID int64, key string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM tokens WHERE user_id = ? AND key_hash = ?", userID, hashKey(key))
	if err != nil {
		return mapError("revoke token", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("revoke token of user %d: %w", userID, ErrNotFound)
	}
	return nil
}

// DeleteUserTokens revokes every API token of a user and returns how many there were.
func (s *Store) DeleteUserTokens(ctx context.Context, userID int64) (int, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM tokens WHERE user_id = ?", userID)
	if err != nil {
		return 0, mapError("revoke tokens", err)
	}
	return res.RowsAffected(), nil
}
