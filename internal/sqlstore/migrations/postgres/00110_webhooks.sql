-- +goose Up
-- Webhooks (issue 24): endpoints (an operator's when org_id is NULL, else
-- an organization's), one message per endpoint and event written in the
-- event's transaction, and the log of delivery attempts. Expand only: new
-- tables that the previous release never reads.
CREATE TABLE webhook_endpoints (
    id                    UUID PRIMARY KEY,
    org_id                UUID REFERENCES organizations (id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    -- The wanted types between spaces (' user.created session.created '),
    -- or '' for every type: one LIKE filters them in the fan-out.
    event_types           TEXT NOT NULL DEFAULT '',
    enabled               BOOLEAN NOT NULL,
    secret                BYTEA NOT NULL,
    previous_secret       BYTEA,
    previous_secret_until TIMESTAMPTZ,
    created_by            UUID,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    disabled_at           TIMESTAMPTZ,
    -- The first failure since the last success (NULL when the last ended well).
    failing_since         TIMESTAMPTZ
);
CREATE INDEX webhook_endpoints_fanout_idx ON webhook_endpoints (org_id) WHERE enabled;
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, created_at, id);

-- A message is one event for one endpoint; the event's id is its
-- webhook-id, stable across retries.
CREATE TABLE webhook_messages (
    endpoint_id     UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        UUID NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim_id        UUID,
    claimed_until   TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
-- The oldest pending message, for latch_webhook_oldest_pending_seconds.
CREATE INDEX webhook_messages_pending_idx ON webhook_messages (created_at) WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE webhook_attempts (
    id               UUID PRIMARY KEY,
    endpoint_id      UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         UUID NOT NULL,
    event_type       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    latency_ms       BIGINT NOT NULL,
    response_excerpt TEXT NOT NULL,
    error            TEXT NOT NULL,
    attempted_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at, id);

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
