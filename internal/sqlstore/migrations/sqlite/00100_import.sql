-- +goose Up
-- Impersonation (issue 24): the operator acting in a session opened by
-- POST /admin/users/{user_id}/impersonate (NULL for every other session).
-- Expand only: a new nullable column that the previous release never reads.
ALTER TABLE sessions ADD COLUMN actor_id TEXT;

-- +goose Down
ALTER TABLE sessions DROP COLUMN actor_id;
