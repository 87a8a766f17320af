-- +goose Up
-- Email sign-in links and codes (issue 25). Expand only: a new table that
-- an instance of the previous release never reads.
--
-- One pending challenge per address: a new request replaces it. Neither
-- secret is stored: token_hash is the SHA-256 of the link's token,
-- code_hash an HMAC-SHA-256 of the email and the 6-digit code under a
-- server secret. A challenge is spent by deleting it; attempts counts the
-- wrong codes, taken before each check.
CREATE TABLE otp_challenges (
    id          UUID PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    token_hash  BYTEA NOT NULL UNIQUE,
    code_hash   BYTEA NOT NULL,
    create_user BOOLEAN NOT NULL DEFAULT FALSE,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX otp_challenges_expires_idx ON otp_challenges (expires_at);

-- +goose Down
DROP TABLE otp_challenges;
