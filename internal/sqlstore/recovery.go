package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type recoveryTokenRow struct {
	ID        uuid.UUID `db:"id"`
	UserID    uuid.UUID `db:"user_id"`
	Purpose   string    `db:"purpose"`
	Hash      []byte    `db:"token_hash"`
	Email     string    `db:"email"`
	CreatedAt ts        `db:"created_at"`
	ExpiresAt ts        `db:"expires_at"`
	UsedAt    nts       `db:"used_at"`
}

const recoveryCols = `id, user_id, purpose, token_hash, email, created_at, expires_at, used_at`

func (r *recoveryTokenRow) domain() *domain.RecoveryToken {
	return &domain.RecoveryToken{ID: r.ID, UserID: r.UserID, Purpose: r.Purpose, Hash: r.Hash, Email: r.Email,
		CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt), UsedAt: r.UsedAt.ptr()}
}

func invalidRecoveryToken() error {
	return domain.Errorf(domain.CodeInvalidToken, "the token is invalid, expired or already used")
}

func (s *Store) insertRecoveryToken(ctx context.Context, tx *sqlx.Tx, t *domain.RecoveryToken) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO recovery_tokens (`+recoveryCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		t.ID, t.UserID, t.Purpose, t.Hash, t.Email, ts(t.CreatedAt), ts(t.ExpiresAt), ntsOf(t.UsedAt))
	return err
}

// CreateUserWithMail stores a new user with its first session, a
// verification token and its mail in one transaction. Returns
// CodeEmailTaken if the email is in use.
func (s *Store) CreateUserWithMail(ctx context.Context, u *domain.User, sess *domain.Session, rt *domain.RefreshToken, t *domain.RecoveryToken, m *domain.OutboxMessage) error {
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.insertUser(ctx, tx, u); err != nil {
			return err
		}
		if err := s.insertSession(ctx, tx, sess, rt); err != nil {
			return err
		}
		if err := s.insertRecoveryToken(ctx, tx, t); err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, m)
	})
	if domain.IsCode(err, domain.CodeConflict) {
		return &domain.Error{Code: domain.CodeEmailTaken, Message: "an account with this email already exists", Err: err}
	}
	return err
}

// CreateRecoveryToken stores the token and queues its mail in one
// transaction.
func (s *Store) CreateRecoveryToken(ctx context.Context, t *domain.RecoveryToken, m *domain.OutboxMessage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.insertRecoveryToken(ctx, tx, t); err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, m)
	})
}

// RecoveryToken returns the live token of the purpose with the hash.
// Returns CodeNotFound if it is unknown, used or expired.
func (s *Store) RecoveryToken(ctx context.Context, purpose string, hash []byte, now time.Time) (*domain.RecoveryToken, error) {
	var r recoveryTokenRow
	err := s.db.GetContext(ctx, &r, s.q(`SELECT `+recoveryCols+` FROM recovery_tokens
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`), hash, purpose, ts(now))
	if err != nil {
		return nil, translate(err)
	}
	return r.domain(), nil
}

// spendToken is the conditional update that has exactly one winner among
// concurrent uses of one token: on PostgreSQL the second waits for the
// first's row lock and then finds used_at set; on SQLite write transactions
// are serial.
func (s *Store) spendToken(ctx context.Context, tx *sqlx.Tx, purpose string, hash []byte, now time.Time) (*domain.RecoveryToken, error) {
	var r recoveryTokenRow
	err := tx.GetContext(ctx, &r, s.q(`UPDATE recovery_tokens SET used_at = ?
		WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?
		RETURNING `+recoveryCols), ts(now), hash, purpose, ts(now))
	if err != nil {
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			return nil, invalidRecoveryToken()
		}
		return nil, err
	}
	return r.domain(), nil
}

// spendOutstanding spends every unused token of the purpose of the user.
func (s *Store) spendOutstanding(ctx context.Context, tx *sqlx.Tx, userID uuid.UUID, purpose string, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE recovery_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`),
		ts(now), userID, purpose)
	return err
}

// revokeUserSessionsTx revokes every active session of the user except keep
// (when not uuid.Nil) and their refresh tokens, sessions first so the lock
// order matches rotation, and returns the revoked ids.
func (s *Store) revokeUserSessionsTx(ctx context.Context, tx *sqlx.Tx, userID, keep uuid.UUID, now time.Time) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	if err := tx.SelectContext(ctx, &ids, s.q(`UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id`),
		ts(now), userID, keep); err != nil {
		return nil, err
	}
	_, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL
		AND session_id IN (SELECT id FROM sessions WHERE user_id = ? AND id <> ?)`), ts(now), userID, keep)
	return ids, err
}

// ResetPassword spends the reset token, sets the password, spends the
// user's other reset tokens, marks the address verified (keeping an earlier
// verification time) and revokes every session and every personal API key,
// in one transaction. Returns CodeInvalidToken for an unknown, used
// or expired token.
func (s *Store) ResetPassword(ctx context.Context, hash []byte, passwordHash string, now time.Time) (*domain.ResetResult, error) {
	var res *domain.ResetResult
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res = nil
		t, err := s.spendToken(ctx, tx, domain.PurposePasswordReset, hash, now)
		if err != nil {
			return err
		}
		if err := s.spendOutstanding(ctx, tx, t.UserID, domain.PurposePasswordReset, now); err != nil {
			return err
		}
		// Following the link proves control of the address it was sent to.
		r, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ?, updated_at = ?,
			email_verified_at = CASE WHEN email = ? AND email_verified_at IS NULL THEN ? ELSE email_verified_at END,
			email_verified = CASE WHEN email = ? THEN ? ELSE email_verified END
			WHERE id = ? AND org_id IS NULL`), passwordHash, ts(now), t.Email, ts(now), t.Email, true, t.UserID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return invalidRecoveryToken()
		}
		ids, err := s.revokeUserSessionsTx(ctx, tx, t.UserID, uuid.Nil, now)
		if err != nil {
			return err
		}
		keys, err := s.revokeUserAPIKeysTx(ctx, tx, t.UserID, now)
		if err != nil {
			return err
		}
		res = &domain.ResetResult{UserID: t.UserID, Revoked: ids, RevokedKeys: keys}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// VerifyEmail spends the verification token and marks the email verified
// if it is still the address the token was sent to. Returns
// CodeInvalidToken for an unknown, used or expired token.
func (s *Store) VerifyEmail(ctx context.Context, hash []byte, now time.Time) (uuid.UUID, error) {
	var uid uuid.UUID
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		t, err := s.spendToken(ctx, tx, domain.PurposeVerifyEmail, hash, now)
		if err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, s.q(`UPDATE users SET email_verified = ?, updated_at = ?,
			email_verified_at = COALESCE(email_verified_at, ?) WHERE id = ? AND email = ?`),
			true, ts(now), ts(now), t.UserID, t.Email)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return invalidRecoveryToken() // the address changed since the mail was sent
		}
		uid = t.UserID
		return s.spendOutstanding(ctx, tx, t.UserID, domain.PurposeVerifyEmail, now)
	})
	return uid, err
}

// ChangePassword replaces the password hash if it still equals old, spends
// the outstanding reset tokens, revokes every other session and, with
// revokeKeys, every personal API key, in one transaction. Returns
// CodeNotFound if the user does not exist or the hash moved on.
func (s *Store) ChangePassword(ctx context.Context, userID uuid.UUID, old, new string, keep uuid.UUID, revokeKeys bool, now time.Time) ([]uuid.UUID, []domain.APIKey, error) {
	var ids []uuid.UUID
	var keys []domain.APIKey
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		ids, keys = nil, nil
		r, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`),
			new, ts(now), userID, old)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return domain.Errorf(domain.CodeNotFound, "user not found")
		}
		if err := s.spendOutstanding(ctx, tx, userID, domain.PurposePasswordReset, now); err != nil {
			return err
		}
		if ids, err = s.revokeUserSessionsTx(ctx, tx, userID, keep, now); err != nil {
			return err
		}
		if revokeKeys {
			keys, err = s.revokeUserAPIKeysTx(ctx, tx, userID, now)
		}
		return err
	})
	return ids, keys, err
}
