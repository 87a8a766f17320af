-- +goose Up
-- The schema of PostgreSQL's shared rate limits, for parity: a SQLite
-- database has one process, whose limits live in memory.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat TEXT NOT NULL
);
CREATE INDEX rate_limits_tat_idx ON rate_limits (tat);

-- +goose Down
DROP TABLE rate_limits;
