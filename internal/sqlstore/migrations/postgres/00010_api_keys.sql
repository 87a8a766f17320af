-- +goose Up
CREATE TABLE organizations (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE org_members (
    org_id     UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user_idx ON org_members (user_id);

-- Only the SHA-256 of a key is stored, never the key.
CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    key_hash     BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    user_id      UUID REFERENCES users (id) ON DELETE CASCADE,
    org_id       UUID REFERENCES organizations (id) ON DELETE CASCADE,
    created_by   UUID,
    label        TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    rolled_to    UUID,
    CHECK ((user_id IS NULL) <> (org_id IS NULL))
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at) WHERE org_id IS NOT NULL;

-- +goose Down
DROP TABLE api_keys;
DROP TABLE org_members;
DROP TABLE organizations;
