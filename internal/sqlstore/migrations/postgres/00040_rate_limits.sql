-- +goose Up
-- Shared rate limits (LATCH_RATE_LIMIT_STORE=postgres): one row per rule
-- and key with its GCRA theoretical arrival time. A row whose tat is past
-- is a full bucket: pruning may delete it.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat TIMESTAMPTZ NOT NULL
);
CREATE INDEX rate_limits_tat_idx ON rate_limits (tat);

-- +goose Down
DROP TABLE rate_limits;
