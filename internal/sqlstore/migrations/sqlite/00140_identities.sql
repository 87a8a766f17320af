-- +goose Up
-- Sign-in with other identity providers (issue 25). Expand only: new tables
-- that the previous release never reads.

-- A user's accounts at identity providers; (provider, subject) names one.
CREATE TABLE identities (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    email             TEXT,
    email_verified    INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    last_sign_in_at   TEXT,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user_idx ON identities (user_id, created_at);

-- Provider sign-ins under way, keyed by the SHA-256 of Latch's state (or of
-- a link token, whose row has no browser yet). browser_hash is the SHA-256
-- of the flow cookie's value; verifier is Latch's PKCE verifier, sealed.
CREATE TABLE provider_flows (
    state_hash     BLOB PRIMARY KEY,
    browser_hash   BLOB,
    provider       TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    verifier       BLOB NOT NULL,
    redirect_to    TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    link_user_id   TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
CREATE INDEX provider_flows_expires_idx ON provider_flows (expires_at);

-- The one-time codes a provider sign-in returns to the application, as
-- SHA-256 hashes, bound to the application's PKCE challenge. A link flow's
-- code carries the identity (link_subject, link_email, ...) that
-- POST /auth/identities attaches to user_id.
CREATE TABLE provider_codes (
    code_hash      BLOB PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    redirect_to    TEXT NOT NULL,
    aal            TEXT NOT NULL,
    amr            TEXT NOT NULL,
    link_subject   TEXT,
    link_email     TEXT,
    link_email_verified INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL
);
CREATE INDEX provider_codes_expires_idx ON provider_codes (expires_at);

-- +goose Down
DROP TABLE provider_codes;
DROP TABLE provider_flows;
DROP TABLE identities;
