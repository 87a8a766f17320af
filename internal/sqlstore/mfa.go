package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// Multi-factor authentication: factors, WebAuthn credentials, challenges,
// recovery codes, used TOTP steps, and the assurance of sessions. Secrets
// arrive sealed (TOTP seeds, credential records) or hashed (challenges,
// recovery codes); nothing here sees them in the clear.

type factorRow struct {
	ID             uuid.UUID     `db:"id"`
	UserID         uuid.UUID     `db:"user_id"`
	Type           string        `db:"type"`
	Name           string        `db:"name"`
	VerifiedAt     nts           `db:"verified_at"`
	CreatedAt      ts            `db:"created_at"`
	LastUsedAt     nts           `db:"last_used_at"`
	TOTPSecret     []byte        `db:"totp_secret"`
	CredentialID   []byte        `db:"credential_id"`
	Credential     []byte        `db:"credential"`
	BackupEligible *bool         `db:"backup_eligible"`
	BackedUp       *bool         `db:"backed_up"`
	Passwordless   *bool         `db:"passwordless"`
	SessionID      uuid.NullUUID `db:"session_id"`
}

const factorSelect = `SELECT f.id, f.user_id, f.type, f.name, f.verified_at, f.created_at, f.last_used_at, f.totp_secret, f.session_id,
	w.credential_id, w.credential, w.backup_eligible, w.backed_up, w.passwordless
	FROM mfa_factors f LEFT JOIN mfa_webauthn_credentials w ON w.factor_id = f.id`

func (r *factorRow) domain() domain.Factor {
	f := domain.Factor{ID: r.ID, UserID: r.UserID, Type: domain.FactorType(r.Type), Name: r.Name,
		VerifiedAt: r.VerifiedAt.ptr(), CreatedAt: time.Time(r.CreatedAt), LastUsedAt: r.LastUsedAt.ptr(), TOTPSecret: r.TOTPSecret}
	if r.CredentialID != nil {
		f.WebAuthn = &domain.WebAuthnCredential{CredentialID: r.CredentialID, Sealed: r.Credential,
			BackupEligible: r.BackupEligible != nil && *r.BackupEligible, BackedUp: r.BackedUp != nil && *r.BackedUp,
			Passwordless: r.Passwordless != nil && *r.Passwordless}
	}
	if r.SessionID.Valid {
		id := r.SessionID.UUID
		f.SessionID = &id
	}
	return f
}

// ListFactors returns every factor of the user, oldest first.
func (s *Store) ListFactors(ctx context.Context, userID uuid.UUID) ([]domain.Factor, error) {
	var rows []factorRow
	if err := s.db.SelectContext(ctx, &rows, s.q(factorSelect+` WHERE f.user_id = ? ORDER BY f.created_at, f.id`), userID); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Factor, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// HasVerifiedFactor reports whether the user has a verified factor.
func (s *Store) HasVerifiedFactor(ctx context.Context, userID uuid.UUID) (bool, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM mfa_factors WHERE user_id = ? AND verified_at IS NOT NULL`, userID); err != nil {
		return false, translate(err)
	}
	return n > 0, nil
}

// FactorByCredentialID returns the verified WebAuthn factor of the
// credential. Returns CodeNotFound if there is none.
func (s *Store) FactorByCredentialID(ctx context.Context, credentialID []byte) (*domain.Factor, error) {
	var r factorRow
	if err := s.db.GetContext(ctx, &r, s.q(factorSelect+` WHERE w.credential_id = ? AND f.verified_at IS NOT NULL`), credentialID); err != nil {
		return nil, translate(err)
	}
	f := r.domain()
	return &f, nil
}

func (s *Store) insertFactor(ctx context.Context, tx *sqlx.Tx, f *domain.Factor) error {
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO mfa_factors (id, user_id, type, name, verified_at, created_at, last_used_at, totp_secret, session_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), f.ID, f.UserID, string(f.Type), f.Name, ntsOf(f.VerifiedAt), ts(f.CreatedAt),
		ntsOf(f.LastUsedAt), f.TOTPSecret, nullUUID(f.SessionID)); err != nil {
		return err
	}
	if w := f.WebAuthn; w != nil {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO mfa_webauthn_credentials (factor_id, user_id, credential_id, credential, backup_eligible, backed_up, passwordless)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), f.ID, f.UserID, w.CredentialID, w.Sealed, w.BackupEligible, w.BackedUp, w.Passwordless); err != nil {
			return err
		}
	}
	return nil
}

// CreateFactor stores a factor (an unverified TOTP enrolment). Returns
// CodeConflict if its id or credential id exists.
func (s *Store) CreateFactor(ctx context.Context, f *domain.Factor) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.insertFactor(ctx, tx, f) })
}

// ConfirmFactor does what a factor's verification writes, in one
// transaction: it stores the new factor (c.New) or marks the user's
// unverified factor verified, deletes every other pending enrolment of the
// user, replaces the recovery codes when c.RecoveryHashes is not nil, and
// raises the session's assurance. It
// returns the session. Returns CodeNotFound if the factor is not an
// unverified factor of the user or the session is not an active session of
// the user; CodeConflict if the credential is already registered.
func (s *Store) ConfirmFactor(ctx context.Context, c domain.FactorChange) (*domain.Session, error) {
	var sess *domain.Session
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		f := c.Factor
		if c.New {
			if err := s.insertFactor(ctx, tx, f); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, s.q(`UPDATE mfa_factors SET verified_at = ?, last_used_at = ?
				WHERE id = ? AND user_id = ? AND verified_at IS NULL`), ts(c.Now), ts(c.Now), f.ID, f.UserID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return domain.Errorf(domain.CodeNotFound, "factor not found")
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM mfa_factors WHERE user_id = ? AND verified_at IS NULL AND id <> ?`),
			f.UserID, f.ID); err != nil {
			return err
		}
		if c.RecoveryHashes != nil {
			if err := s.replaceRecoveryCodes(ctx, tx, f.UserID, c.RecoveryHashes, c.Now); err != nil {
				return err
			}
		}
		var err error
		sess, err = s.setAssurance(ctx, tx, f.UserID, c.SessionID, c.AAL, c.AMR, c.Refresh, c.Now)
		return err
	})
	return sess, err
}

// SetSessionAssurance sets the assurance level and methods of the user's
// active session, replaces its refresh token with rt (the live one counts
// as spent, as after a rotation), and returns the session. Returns
// CodeNotFound if it is not an active session of the user, or is an
// impersonation session (which never rises above aal1).
func (s *Store) SetSessionAssurance(ctx context.Context, userID, sessionID uuid.UUID, aal string, amr []string, rt *domain.RefreshToken, now time.Time) (*domain.Session, error) {
	var sess *domain.Session
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		sess, err = s.setAssurance(ctx, tx, userID, sessionID, aal, amr, rt, now)
		return err
	})
	return sess, err
}

func (s *Store) setAssurance(ctx context.Context, tx *sqlx.Tx, userID, sessionID uuid.UUID, aal string, amr []string, rt *domain.RefreshToken, now time.Time) (*domain.Session, error) {
	var r sessionRow
	err := tx.GetContext(ctx, &r, s.q(`UPDATE sessions SET aal = ?, amr = ?, mfa_at = ?
		WHERE id = ? AND user_id = ? AND actor_id IS NULL AND `+activeAt("", "?")+`
		RETURNING `+sessionCols), aalOf(aal), joinAMR(amr), ts(now), sessionID, userID, ts(now), ts(now))
	if err != nil {
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "session not found")
		}
		return nil, err
	}
	sess := r.domain()
	if rt != nil {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET used_at = ? WHERE session_id = ? AND used_at IS NULL AND revoked_at IS NULL`),
			ts(now), sessionID); err != nil {
			return nil, err
		}
		if err := s.insertRefreshToken(ctx, tx, rt); err != nil {
			return nil, err
		}
	}
	return &sess, nil
}

// RenameFactor renames the user's factor and returns it. Returns
// CodeNotFound if it is not a factor of the user.
func (s *Store) RenameFactor(ctx context.Context, userID, id uuid.UUID, name string) (*domain.Factor, error) {
	res, err := s.exec(ctx, `UPDATE mfa_factors SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
	if err != nil {
		return nil, translate(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, domain.Errorf(domain.CodeNotFound, "factor not found")
	}
	var r factorRow
	if err := s.db.GetContext(ctx, &r, s.q(factorSelect+` WHERE f.id = ? AND f.user_id = ?`), id, userID); err != nil {
		return nil, translate(err)
	}
	f := r.domain()
	return &f, nil
}

// DeleteFactor removes the user's factor and returns how many verified
// factors the user has left; with none left, the recovery codes are
// deleted too. Returns CodeNotFound if it is not a factor of the user.
func (s *Store) DeleteFactor(ctx context.Context, userID, id uuid.UUID) (int, error) {
	var left int
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM mfa_factors WHERE id = ? AND user_id = ?`), id, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return domain.Errorf(domain.CodeNotFound, "factor not found")
		}
		// SQLite does not cascade without PRAGMA foreign_keys: the
		// dependent rows go explicitly on both databases.
		for _, q := range []string{`DELETE FROM mfa_webauthn_credentials WHERE factor_id = ?`, `DELETE FROM mfa_totp_steps WHERE factor_id = ?`} {
			if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
				return err
			}
		}
		if err := tx.GetContext(ctx, &left, s.q(`SELECT COUNT(*) FROM mfa_factors WHERE user_id = ? AND verified_at IS NOT NULL`), userID); err != nil {
			return err
		}
		if left == 0 {
			_, err = tx.ExecContext(ctx, s.q(`DELETE FROM mfa_recovery_codes WHERE user_id = ?`), userID)
		}
		return err
	})
	return left, err
}

// UseFactor records a use of the factor: last_used_at, and for a WebAuthn
// factor its updated (sealed) credential record and backup state.
func (s *Store) UseFactor(ctx context.Context, f *domain.Factor, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE mfa_factors SET last_used_at = ? WHERE id = ?`), ts(now), f.ID); err != nil {
			return err
		}
		if w := f.WebAuthn; w != nil {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE mfa_webauthn_credentials SET credential = ?, backed_up = ? WHERE factor_id = ?`),
				w.Sealed, w.BackedUp, f.ID)
			return err
		}
		return nil
	})
}

// UseTOTPStep records that the factor's code of the time step was used.
// Returns CodeConflict if it was already: a replayed code. Steps more than
// ten steps older are forgotten.
func (s *Store) UseTOTPStep(ctx context.Context, factorID uuid.UUID, step int64, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO mfa_totp_steps (factor_id, step, used_at) VALUES (?, ?, ?)`), factorID, step, ts(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM mfa_totp_steps WHERE factor_id = ? AND step < ?`), factorID, step-10)
		return err
	})
}

// UseRecoveryCode spends the user's unused recovery code with the hash.
// Returns CodeNotFound if there is none.
func (s *Store) UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte, now time.Time) error {
	res, err := s.exec(ctx, `UPDATE mfa_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, ts(now), userID, hash)
	if err != nil {
		return translate(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return domain.Errorf(domain.CodeNotFound, "recovery code not found")
	}
	return nil
}

// ReplaceRecoveryCodes replaces every recovery code of the user.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, hashes [][]byte, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return s.replaceRecoveryCodes(ctx, tx, userID, hashes, now)
	})
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, tx *sqlx.Tx, userID uuid.UUID, hashes [][]byte, now time.Time) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM mfa_recovery_codes WHERE user_id = ?`), userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`), userID, h, ts(now)); err != nil {
			return err
		}
	}
	return nil
}

// CountRecoveryCodes returns how many unused recovery codes the user has.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// SaveChallenge stores a pending ceremony. Expired ones are left to
// pruning (domain.PruneMFAChallenges); TakeChallenge refuses them.
func (s *Store) SaveChallenge(ctx context.Context, c *domain.Challenge) error {
	_, err := s.exec(ctx, `INSERT INTO mfa_challenges (challenge_hash, kind, user_id, session_id, data, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, c.Hash, c.Kind, nullUUID(c.UserID), nullUUID(c.SessionID), c.Data, ts(c.CreatedAt), ts(c.ExpiresAt))
	return translate(err)
}

// TakeChallenge removes and returns the pending ceremony with the hash, so
// that it is used at most once. Returns CodeNotFound if there is none or it
// expired.
func (s *Store) TakeChallenge(ctx context.Context, hash []byte, now time.Time) (*domain.Challenge, error) {
	var r struct {
		Hash      []byte        `db:"challenge_hash"`
		Kind      string        `db:"kind"`
		UserID    uuid.NullUUID `db:"user_id"`
		SessionID uuid.NullUUID `db:"session_id"`
		Data      []byte        `db:"data"`
		CreatedAt ts            `db:"created_at"`
		ExpiresAt ts            `db:"expires_at"`
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`DELETE FROM mfa_challenges WHERE challenge_hash = ?
			RETURNING challenge_hash, kind, user_id, session_id, data, created_at, expires_at`), hash)
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(time.Time(r.ExpiresAt)) {
		return nil, domain.Errorf(domain.CodeNotFound, "challenge not found")
	}
	return &domain.Challenge{Hash: r.Hash, Kind: r.Kind, UserID: ptrUUID(r.UserID), SessionID: ptrUUID(r.SessionID), Data: r.Data,
		CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt)}, nil
}

// aalOf is the stored assurance level: "" (unset) is aal1.
func aalOf(aal string) string {
	if aal == "" {
		return domain.AAL1
	}
	return aal
}

// joinAMR and splitAMR store a session's methods as a comma-separated list.
func joinAMR(amr []string) string { return strings.Join(amr, ",") }

func splitAMR(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// RecordMFAFailure counts a failed second-factor attempt of the user in one
// atomic update and, when the count reaches lockAfter, locks the user's
// second factors at now. It returns the count and whether this failure is
// the one that locked them. Returns CodeNotFound for an unknown user.
func (s *Store) RecordMFAFailure(ctx context.Context, userID uuid.UUID, lockAfter int, now time.Time) (int, bool, error) {
	var r struct {
		Failures int `db:"mfa_failures"`
		LockedAt nts `db:"mfa_locked_at"`
	}
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`UPDATE users SET mfa_failures = mfa_failures + 1,
			mfa_locked_at = CASE WHEN mfa_locked_at IS NULL AND mfa_failures + 1 >= ? THEN ? ELSE mfa_locked_at END
			WHERE id = ? RETURNING mfa_failures, mfa_locked_at`), lockAfter, ts(now), userID)
	})
	if err != nil {
		return 0, false, translate(err)
	}
	// The count moves by one per atomic update, so exactly one failure sees
	// it reach lockAfter.
	return r.Failures, r.LockedAt.Valid && r.Failures == lockAfter, nil
}

// ResetMFAFailures clears the user's failed second-factor attempts and
// lock; it writes nothing when there are none.
func (s *Store) ResetMFAFailures(ctx context.Context, userID uuid.UUID) error {
	_, err := s.exec(ctx, `UPDATE users SET mfa_failures = 0, mfa_locked_at = NULL
		WHERE id = ? AND (mfa_failures > 0 OR mfa_locked_at IS NOT NULL)`, userID)
	return translate(err)
}

// MFALocked reports whether the user's second factors are locked.
func (s *Store) MFALocked(ctx context.Context, userID uuid.UUID) (bool, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM users WHERE id = ? AND mfa_locked_at IS NOT NULL`, userID); err != nil {
		return false, translate(err)
	}
	return n > 0, nil
}
