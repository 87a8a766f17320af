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

// CreateUserWithMail stores a new user with its first session (none when
// sess is nil), a verification token and its mail in one transaction, with
// their user.created and session.created events. Returns
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
		if err := s.insertOutbox(ctx, tx, m); err != nil {
			return err
		}
		return s.emitEach(ctx, tx, userCreated(u, "signup"), sessionCreated(sess))
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

// RedeemRecoveryToken spends the token of the purpose with the hash and
// applies to its user the change that decide returns for it, with its
// events (password.reset for a password reset, email.verified, and what it
// revoked), in one transaction whose conditional update has exactly one winner among
// concurrent uses of the token. Returns CodeInvalidToken for an unknown,
// used or expired token, or when the change does not apply (its IfEmail no
// longer holds); the token then stays unspent.
func (s *Store) RedeemRecoveryToken(ctx context.Context, purpose string, hash []byte, now time.Time, decide func(*domain.RecoveryToken) domain.CredentialChange) (*domain.CredentialResult, error) {
	var res *domain.CredentialResult
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		t, err := s.spendToken(ctx, tx, purpose, hash, now)
		if err != nil {
			return err
		}
		c := decide(t)
		res, err = s.changeCredentialsTx(ctx, tx, t.UserID, c, now)
		if err == nil {
			err = s.emitCredentialChange(ctx, tx, res, c, purpose == domain.PurposePasswordReset, now)
		}
		if domain.IsCode(err, domain.CodeNotFound) {
			return invalidRecoveryToken()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ChangeCredentials applies the change to the user's credentials in one
// transaction, with the events of what it revoked (reason
// password_changed) and email.verified when it verified the email. Returns CodeNotFound if the user is not a password account
// or the change's conditions (IfPasswordHash, IfEmail) no longer hold.
func (s *Store) ChangeCredentials(ctx context.Context, userID uuid.UUID, c domain.CredentialChange, now time.Time) (*domain.CredentialResult, error) {
	var res *domain.CredentialResult
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		if res, err = s.changeCredentialsTx(ctx, tx, userID, c, now); err != nil {
			return err
		}
		return s.emitCredentialChange(ctx, tx, res, c, false, now)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// emitCredentialChange emits the events of the credential change c that
// made res, in its transaction: password.reset when reset (a reset token
// set the password), email.verified when the change verified the address
// for the first time, and one session.revoked and one
// api_key.revoked for what it revoked, whose reason is the password's
// reset or change.
func (s *Store) emitCredentialChange(ctx context.Context, tx *sqlx.Tx, res *domain.CredentialResult, c domain.CredentialChange, reset bool, now time.Time) error {
	var evs []*domain.OutboundEvent
	reason := reasonPasswordChanged
	if reset {
		reason = reasonPasswordReset
	}
	if reset && c.PasswordHash != "" {
		evs = append(evs, &domain.OutboundEvent{Type: domain.OutPasswordReset, UserID: idPtr(res.UserID), CreatedAt: now,
			Data: map[string]any{"user_id": res.UserID, "sessions_revoked": len(res.Revoked), "api_keys_revoked": len(res.RevokedKeys)}})
	}
	if c.VerifyEmail != "" {
		// Only a first verification is one: a reset of an address already
		// verified verifies nothing new.
		var at nts
		if err := tx.GetContext(ctx, &at, s.q(`SELECT email_verified_at FROM users WHERE id = ? AND email = ?`), res.UserID, c.VerifyEmail); err != nil {
			return err
		}
		if at.Valid && at.T.Sub(now).Abs() < time.Microsecond {
			evs = append(evs, &domain.OutboundEvent{Type: domain.OutEmailVerified, UserID: idPtr(res.UserID), CreatedAt: now,
				Data: map[string]any{"user_id": res.UserID, "email": c.VerifyEmail}})
		}
	}
	evs = append(evs, sessionsRevoked(res.UserID, nil, res.Revoked, reason, now), apiKeysRevoked(res.RevokedKeys, reason, now))
	return s.emitEach(ctx, tx, evs...)
}

// changeCredentialsTx applies c to the user inside tx: the user row first
// (its conditional update decides whether the change applies), then the
// recovery tokens, sessions and keys.
func (s *Store) changeCredentialsTx(ctx context.Context, tx *sqlx.Tx, userID uuid.UUID, c domain.CredentialChange, now time.Time) (*domain.CredentialResult, error) {
	q := `UPDATE users SET updated_at = ?`
	args := []any{ts(now)}
	if c.PasswordHash != "" {
		q += `, password_hash = ?`
		args = append(args, c.PasswordHash)
	}
	if c.VerifyEmail != "" {
		q += `, email_verified_at = CASE WHEN email = ? AND email_verified_at IS NULL THEN ? ELSE email_verified_at END,
			email_verified = CASE WHEN email = ? THEN ? ELSE email_verified END`
		args = append(args, c.VerifyEmail, ts(now), c.VerifyEmail, true)
	}
	q += ` WHERE id = ? AND org_id IS NULL`
	args = append(args, userID)
	if c.IfPasswordHash != "" {
		q += ` AND password_hash = ?`
		args = append(args, c.IfPasswordHash)
	}
	if c.IfEmail != "" {
		q += ` AND email = ?`
		args = append(args, c.IfEmail)
	}
	r, err := tx.ExecContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		return nil, domain.Errorf(domain.CodeNotFound, "no such password account, or it changed meanwhile")
	}
	for _, purpose := range c.SpendTokens {
		if err := s.spendOutstanding(ctx, tx, userID, purpose, now); err != nil {
			return nil, err
		}
	}
	res := &domain.CredentialResult{UserID: userID}
	if c.RevokeSessions {
		if res.Revoked, err = s.revokeUserSessionsTx(ctx, tx, userID, c.KeepSession, now); err != nil {
			return nil, err
		}
	}
	if c.RevokeAPIKeys {
		if res.RevokedKeys, err = s.revokeUserAPIKeysTx(ctx, tx, userID, now); err != nil {
			return nil, err
		}
	}
	if c.DisablePasskeyLogin {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE mfa_webauthn_credentials SET passwordless = ? WHERE user_id = ?`), false, userID); err != nil {
			return nil, err
		}
	}
	if c.UnlockMFA {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET mfa_failures = 0, mfa_locked_at = NULL WHERE id = ?`), userID); err != nil {
			return nil, err
		}
	}
	return res, nil
}
