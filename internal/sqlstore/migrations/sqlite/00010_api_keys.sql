-- +goose Up
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE org_members (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user_idx ON org_members (user_id);

-- Only the SHA-256 of a key is stored, never the key.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    key_hash     BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    org_id       TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    created_by   TEXT,
    label        TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT,
    rolled_to    TEXT,
    CHECK ((user_id IS NULL) <> (org_id IS NULL))
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at) WHERE org_id IS NOT NULL;

-- +goose Down
DROP TABLE api_keys;
DROP TABLE org_members;
DROP TABLE organizations;
