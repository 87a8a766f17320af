-- +goose Up
-- Password-reset and email-verification tokens. Only SHA-256 hashes are
-- stored; a token is spent by setting used_at.
CREATE TABLE recovery_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX recovery_tokens_user_idx ON recovery_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX recovery_tokens_expires_idx ON recovery_tokens (expires_at);
CREATE INDEX recovery_tokens_used_idx ON recovery_tokens (used_at) WHERE used_at IS NOT NULL;

-- The mail outbox. payload is the sealed template data; it is wiped once the
-- message is sent or abandoned. A claimed row is leased until claimed_until
-- to the claim claim_id.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    template        TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    user_id         TEXT,
    payload         BLOB,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    expires_at      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim_id        TEXT,
    claimed_until   TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    sent_at         TEXT,
    failed_at       TEXT
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_sent_idx ON mail_outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX mail_outbox_failed_idx ON mail_outbox (failed_at) WHERE failed_at IS NOT NULL;

-- Pruning finds ended sessions by these.
CREATE INDEX sessions_absolute_expires_idx ON sessions (absolute_expires_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_idx;
DROP INDEX sessions_absolute_expires_idx;
DROP TABLE mail_outbox;
DROP TABLE recovery_tokens;
