-- +goose Up
-- Password-reset and email-verification tokens. Only SHA-256 hashes are
-- stored; a token is spent by setting used_at.
CREATE TABLE recovery_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX recovery_tokens_user_idx ON recovery_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX recovery_tokens_expires_idx ON recovery_tokens (expires_at);
CREATE INDEX recovery_tokens_used_idx ON recovery_tokens (used_at) WHERE used_at IS NOT NULL;

-- The mail outbox. payload is the sealed template data; it is wiped once the
-- message is sent or abandoned. A claimed row is leased until claimed_until
-- to the claim claim_id.
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    template        TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    user_id         UUID,
    payload         BYTEA,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim_id        UUID,
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT '',
    sent_at         TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ
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
