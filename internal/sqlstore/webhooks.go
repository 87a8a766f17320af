package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type webhookEndpointRow struct {
	ID                  uuid.UUID     `db:"id"`
	OrgID               uuid.NullUUID `db:"org_id"`
	URL                 string        `db:"url"`
	Description         string        `db:"description"`
	EventTypes          string        `db:"event_types"`
	Enabled             bool          `db:"enabled"`
	Secret              []byte        `db:"secret"`
	PreviousSecret      []byte        `db:"previous_secret"`
	PreviousSecretUntil nts           `db:"previous_secret_until"`
	CreatedBy           uuid.NullUUID `db:"created_by"`
	CreatedAt           ts            `db:"created_at"`
	UpdatedAt           ts            `db:"updated_at"`
	DisabledAt          nts           `db:"disabled_at"`
	FailingSince        nts           `db:"failing_since"`
}

const webhookEndpointCols = `id, org_id, url, description, event_types, enabled, secret, previous_secret, previous_secret_until,
	created_by, created_at, updated_at, disabled_at, failing_since`

func (r *webhookEndpointRow) domain() domain.WebhookEndpoint {
	return domain.WebhookEndpoint{ID: r.ID, OrgID: ptrUUID(r.OrgID), URL: r.URL, Description: r.Description,
		EventTypes: strings.Fields(r.EventTypes), Enabled: r.Enabled, Secret: r.Secret, PreviousSecret: r.PreviousSecret,
		PreviousSecretUntil: r.PreviousSecretUntil.ptr(), CreatedBy: ptrUUID(r.CreatedBy), CreatedAt: time.Time(r.CreatedAt),
		UpdatedAt: time.Time(r.UpdatedAt), DisabledAt: r.DisabledAt.ptr(), FailingSince: r.FailingSince.ptr()}
}

// eventTypesCol is how an endpoint's types are stored: between spaces, so
// that the fan-out finds " type " in it, or "" for every type.
func eventTypesCol(types []string) string {
	if len(types) == 0 {
		return ""
	}
	return " " + strings.Join(types, " ") + " "
}

// webhookOwnerCond scopes a query to the operators' endpoints (orgID nil) or to
// one organization's.
func webhookOwnerCond(orgID *uuid.UUID) (string, []any) {
	if orgID == nil {
		return ` AND org_id IS NULL`, nil
	}
	return ` AND org_id = ?`, []any{*orgID}
}

// fanOutWebhooks queues, in the event's transaction, one message per
// enabled endpoint that wants the event: every operator endpoint and the
// event's organization's, whose types are all or include the event's.
// It is one INSERT ... SELECT on the partial index of enabled endpoints,
// so an event costs one cheap statement when there are none.
func (s *Store) fanOutWebhooks(ctx context.Context, tx *sqlx.Tx, e *domain.OutboundEvent, data []byte) error {
	payload, err := domain.WebhookPayload(e.Type, e.CreatedAt, e.Seq, data)
	if err != nil {
		return err
	}
	find := "instr(event_types, ?) > 0"
	if s.dialect == Postgres {
		find = "strpos(event_types, ?) > 0"
	}
	now := ts(e.CreatedAt)
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload, created_at, next_attempt_at)
		SELECT id, ?, ?, ?, ?, ? FROM webhook_endpoints
		WHERE enabled AND (org_id IS NULL OR org_id = ?) AND (event_types = '' OR `+find+`)`),
		e.ID, e.Type, string(payload), now, now, nullUUID(e.OrgID), " "+e.Type+" ")
	return err
}

// CreateWebhookEndpoint stores a new endpoint unless its owner (e.OrgID,
// nil for the operators) already has max (0: no quota). The count and the
// insert are one transaction that serialises with the owner's other
// creations (an advisory lock on PostgreSQL, the one writer on SQLite).
// Returns CodeQuotaExceeded.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, e *domain.WebhookEndpoint, max int) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if max > 0 {
			if s.dialect == Postgres {
				owner := "operators"
				if e.OrgID != nil {
					owner = e.OrgID.String()
				}
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "latch:webhook_endpoints:"+owner); err != nil {
					return err
				}
			}
			cond, args := webhookOwnerCond(e.OrgID)
			var n int
			if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM webhook_endpoints WHERE 1 = 1`+cond), args...); err != nil {
				return err
			}
			if n >= max {
				return domain.Errorf(domain.CodeQuotaExceeded, "at most %d webhook endpoints; delete one first", max)
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO webhook_endpoints (`+webhookEndpointCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			e.ID, nullUUID(e.OrgID), e.URL, e.Description, eventTypesCol(e.EventTypes), e.Enabled, e.Secret, e.PreviousSecret,
			ntsOf(e.PreviousSecretUntil), nullUUID(e.CreatedBy), ts(e.CreatedAt), ts(e.UpdatedAt), ntsOf(e.DisabledAt), ntsOf(e.FailingSince))
		return err
	})
}

// WebhookEndpoint returns the endpoint of the owner (the operators when
// orgID is nil). Returns CodeNotFound if the owner has no such endpoint.
func (s *Store) WebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID) (*domain.WebhookEndpoint, error) {
	cond, args := webhookOwnerCond(orgID)
	var r webhookEndpointRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE id = ?`+cond), append([]any{id}, args...)...); err != nil {
		return nil, translate(err)
	}
	e := r.domain()
	return &e, nil
}

// ListWebhookEndpoints returns up to limit endpoints of the owner after the
// cursor, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context, orgID *uuid.UUID, after *domain.Cursor, limit int) ([]domain.WebhookEndpoint, error) {
	cond, args := webhookOwnerCond(orgID)
	pc, pargs := pageCondOn("created_at", "id", after, false)
	var rows []webhookEndpointRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE 1 = 1`+cond+pc+` ORDER BY created_at, id LIMIT ?`),
		append(append(args, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.WebhookEndpoint, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// UpdateWebhookEndpoint reads the owner's endpoint, lets fn change it, and
// stores it, in one transaction (the row locked on PostgreSQL). Returns
// fn's error, or CodeNotFound if the owner has no such endpoint.
func (s *Store) UpdateWebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID, fn func(e *domain.WebhookEndpoint) error) (*domain.WebhookEndpoint, error) {
	cond, args := webhookOwnerCond(orgID)
	lock := s.rowLock(" FOR UPDATE")
	var out domain.WebhookEndpoint
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var r webhookEndpointRow
		if err := tx.GetContext(ctx, &r, s.q(`SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE id = ?`+cond+lock), append([]any{id}, args...)...); err != nil {
			return err
		}
		e := r.domain()
		if err := fn(&e); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_endpoints SET url = ?, description = ?, event_types = ?, enabled = ?, secret = ?,
			previous_secret = ?, previous_secret_until = ?, updated_at = ?, disabled_at = ?, failing_since = ? WHERE id = ?`),
			e.URL, e.Description, eventTypesCol(e.EventTypes), e.Enabled, e.Secret, e.PreviousSecret, ntsOf(e.PreviousSecretUntil),
			ts(e.UpdatedAt), ntsOf(e.DisabledAt), ntsOf(e.FailingSince), e.ID); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhookEndpoint deletes the owner's endpoint with its messages and
// delivery log. Returns CodeNotFound if the owner has no such endpoint.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID) error {
	cond, args := webhookOwnerCond(orgID)
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		r, err := tx.ExecContext(ctx, s.q(`DELETE FROM webhook_endpoints WHERE id = ?`+cond), append([]any{id}, args...)...)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "webhook endpoint not found")
		}
		// The foreign keys cascade; these say so for a database without them.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM webhook_messages WHERE endpoint_id = ?`), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM webhook_attempts WHERE endpoint_id = ?`), id)
		return err
	})
}

// EnqueueWebhookMessage queues a message on its own (the test message).
func (s *Store) EnqueueWebhookMessage(ctx context.Context, m *domain.WebhookMessage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload, created_at, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?)`), m.EndpointID, m.EventID, m.EventType, string(m.Payload), ts(m.CreatedAt), ts(m.NextAttemptAt))
		return err
	})
}

// RedeliverWebhookMessage makes the endpoint's message due at now again
// with a fresh schedule, whatever its state. Returns CodeNotFound if the
// endpoint has no such message, CodeConflict while an attempt holds it.
func (s *Store) RedeliverWebhookMessage(ctx context.Context, endpointID, eventID uuid.UUID, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var until nts
		err := tx.GetContext(ctx, &until, s.q(`SELECT claimed_until FROM webhook_messages WHERE endpoint_id = ? AND event_id = ?`), endpointID, eventID)
		if err != nil {
			if err == sql.ErrNoRows {
				return domain.Errorf(domain.CodeNotFound, "message not found")
			}
			return err
		}
		if until.Valid && until.T.After(now) {
			return domain.Errorf(domain.CodeConflict, "the message is being delivered right now")
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE webhook_messages SET next_attempt_at = ?, attempts = 0, delivered_at = NULL, failed_at = NULL,
			claim_id = NULL, claimed_until = NULL WHERE endpoint_id = ? AND event_id = ?`), ts(now), endpointID, eventID)
		return err
	})
}

type webhookMessageRow struct {
	EndpointID    uuid.UUID     `db:"endpoint_id"`
	EventID       uuid.UUID     `db:"event_id"`
	EventType     string        `db:"event_type"`
	Payload       string        `db:"payload"`
	CreatedAt     ts            `db:"created_at"`
	NextAttemptAt ts            `db:"next_attempt_at"`
	Attempts      int           `db:"attempts"`
	ClaimID       uuid.NullUUID `db:"claim_id"`
}

// ClaimWebhookMessages leases up to limit due messages of enabled
// endpoints to a new claim, like ClaimMail: FOR UPDATE SKIP LOCKED on
// PostgreSQL, the serial writer on SQLite, and a lease that frees the
// messages of a worker that died. A message whose last allowed attempt
// died with its worker is marked failed. Each message comes with its
// endpoint.
func (s *Store) ClaimWebhookMessages(ctx context.Context, now time.Time, lease time.Duration, limit, maxAttempts int) ([]domain.WebhookMessage, error) {
	claim := uuid.New()
	lock := s.rowLock(" FOR UPDATE SKIP LOCKED")
	var rows []webhookMessageRow
	var eps []webhookEndpointRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		rows, eps = nil, nil
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_messages SET failed_at = ?, claim_id = NULL, claimed_until = NULL,
			last_error = CASE WHEN last_error = '' THEN 'the worker stopped during the last attempt' ELSE last_error END
			WHERE (endpoint_id, event_id) IN (SELECT endpoint_id, event_id FROM webhook_messages WHERE delivered_at IS NULL AND failed_at IS NULL
			  AND attempts >= ? AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT ?`+lock+`)`),
			ts(now), maxAttempts, ts(now), limit); err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, &rows, s.q(`UPDATE webhook_messages SET claim_id = ?, claimed_until = ?, attempts = attempts + 1
			WHERE (endpoint_id, event_id) IN (SELECT endpoint_id, event_id FROM webhook_messages WHERE delivered_at IS NULL AND failed_at IS NULL
			  AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) AND attempts < ?
			  AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled)
			  ORDER BY next_attempt_at, endpoint_id, event_id LIMIT ?`+lock+`)
			RETURNING endpoint_id, event_id, event_type, payload, created_at, next_attempt_at, attempts, claim_id`),
			claim, ts(now.Add(lease)), ts(now), ts(now), maxAttempts, limit); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		q, args, err := sqlx.In(`SELECT `+webhookEndpointCols+` FROM webhook_endpoints WHERE id IN (?)`, endpointIDs(rows))
		if err != nil {
			return err
		}
		return tx.SelectContext(ctx, &eps, s.q(q), args...)
	})
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]domain.WebhookEndpoint, len(eps))
	for i := range eps {
		byID[eps[i].ID] = eps[i].domain()
	}
	out := make([]domain.WebhookMessage, 0, len(rows))
	for _, r := range rows {
		out = append(out, domain.WebhookMessage{EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, Payload: []byte(r.Payload),
			CreatedAt: time.Time(r.CreatedAt), NextAttemptAt: time.Time(r.NextAttemptAt), Attempts: r.Attempts, ClaimID: r.ClaimID.UUID,
			Endpoint: byID[r.EndpointID]})
	}
	return out, nil
}

func endpointIDs(rows []webhookMessageRow) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for _, r := range rows {
		if !seen[r.EndpointID] {
			seen[r.EndpointID] = true
			ids = append(ids, r.EndpointID)
		}
	}
	return ids
}

// RecordWebhookAttempt logs the attempt a on the claimed message m and
// settles the message as out says, in one transaction that also keeps the
// endpoint's failure streak: a success ends it, a failure starts it, and a
// failure of a streak begun at or before out.DisableIfFailingSince disables
// the endpoint. Returns whether this call disabled the endpoint, and
// CodeNotFound (the attempt still logged) when the claim had lapsed. When
// the endpoint was deleted meanwhile it records nothing and returns
// false, nil.
func (s *Store) RecordWebhookAttempt(ctx context.Context, m *domain.WebhookMessage, a *domain.WebhookAttempt, out domain.WebhookOutcome) (bool, error) {
	if len(a.Error) > maxErrorLen {
		a.Error = a.Error[:maxErrorLen]
	}
	disabled, lapsed := false, false
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		disabled, lapsed = false, false
		// An endpoint deleted during the delivery took its messages and log
		// with it: there is nothing left to record the attempt in.
		var exists int
		if err := tx.GetContext(ctx, &exists, s.q(`SELECT COUNT(*) FROM webhook_endpoints WHERE id = ?`), m.EndpointID); err != nil {
			return err
		}
		if exists == 0 {
			return nil
		}
		var status sql.NullInt64
		if a.StatusCode != 0 {
			status = sql.NullInt64{Int64: int64(a.StatusCode), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO webhook_attempts (id, endpoint_id, event_id, event_type, attempt, status_code, latency_ms, response_excerpt, error, attempted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), a.ID, a.EndpointID, a.EventID, a.EventType, a.Attempt, status, a.Latency.Milliseconds(),
			a.ResponseExcerpt, a.Error, ts(a.AttemptedAt)); err != nil {
			return err
		}
		now := ts(a.AttemptedAt)
		var q string
		var args []any
		switch {
		case out.Delivered:
			q, args = `UPDATE webhook_messages SET delivered_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ''`, []any{now}
		case out.RetryAt != nil:
			q, args = `UPDATE webhook_messages SET next_attempt_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ?`, []any{ts(*out.RetryAt), a.Error}
		default:
			q, args = `UPDATE webhook_messages SET failed_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ?`, []any{now, a.Error}
		}
		r, err := tx.ExecContext(ctx, s.q(q+` WHERE endpoint_id = ? AND event_id = ? AND claim_id = ? AND delivered_at IS NULL AND failed_at IS NULL`),
			append(args, m.EndpointID, m.EventID, m.ClaimID)...)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			lapsed = true
		}
		if out.Delivered {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`), m.EndpointID)
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL`), now, m.EndpointID); err != nil {
			return err
		}
		r, err = tx.ExecContext(ctx, s.q(`UPDATE webhook_endpoints SET enabled = ?, disabled_at = ?, updated_at = ? WHERE id = ? AND enabled AND failing_since <= ?`),
			false, now, now, m.EndpointID, ts(out.DisableIfFailingSince))
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		disabled = n == 1
		return nil
	})
	if err != nil {
		return false, err
	}
	if lapsed {
		return disabled, domain.Errorf(domain.CodeNotFound, "the claim on the message has ended")
	}
	return disabled, nil
}

type webhookAttemptRow struct {
	ID              uuid.UUID     `db:"id"`
	EndpointID      uuid.UUID     `db:"endpoint_id"`
	EventID         uuid.UUID     `db:"event_id"`
	EventType       string        `db:"event_type"`
	Attempt         int           `db:"attempt"`
	StatusCode      sql.NullInt64 `db:"status_code"`
	LatencyMS       int64         `db:"latency_ms"`
	ResponseExcerpt string        `db:"response_excerpt"`
	Error           string        `db:"error"`
	AttemptedAt     ts            `db:"attempted_at"`
}

// ListWebhookAttempts returns up to limit attempts of the endpoint after
// the cursor (by attempt time and id), newest first.
func (s *Store) ListWebhookAttempts(ctx context.Context, endpointID uuid.UUID, after *domain.Cursor, limit int) ([]domain.WebhookAttempt, error) {
	pc, pargs := pageCondOn("attempted_at", "id", after, true)
	var rows []webhookAttemptRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT id, endpoint_id, event_id, event_type, attempt, status_code, latency_ms, response_excerpt, error, attempted_at
		FROM webhook_attempts WHERE endpoint_id = ?`+pc+` ORDER BY attempted_at DESC, id DESC LIMIT ?`),
		append(append([]any{endpointID}, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.WebhookAttempt, len(rows))
	for i, r := range rows {
		out[i] = domain.WebhookAttempt{ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, Attempt: r.Attempt,
			StatusCode: int(r.StatusCode.Int64), Latency: time.Duration(r.LatencyMS) * time.Millisecond, ResponseExcerpt: r.ResponseExcerpt,
			Error: r.Error, AttemptedAt: time.Time(r.AttemptedAt)}
	}
	return out, nil
}

// OldestPendingWebhook returns when the oldest message neither delivered
// nor failed was queued, or nil when there is none.
func (s *Store) OldestPendingWebhook(ctx context.Context) (*time.Time, error) {
	var t nts
	if err := s.db.GetContext(ctx, &t, `SELECT MIN(created_at) FROM webhook_messages WHERE delivered_at IS NULL AND failed_at IS NULL`); err != nil {
		return nil, translate(err)
	}
	return t.ptr(), nil
}

// OrgOwnerEmails returns the addresses of the organization's owners.
func (s *Store) OrgOwnerEmails(ctx context.Context, orgID uuid.UUID) ([]string, error) {
	var out []string
	if err := s.db.SelectContext(ctx, &out, s.q(`SELECT u.email FROM org_members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = ? AND m.role = 'owner' AND u.email IS NOT NULL AND u.email <> '' ORDER BY u.email`), orgID); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
