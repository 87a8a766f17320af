-- +goose Up
-- Staged rotation: a new signing key is published at created_at (it is in
-- the JWKS at once) and signs only from activates_at, when its predecessor
-- retires. NULL (every key before this release) means active from
-- created_at.
ALTER TABLE signing_keys ADD COLUMN activates_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE signing_keys DROP COLUMN activates_at;
