-- +goose Up
-- Multi-factor authentication (issue 15). Expand only: new tables, and new
-- columns with defaults on sessions, so an instance of the previous release
-- keeps working on the migrated database (its sessions are aal1 with no
-- recorded methods, which this release reads as a password login).

-- The session's assurance level and authentication methods (RFC 8176,
-- comma-separated).
ALTER TABLE sessions ADD COLUMN aal TEXT NOT NULL DEFAULT 'aal1';
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';

-- Second factors. totp_secret is the seed sealed with LATCH_MASTER_KEY.
CREATE TABLE mfa_factors (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('totp', 'webauthn')),
    name         TEXT NOT NULL,
    verified_at  TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    totp_secret  BLOB
);
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id, created_at);

-- WebAuthn credentials: the credential id in the clear (it is looked up),
-- the library's credential record sealed.
CREATE TABLE mfa_webauthn_credentials (
    factor_id       TEXT PRIMARY KEY REFERENCES mfa_factors (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    credential_id   BLOB NOT NULL UNIQUE,
    credential      BLOB NOT NULL,
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    backed_up       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mfa_webauthn_credentials_user_idx ON mfa_webauthn_credentials (user_id);

-- Pending WebAuthn ceremonies: only the SHA-256 of the challenge is stored.
CREATE TABLE mfa_challenges (
    challenge_hash BLOB PRIMARY KEY,
    kind           TEXT NOT NULL,
    user_id        TEXT,
    session_id     TEXT,
    data           BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);

-- Recovery codes, as SHA-256 hashes.
CREATE TABLE mfa_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (user_id, code_hash)
);

-- The TOTP time steps already used per factor, so a code is accepted once.
CREATE TABLE mfa_totp_steps (
    factor_id TEXT NOT NULL REFERENCES mfa_factors (id) ON DELETE CASCADE,
    step      INTEGER NOT NULL,
    used_at   TEXT NOT NULL,
    PRIMARY KEY (factor_id, step)
);

-- +goose Down
DROP TABLE mfa_totp_steps;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_challenges;
DROP TABLE mfa_webauthn_credentials;
DROP TABLE mfa_factors;
ALTER TABLE sessions DROP COLUMN amr;
ALTER TABLE sessions DROP COLUMN aal;
