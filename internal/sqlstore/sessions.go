package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type sessionRow struct {
	ID                uuid.UUID     `db:"id"`
	UserID            uuid.UUID     `db:"user_id"`
	OrgID             uuid.NullUUID `db:"org_id"`
	CreatedAt         ts            `db:"created_at"`
	LastUsedAt        ts            `db:"last_used_at"`
	ExpiresAt         ts            `db:"expires_at"`
	AbsoluteExpiresAt ts            `db:"absolute_expires_at"`
	RevokedAt         nts           `db:"revoked_at"`
	UserAgent         string        `db:"user_agent"`
	IP                string        `db:"ip"`
	AAL               string        `db:"aal"`
	AMR               string        `db:"amr"`
	MFAAt             nts           `db:"mfa_at"`
	ActorID           uuid.NullUUID `db:"actor_id"`
}

const sessionCols = `id, user_id, org_id, created_at, last_used_at, expires_at, absolute_expires_at, revoked_at, user_agent, ip, aal, amr, mfa_at, actor_id`

func (r *sessionRow) domain() domain.Session {
	s := domain.Session{
		ID:                r.ID,
		UserID:            r.UserID,
		CreatedAt:         time.Time(r.CreatedAt),
		LastUsedAt:        time.Time(r.LastUsedAt),
		ExpiresAt:         time.Time(r.ExpiresAt),
		AbsoluteExpiresAt: time.Time(r.AbsoluteExpiresAt),
		RevokedAt:         r.RevokedAt.ptr(),
		UserAgent:         r.UserAgent,
		IP:                r.IP,
		AAL:               r.AAL,
		AMR:               splitAMR(r.AMR),
		MFAAt:             r.MFAAt.ptr(),
	}
	if r.OrgID.Valid {
		id := r.OrgID.UUID
		s.OrgID = &id
	}
	if r.ActorID.Valid {
		id := r.ActorID.UUID
		s.ActorID = &id
	}
	return s
}

func (s *Store) insertSession(ctx context.Context, tx *sqlx.Tx, sess *domain.Session, rt *domain.RefreshToken) error {
	if sess == nil { // an account created without a session (verification pending)
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		sess.ID, sess.UserID, nullUUID(sess.OrgID), ts(sess.CreatedAt), ts(sess.LastUsedAt), ts(sess.ExpiresAt),
		ts(sess.AbsoluteExpiresAt), ntsOf(sess.RevokedAt), sess.UserAgent, sess.IP, aalOf(sess.AAL), joinAMR(sess.AMR), ntsOf(sess.MFAAt),
		nullUUID(sess.ActorID))
	if err != nil {
		return err
	}
	if rt == nil { // a session without refresh tokens (impersonation)
		return nil
	}
	return s.insertRefreshToken(ctx, tx, rt)
}

func (s *Store) insertRefreshToken(ctx context.Context, tx *sqlx.Tx, rt *domain.RefreshToken) error {
	_, err := s.txExec(ctx, tx, `INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		rt.ID, rt.SessionID, nullUUID(rt.ParentID), rt.Hash, ts(rt.CreatedAt))
	return err
}

// CreateSession stores a session with its first refresh token; a nil rt
// stores a session that can never be refreshed.
func (s *Store) CreateSession(ctx context.Context, sess *domain.Session, rt *domain.RefreshToken) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.insertSession(ctx, tx, sess, rt) })
}

// revokeSessions revokes the active sessions matching where (a condition on
// the sessions table with ? placeholders) and all their refresh tokens,
// sessions first so the lock order matches rotation.
func (s *Store) revokeSessions(ctx context.Context, tx *sqlx.Tx, where string, now time.Time, args ...any) error {
	all := append([]any{ts(now)}, args...)
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL AND `+where), all...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND session_id IN (SELECT id FROM sessions WHERE `+where+`)`), all...)
	return err
}

// SessionByID returns the session. Returns CodeNotFound if there is none.
func (s *Store) SessionByID(ctx context.Context, id uuid.UUID) (*domain.Session, error) {
	var r sessionRow
	if err := s.get(ctx, &r, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id); err != nil {
		return nil, translate(err)
	}
	d := r.domain()
	return &d, nil
}

// ListSessions returns the user's active sessions at now, newest first.
func (s *Store) ListSessions(ctx context.Context, userID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error) {
	var rows []sessionRow
	pc, pargs := pageCond(after, true)
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+sessionCols+` FROM sessions
		WHERE user_id = ? AND `+activeAt("", "?")+pc+`
		ORDER BY created_at DESC, id DESC LIMIT ?`), append(append([]any{userID, ts(now), ts(now)}, pargs...), limit)...)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Session, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// RevokeSession revokes the user's session and its refresh tokens. Returns
// CodeNotFound if it is not an active session of that user.
func (s *Store) RevokeSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL`),
			ts(now), sessionID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "session not found")
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL`), ts(now), sessionID)
		return err
	})
}

// RevokeUserSessions revokes every active session of the user except keep
// and returns the ids it revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keep uuid.UUID, now time.Time) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		ids = nil
		if err := tx.SelectContext(ctx, &ids, s.q(`UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id`),
			ts(now), userID, keep); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND session_id IN (SELECT id FROM sessions WHERE user_id = ? AND id <> ?)`),
			ts(now), userID, keep)
		return err
	})
	return ids, err
}

// RenewSession moves the idle expiry of the user's active session to
// now+idle, never past its absolute expiry. Returns CodeNotFound if it is not
// an active session of that user.
func (s *Store) RenewSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time, idle time.Duration) (*domain.Session, error) {
	var r sessionRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`UPDATE sessions SET last_used_at = ?, expires_at = `+touchExpiry("?")+`
			WHERE id = ? AND user_id = ? AND `+activeAt("", "?")+`
			RETURNING `+sessionCols),
			ts(now), ts(now.Add(idle)), ts(now.Add(idle)), sessionID, userID, ts(now), ts(now))
	})
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "session not found")
		}
		return nil, err
	}
	d := r.domain()
	return &d, nil
}

// CountRefreshTokens returns how many refresh tokens the session's family
// holds, for tests and diagnostics.
func (s *Store) CountRefreshTokens(ctx context.Context, sessionID uuid.UUID) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?`), sessionID)
	return n, translate(err)
}

// CountActiveSessions returns how many sessions of the user are active at
// now.
func (s *Store) CountActiveSessions(ctx context.Context, userID uuid.UUID, now time.Time) (int, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM sessions WHERE user_id = ? AND `+activeAt("", "?"),
		userID, ts(now), ts(now)); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// TrimSessions revokes every active session of the user but the newest
// keep, with their refresh tokens, in one transaction, and returns the
// revoked ids.
func (s *Store) TrimSessions(ctx context.Context, userID uuid.UUID, keep int, now time.Time) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		ids = nil
		active := `user_id = ? AND ` + activeAt("", "?")
		if err := tx.SelectContext(ctx, &ids, s.q(`UPDATE sessions SET revoked_at = ? WHERE `+active+`
			AND id NOT IN (SELECT id FROM sessions WHERE `+active+` ORDER BY created_at DESC, id DESC LIMIT ?) RETURNING id`),
			ts(now), userID, ts(now), ts(now), userID, ts(now), ts(now), keep); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL`), ts(now), id); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}
