package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

var _ domain.OutboxStore = (*Store)(nil)

type outboxRow struct {
	ID            uuid.UUID     `db:"id"`
	Template      string        `db:"template"`
	Recipient     string        `db:"recipient"`
	UserID        uuid.NullUUID `db:"user_id"`
	Payload       []byte        `db:"payload"`
	CreatedAt     ts            `db:"created_at"`
	NextAttemptAt ts            `db:"next_attempt_at"`
	ExpiresAt     nts           `db:"expires_at"`
	Attempts      int           `db:"attempts"`
	ClaimID       uuid.NullUUID `db:"claim_id"`
	Priority      int           `db:"priority"`
	OrgID         uuid.NullUUID `db:"org_id"`
}

const outboxCols = `id, template, recipient, user_id, payload, created_at, next_attempt_at, expires_at, attempts, claim_id, priority, org_id`

// maxErrorLen bounds the stored text of the last failure.
const maxErrorLen = 1000

func (s *Store) insertOutbox(ctx context.Context, tx *sqlx.Tx, m *domain.OutboxMessage) error {
	next := m.NextAttemptAt
	if next.IsZero() {
		next = m.CreatedAt
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO mail_outbox (id, template, recipient, user_id, payload, created_at, next_attempt_at, expires_at, priority, org_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		m.ID, m.Template, m.Recipient, nullUUID(m.UserID), m.Payload, ts(m.CreatedAt), ts(next), ntsOf(m.ExpiresAt), m.Priority, nullUUID(m.OrgID))
	return err
}

// CountMail returns how many mails were queued since since to the
// recipient (when not "") or for the organization (when orgID is not nil).
func (s *Store) CountMail(ctx context.Context, recipient string, orgID *uuid.UUID, since time.Time) (int, error) {
	q, args := `SELECT COUNT(*) FROM mail_outbox WHERE created_at > ?`, []any{ts(since)}
	if recipient != "" {
		q += ` AND recipient = ?`
		args = append(args, recipient)
	}
	if orgID != nil {
		q += ` AND org_id = ?`
		args = append(args, *orgID)
	}
	var n int
	if err := s.get(ctx, &n, q, args...); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// EnqueueMail stores a message on its own.
func (s *Store) EnqueueMail(ctx context.Context, m *domain.OutboxMessage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.insertOutbox(ctx, tx, m) })
}

// ClaimMail leases up to limit due messages to a new claim. On PostgreSQL
// the candidate rows are locked with FOR UPDATE SKIP LOCKED, so concurrent
// claimers take disjoint sets without waiting; on SQLite write
// transactions (BEGIN IMMEDIATE) are serial. Either way a row is in at most
// one live claim, and a lease that runs out (a crashed worker) frees it.
func (s *Store) ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit, maxAttempts int) ([]domain.OutboxMessage, error) {
	claim := uuid.New()
	lock := s.rowLock(" FOR UPDATE SKIP LOCKED")
	var rows []outboxRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		rows = nil
		// A worker that died during the last allowed attempt leaves a row
		// that no one may claim again: abandon it.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE mail_outbox SET failed_at = ?, payload = NULL, claim_id = NULL, claimed_until = NULL,
			last_error = CASE WHEN last_error = '' THEN 'the worker stopped during the last attempt' ELSE last_error END
			WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND attempts >= ?
			  AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT ?`+lock+`)`),
			ts(now), maxAttempts, ts(now), limit); err != nil {
			return err
		}
		return tx.SelectContext(ctx, &rows, s.q(`UPDATE mail_outbox SET claim_id = ?, claimed_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
			  AND (claimed_until IS NULL OR claimed_until <= ?) AND attempts < ?
			  ORDER BY priority, next_attempt_at, id LIMIT ?`+lock+`)
			RETURNING `+outboxCols),
			claim, ts(now.Add(lease)), ts(now), ts(now), maxAttempts, limit)
	})
	if err != nil {
		return nil, err
	}
	out := make([]domain.OutboxMessage, len(rows))
	for i, r := range rows {
		out[i] = domain.OutboxMessage{ID: r.ID, Template: r.Template, Recipient: r.Recipient, UserID: ptrUUID(r.UserID),
			Payload: r.Payload, CreatedAt: time.Time(r.CreatedAt), NextAttemptAt: time.Time(r.NextAttemptAt),
			ExpiresAt: r.ExpiresAt.ptr(), Attempts: r.Attempts, ClaimID: r.ClaimID.UUID, Priority: r.Priority, OrgID: ptrUUID(r.OrgID)}
	}
	return out, nil
}

// MarkMailSent records that the claimed message was sent and wipes its
// payload. Returns CodeNotFound if the claim no longer holds it.
func (s *Store) MarkMailSent(ctx context.Context, id, claimID uuid.UUID, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		r, err := tx.ExecContext(ctx, s.q(`UPDATE mail_outbox SET sent_at = ?, payload = NULL, claim_id = NULL, claimed_until = NULL, last_error = ''
			WHERE id = ? AND claim_id = ? AND sent_at IS NULL AND failed_at IS NULL`), ts(now), id, claimID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "the claim on the message has ended")
		}
		return nil
	})
}

// MarkMailFailed records a failed attempt: the message is due again at
// retryAt, or abandoned with its payload wiped when retryAt is nil. Returns
// CodeNotFound if the claim no longer holds it.
func (s *Store) MarkMailFailed(ctx context.Context, id, claimID uuid.UUID, now time.Time, reason string, retryAt *time.Time) error {
	if len(reason) > maxErrorLen {
		reason = reason[:maxErrorLen]
	}
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var q string
		var args []any
		if retryAt == nil {
			q = `UPDATE mail_outbox SET failed_at = ?, payload = NULL, claim_id = NULL, claimed_until = NULL, last_error = ?
				WHERE id = ? AND claim_id = ? AND sent_at IS NULL AND failed_at IS NULL`
			args = []any{ts(now), reason, id, claimID}
		} else {
			q = `UPDATE mail_outbox SET next_attempt_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ?
				WHERE id = ? AND claim_id = ? AND sent_at IS NULL AND failed_at IS NULL`
			args = []any{ts(*retryAt), reason, id, claimID}
		}
		r, err := tx.ExecContext(ctx, s.q(q), args...)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "the claim on the message has ended")
		}
		return nil
	})
}
