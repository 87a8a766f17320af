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
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('totp', 'webauthn')),
    name         TEXT NOT NULL,
    verified_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    totp_secret  BYTEA
);
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id, created_at);

-- WebAuthn credentials: the credential id in the clear (it is looked up),
-- the library's credential record sealed.
CREATE TABLE mfa_webauthn_credentials (
    factor_id       UUID PRIMARY KEY REFERENCES mfa_factors (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL,
    credential_id   BYTEA NOT NULL UNIQUE,
    credential      BYTEA NOT NULL,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backed_up       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX mfa_webauthn_credentials_user_idx ON mfa_webauthn_credentials (user_id);

-- Pending WebAuthn ceremonies: only the SHA-256 of the challenge is stored.
CREATE TABLE mfa_challenges (
    challenge_hash BYTEA PRIMARY KEY,
    kind           TEXT NOT NULL,
    user_id        UUID,
    session_id     UUID,
    data           BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);

-- Recovery codes, as SHA-256 hashes.
CREATE TABLE mfa_recovery_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- The TOTP time steps already used per factor, so a code is accepted once.
CREATE TABLE mfa_totp_steps (
    factor_id UUID NOT NULL REFERENCES mfa_factors (id) ON DELETE CASCADE,
    step      BIGINT NOT NULL,
    used_at   TIMESTAMPTZ NOT NULL,
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
