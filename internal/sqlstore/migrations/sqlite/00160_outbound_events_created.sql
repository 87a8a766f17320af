-- +goose Up
-- The pruner finds expired outbound events by created_at
-- (LATCH_EVENTS_RETENTION); without this index each pass read the whole
-- table in seq order when nothing had expired.
CREATE INDEX IF NOT EXISTS outbound_events_created_idx ON outbound_events (created_at);

-- +goose Down
DROP INDEX IF EXISTS outbound_events_created_idx;
