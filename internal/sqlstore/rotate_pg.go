package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// rotatePG is the common case of RotateRefreshToken on PostgreSQL in one
// statement, one round trip and one implicit commit instead of six round
// trips: touch the active session (locking its row first, the order every
// revocation takes), spend the presented token if it is still unused,
// insert its successor, and return the session with its user. The session
// CTE runs first because the token update reads its id through a scalar
// subquery (an InitPlan, evaluated before any token row is locked).
// Concurrent presentations of one token serialise on the session row and
// then on the token row, whose re-checked used_at IS NULL lets exactly one
// win. It reports ok=false when it rotated nothing (unknown, spent, revoked
// or expired token, or an ended session); the caller then runs the full
// transaction, which tells a grace-window replay from reuse. A session row
// touched by a statement that rotated nothing only has its use recorded,
// which the full transaction does too.
func (s *Store) rotatePG(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, bool, error) {
	const q = `WITH sess AS (
		UPDATE sessions SET last_used_at = $1,
			expires_at = CASE WHEN absolute_expires_at < $2 THEN absolute_expires_at ELSE $2 END
		WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $3)
		  AND revoked_at IS NULL AND expires_at > $1 AND absolute_expires_at > $1
		RETURNING ` + sessionCols + `
	), tok AS (
		UPDATE refresh_tokens SET used_at = $1
		WHERE token_hash = $3 AND used_at IS NULL AND revoked_at IS NULL
		  AND session_id = (SELECT id FROM sess)
		RETURNING id, session_id
	), ins AS (
		INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, created_at)
		SELECT $4, tok.session_id, tok.id, $5, $1 FROM tok
	)
	SELECT sess.id, sess.user_id, sess.org_id, sess.created_at, sess.last_used_at, sess.expires_at,
		sess.absolute_expires_at, sess.revoked_at, sess.user_agent, sess.ip,
		u.id, u.email, u.email_verified, u.password_hash, u.org_id, u.external_id, u.metadata, u.created_at, u.updated_at
	FROM sess JOIN tok ON tok.session_id = sess.id JOIN users u ON u.id = sess.user_id`
	args := []any{ts(req.Now), ts(req.Now.Add(req.IdleTTL)), req.PresentedHash, newTokenID(), req.SuccessorHash}
	var row *sql.Row
	if st := s.stmts.lookup(s.db, q); st != nil {
		row = st.QueryRowContext(ctx, args...)
	} else {
		row = s.db.QueryRowContext(ctx, q, args...)
	}
	var sr sessionRow
	var ur userRow
	err := row.Scan(&sr.ID, &sr.UserID, &sr.OrgID, &sr.CreatedAt, &sr.LastUsedAt, &sr.ExpiresAt,
		&sr.AbsoluteExpiresAt, &sr.RevokedAt, &sr.UserAgent, &sr.IP,
		&ur.ID, &ur.Email, &ur.EmailVerified, &ur.PasswordHash, &ur.OrgID, &ur.ExternalID, &ur.Metadata, &ur.CreatedAt, &ur.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, translate(err)
	}
	return &domain.RotateResult{Outcome: domain.Rotated, Session: sr.domain(), User: *ur.domain()}, true, nil
}

// newTokenID returns the id of a successor refresh token: a UUIDv7, whose
// time order keeps inserts at the right edge of the primary-key and parent
// indexes. The id is internal; it is never shown to anyone.
func newTokenID() uuid.UUID {
	if id, err := uuid.NewV7(); err == nil {
		return id
	}
	return uuid.New()
}
