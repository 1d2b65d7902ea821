-- Account self-service: activation and password-reset links, and unique e-mail addresses.

-- Single-use links sent by e-mail. Only a SHA-256 of each token is kept. A token is spent when
-- used is set; every token of a user and purpose is spent together once one of them succeeds.
CREATE TABLE account_tokens (
	id          bigserial PRIMARY KEY,
	user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	purpose     text NOT NULL CHECK (purpose IN ('activation', 'password_reset')),
	token_hash  bytea NOT NULL UNIQUE,
	created     timestamptz NOT NULL DEFAULT now(),
	expires     timestamptz NOT NULL,
	used        timestamptz
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose, created);

-- Registration and password reset find a user by e-mail, so an address may belong to one
-- user only, compared case-insensitively. Users made without an address (the bootstrap
-- superuser) keep the empty string, which is exempt.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
