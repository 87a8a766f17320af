-- +goose Up
-- Assurance (issue 21). Expand only: new columns with defaults, so an
-- instance of the previous release keeps working on the migrated database.

-- When the session last verified a second factor (NULL: never, or before
-- this release; its login time stands in). aal2 operations need it recent.
ALTER TABLE sessions ADD COLUMN mfa_at TEXT;

-- The session that started a pending enrolment: only it may confirm it.
ALTER TABLE mfa_factors ADD COLUMN session_id TEXT;

-- Whether a passkey may sign in alone. A password reset turns it off for
-- every passkey registered before it (they stay second factors).
ALTER TABLE mfa_webauthn_credentials ADD COLUMN passwordless INTEGER NOT NULL DEFAULT 1;

-- Consecutive failed second-factor attempts, and when they locked the
-- account's second factors (until a recovery code or a password reset).
ALTER TABLE users ADD COLUMN mfa_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mfa_locked_at TEXT;

-- An organization that requires a verified second factor of its members.
ALTER TABLE organizations ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE organizations DROP COLUMN require_mfa;
ALTER TABLE users DROP COLUMN mfa_locked_at;
ALTER TABLE users DROP COLUMN mfa_failures;
ALTER TABLE mfa_webauthn_credentials DROP COLUMN passwordless;
ALTER TABLE mfa_factors DROP COLUMN session_id;
ALTER TABLE sessions DROP COLUMN mfa_at;
