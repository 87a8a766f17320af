-- +goose Up
-- Expand only: every column is nullable or has a default, so an instance of
-- the previous release keeps working on the migrated database.

-- When the email was verified. Operator power needs a key created after it.
-- Accounts verified before this release count from their last update, which
-- is never earlier than the verification.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
UPDATE users SET email_verified_at = updated_at WHERE email_verified = 1 AND email_verified_at IS NULL;

CREATE INDEX api_keys_org_creator_idx ON api_keys (org_id, created_by) WHERE org_id IS NOT NULL;

-- Account mail (reset, verification) has priority 0 and goes out before
-- notifications (priority 1, invitations). org_id is the organization a
-- notification was sent for, for its quota.
ALTER TABLE mail_outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN org_id TEXT;
CREATE INDEX mail_outbox_prio_due_idx ON mail_outbox (priority, next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (recipient, created_at);
CREATE INDEX mail_outbox_org_idx ON mail_outbox (org_id, created_at) WHERE org_id IS NOT NULL;

-- Invitations to organizations. Only the SHA-256 of the invitation token is
-- stored.
CREATE TABLE org_invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash  BLOB NOT NULL UNIQUE,
    invited_by  TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    accepted_by TEXT,
    revoked_at  TEXT
);
CREATE INDEX org_invitations_org_idx ON org_invitations (org_id, created_at);

-- The audiences an organization's exchanged tokens may name.
CREATE TABLE org_audiences (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    audience   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, audience)
);

-- +goose Down
DROP TABLE org_audiences;
DROP TABLE org_invitations;
DROP INDEX mail_outbox_org_idx;
DROP INDEX mail_outbox_recipient_idx;
DROP INDEX mail_outbox_prio_due_idx;
ALTER TABLE mail_outbox DROP COLUMN org_id;
ALTER TABLE mail_outbox DROP COLUMN priority;
DROP INDEX api_keys_org_creator_idx;
ALTER TABLE users DROP COLUMN email_verified_at;
