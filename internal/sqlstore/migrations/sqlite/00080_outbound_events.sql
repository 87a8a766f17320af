-- +goose Up
-- Outbound events (issue 24): what happened, for webhooks and the events
-- feed. A row is written in the same transaction as the change it tells
-- of, so it exists exactly when the change committed. Expand only: a new
-- table that the previous release never reads.
CREATE TABLE outbound_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    org_id     TEXT,
    user_id    TEXT,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX outbound_events_org_idx ON outbound_events (org_id, seq) WHERE org_id IS NOT NULL;

-- +goose Down
DROP TABLE outbound_events;
