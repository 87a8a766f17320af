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

// userSummaryRow is a user with the count of their verified factors.
type userSummaryRow struct {
	userRow
	FactorCount int `db:"factor_count"`
}

// verifiedFactorCount is the subquery that counts a listed user's verified
// second factors.
const verifiedFactorCount = `(SELECT COUNT(*) FROM mfa_factors f WHERE f.user_id = users.id AND f.verified_at IS NOT NULL) AS factor_count`

// likePrefix escapes s for a LIKE pattern matching what starts with it.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// ListUsers returns up to limit users that match the filter after the
// cursor, newest first, with their verified factor counts.
func (s *Store) ListUsers(ctx context.Context, f domain.UserFilter, after *domain.Cursor, limit int) ([]domain.UserSummary, error) {
	var conds []string
	var args []any
	if f.Email != "" {
		conds, args = append(conds, `email = ?`), append(args, f.Email)
	}
	if f.EmailPrefix != "" {
		conds, args = append(conds, `email LIKE ? ESCAPE '\'`), append(args, likePrefix(f.EmailPrefix))
	}
	if f.OrgID != nil {
		conds = append(conds, `(org_id = ? OR EXISTS (SELECT 1 FROM org_members m WHERE m.org_id = ? AND m.user_id = users.id))`)
		args = append(args, *f.OrgID, *f.OrgID)
	}
	if f.ExternalID != "" {
		conds, args = append(conds, `external_id = ?`), append(args, f.ExternalID)
	}
	if f.CreatedAfter != nil {
		conds, args = append(conds, `created_at > ?`), append(args, ts(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		conds, args = append(conds, `created_at < ?`), append(args, ts(*f.CreatedBefore))
	}
	if f.Banned != nil {
		if *f.Banned {
			conds = append(conds, `(banned_until IS NOT NULL AND banned_until > ?)`)
		} else {
			conds = append(conds, `(banned_until IS NULL OR banned_until <= ?)`)
		}
		args = append(args, ts(f.Now))
	}
	where := `1 = 1`
	if len(conds) > 0 {
		where = strings.Join(conds, ` AND `)
	}
	pc, pargs := pageCond(after, true)
	var rows []userSummaryRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+userReadCols+`, `+verifiedFactorCount+` FROM users WHERE `+where+pc+
		` ORDER BY created_at DESC, id DESC LIMIT ?`), append(append(args, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.UserSummary, len(rows))
	for i := range rows {
		out[i] = domain.UserSummary{User: *rows[i].domain(), FactorCount: rows[i].FactorCount}
	}
	return out, nil
}

// UserSummary returns the user with their verified factor count. Returns
// CodeNotFound if there is none.
func (s *Store) UserSummary(ctx context.Context, id uuid.UUID) (*domain.UserSummary, error) {
	var r userSummaryRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+userReadCols+`, `+verifiedFactorCount+` FROM users WHERE id = ?`), id); err != nil {
		return nil, translate(err)
	}
	return &domain.UserSummary{User: *r.domain(), FactorCount: r.FactorCount}, nil
}

// UpdateUser changes the user in one transaction: fn gets the stored user
// (locked on PostgreSQL), changes it, and returns the outbound events the
// change emits, written in the same transaction. Only the email,
// email_verified, VerifiedAt, AppMetadata, UserMetadata, BannedUntil and
// BanReason fields are written. Returns CodeNotFound for an unknown user,
// CodeEmailTaken when another account has the new email, and fn's error.
func (s *Store) UpdateUser(ctx context.Context, id uuid.UUID, now time.Time, fn func(u *domain.User) ([]domain.OutboundEvent, error)) (*domain.User, error) {
	var out *domain.User
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		lock := s.rowLock(" FOR UPDATE")
		var r userRow
		if err := tx.GetContext(ctx, &r, s.q(`SELECT `+userReadCols+` FROM users WHERE id = ?`+lock), id); err != nil {
			return translate(err)
		}
		u := r.domain()
		evs, err := fn(u)
		if err != nil {
			return err
		}
		u.UpdatedAt = now
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET email = ?, email_verified = ?, email_verified_at = ?, app_metadata = ?,
			user_metadata = ?, banned_until = ?, ban_reason = ?, updated_at = ? WHERE id = ?`),
			nullStr(u.Email), u.EmailVerified, ntsOf(u.VerifiedAt), nullJSON(u.AppMetadata), nullJSON(u.UserMetadata),
			ntsOf(u.BannedUntil), nullStr(u.BanReason), ts(now), id); err != nil {
			if domain.IsCode(translate(err), domain.CodeConflict) {
				return &domain.Error{Code: domain.CodeEmailTaken, Message: "an account with this email already exists", Err: err}
			}
			return err
		}
		for i := range evs {
			if err := s.emit(ctx, tx, &evs[i]); err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	return out, err
}

// userExists returns CodeNotFound unless the user exists.
func (s *Store) userExists(ctx context.Context, tx *sqlx.Tx, id uuid.UUID) error {
	var n int
	if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM users WHERE id = ?`), id); err != nil {
		return err
	}
	if n == 0 {
		return domain.Errorf(domain.CodeNotFound, "user not found")
	}
	return nil
}

// EndUserSessions revokes every active session of the user with its
// refresh tokens and, when it revoked any, emits one session.revoked event
// with their count and the reason, in the same transaction. It returns the
// revoked ids. Returns CodeNotFound for an unknown user.
func (s *Store) EndUserSessions(ctx context.Context, userID uuid.UUID, reason string, now time.Time) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		ids = nil
		if err := s.userExists(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		if ids, err = s.revokeUserSessionsTx(ctx, tx, userID, uuid.Nil, now); err != nil || len(ids) == 0 {
			return err
		}
		return s.emit(ctx, tx, sessionsRevoked(userID, nil, ids, reason, now))
	})
	return ids, err
}

// RemoveFactors deletes the user's factor id (nil: every factor) with its
// credentials, and the recovery codes when no verified factor is left;
// queues m (when not nil) and emits mfa.factor.removed per factor, all in
// one transaction. It returns the removed factors. Returns CodeNotFound for
// an unknown user, or an unknown factor of theirs when id is set.
func (s *Store) RemoveFactors(ctx context.Context, userID uuid.UUID, id *uuid.UUID, m *domain.OutboxMessage, now time.Time) ([]domain.Factor, error) {
	var removed []domain.Factor
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		removed = nil
		if err := s.userExists(ctx, tx, userID); err != nil {
			return err
		}
		q := `SELECT id, type, name FROM mfa_factors WHERE user_id = ?`
		args := []any{userID}
		if id != nil {
			q, args = q+` AND id = ?`, append(args, *id)
		}
		var rows []struct {
			ID   uuid.UUID `db:"id"`
			Type string    `db:"type"`
			Name string    `db:"name"`
		}
		if err := tx.SelectContext(ctx, &rows, s.q(q+` ORDER BY created_at, id`), args...); err != nil {
			return err
		}
		if id != nil && len(rows) == 0 {
			return domain.Errorf(domain.CodeNotFound, "factor not found")
		}
		for _, r := range rows {
			for _, del := range []string{`DELETE FROM mfa_webauthn_credentials WHERE factor_id = ?`, `DELETE FROM mfa_totp_steps WHERE factor_id = ?`,
				`DELETE FROM mfa_factors WHERE id = ?`} {
				if _, err := tx.ExecContext(ctx, s.q(del), r.ID); err != nil {
					return err
				}
			}
			if err := s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutMFAFactorRemoved, UserID: idPtr(userID), CreatedAt: now,
				Data: map[string]any{"user_id": userID, "factor_id": r.ID, "factor_type": r.Type, "removed_by": "operator"}}); err != nil {
				return err
			}
			removed = append(removed, domain.Factor{ID: r.ID, UserID: userID, Type: domain.FactorType(r.Type), Name: r.Name})
		}
		var left int
		if err := tx.GetContext(ctx, &left, s.q(`SELECT COUNT(*) FROM mfa_factors WHERE user_id = ? AND verified_at IS NOT NULL`), userID); err != nil {
			return err
		}
		if left == 0 {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM mfa_recovery_codes WHERE user_id = ?`), userID); err != nil {
				return err
			}
		}
		if m != nil && len(removed) > 0 {
			return s.insertOutbox(ctx, tx, m)
		}
		return nil
	})
	return removed, err
}

// soleOwnedOrgs returns the organizations whose only owner is the user.
func (s *Store) soleOwnedOrgs(ctx context.Context, tx *sqlx.Tx, userID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := tx.SelectContext(ctx, &ids, s.q(`SELECT m.org_id FROM org_members m WHERE m.user_id = ? AND m.role = 'owner'
		AND NOT EXISTS (SELECT 1 FROM org_members o WHERE o.org_id = m.org_id AND o.role = 'owner' AND o.user_id <> m.user_id)
		ORDER BY m.org_id`), userID)
	return ids, err
}

// DeleteUser deletes the user with their sessions, refresh tokens, API
// keys, factors, recovery tokens, memberships and security events, and
// emits user.deleted, in one transaction. The organizations the user alone
// owns are deleted with them (with their keys, invitations and delegated
// identities) when deleteSoleOwnedOrgs is set; otherwise the deletion is
// refused with CodeConflict. Returns CodeNotFound for an unknown user.
func (s *Store) DeleteUser(ctx context.Context, id uuid.UUID, deleteSoleOwnedOrgs bool, now time.Time) (*domain.DeletedUser, error) {
	var out *domain.DeletedUser
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		out = &domain.DeletedUser{}
		var email sql.NullString
		if err := tx.GetContext(ctx, &email, s.q(`SELECT email FROM users WHERE id = ?`), id); err != nil {
			return translate(err)
		}
		orgs, err := s.soleOwnedOrgs(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(orgs) > 0 && !deleteSoleOwnedOrgs {
			return domain.Errorf(domain.CodeConflict, "the user is the only owner of %d organization(s): make another member owner, or pass delete_sole_owned_orgs=true to delete them too", len(orgs))
		}
		out.Orgs = orgs
		// What the caches may hold: active sessions and keys that go.
		sessQ := `SELECT id FROM sessions WHERE revoked_at IS NULL AND (user_id = ?`
		keyQ := `SELECT ` + apiKeyCols + ` FROM api_keys WHERE (user_id = ?`
		args := []any{id}
		for _, o := range orgs {
			sessQ += ` OR org_id = ?`
			keyQ += ` OR org_id = ?`
			args = append(args, o)
		}
		if err := tx.SelectContext(ctx, &out.Sessions, s.q(sessQ+`)`), args...); err != nil {
			return err
		}
		var keys []apiKeyRow
		if err := tx.SelectContext(ctx, &keys, s.q(keyQ+`) AND revoked_at IS NULL`), args...); err != nil {
			return err
		}
		for i := range keys {
			out.Keys = append(out.Keys, *keys[i].domain())
		}
		for _, o := range orgs {
			for _, del := range []string{`DELETE FROM users WHERE org_id = ?`, `DELETE FROM organizations WHERE id = ?`} {
				if _, err := tx.ExecContext(ctx, s.q(del), o); err != nil {
					return err
				}
			}
		}
		// The foreign keys cascade on both databases; the security events
		// have none and go explicitly.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM security_events WHERE user_id = ?`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM users WHERE id = ?`), id); err != nil {
			return err
		}
		orgIDs := make([]string, len(orgs))
		for i, o := range orgs {
			orgIDs[i] = o.String()
		}
		data := map[string]any{"user_id": id.String(), "deleted_organizations": orgIDs}
		if email.Valid {
			data["email"] = email.String
		}
		return s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutUserDeleted, UserID: idPtr(id), CreatedAt: now, Data: data})
	})
	return out, err
}
