-- +goose NO TRANSACTION
-- +goose Up
-- The pruner finds expired outbound events by created_at
-- (LATCH_EVENTS_RETENTION); without this index each pass read the whole
-- table in seq order when nothing had expired. Built CONCURRENTLY (hence
-- no transaction), so instances of the previous release keep writing
-- events during the upgrade. A build that was interrupted leaves an
-- invalid index and no record of this migration, so the next start drops
-- it and builds it again.
DROP INDEX CONCURRENTLY IF EXISTS outbound_events_created_idx;
CREATE INDEX CONCURRENTLY outbound_events_created_idx ON outbound_events (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS outbound_events_created_idx;
