-- +goose Up
-- The admin API for users (issue 24): operator-owned app_metadata (copied
-- into access tokens), user-owned user_metadata, and bans. The older
-- metadata column keeps its meaning (a delegated identity's metadata from
-- its organization). Expand only: new nullable columns that the previous
-- release never reads, and an index for the operators' newest-first list.
ALTER TABLE users ADD COLUMN app_metadata TEXT;
ALTER TABLE users ADD COLUMN user_metadata TEXT;
ALTER TABLE users ADD COLUMN banned_until TEXT;
ALTER TABLE users ADD COLUMN ban_reason TEXT;
CREATE INDEX users_created_idx ON users (created_at, id);

-- +goose Down
DROP INDEX users_created_idx;
ALTER TABLE users DROP COLUMN ban_reason;
ALTER TABLE users DROP COLUMN banned_until;
ALTER TABLE users DROP COLUMN user_metadata;
ALTER TABLE users DROP COLUMN app_metadata;
