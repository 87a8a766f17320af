-- +goose Up
-- Enterprise SSO per organization (issue 25). Forward only and additive:
-- new tables that the previous release never reads.

-- The email domains an organization claims; token is the value of the TXT
-- record _latch-verification.<domain> that verifies one (not a secret).
-- A domain is verified by at most one organization.
CREATE TABLE org_domains (
    id          UUID PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    token       TEXT NOT NULL,
    verified_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified_idx ON org_domains (domain) WHERE verified_at IS NOT NULL;

-- An organization's own OpenID Connect provider; client_secret is sealed
-- with the master key.
CREATE TABLE org_sso_connections (
    org_id        UUID PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret BYTEA NOT NULL,
    scopes        TEXT NOT NULL,
    default_role  TEXT NOT NULL,
    require_sso   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
