package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type orgRow struct {
	ID         uuid.UUID      `db:"id"`
	Name       string         `db:"name"`
	CreatedAt  ts             `db:"created_at"`
	Role       sql.NullString `db:"role"`
	RequireMFA bool           `db:"require_mfa"`
}

func (r *orgRow) domain() domain.Organization {
	return domain.Organization{ID: r.ID, Name: r.Name, CreatedAt: time.Time(r.CreatedAt), Role: domain.Role(r.Role.String), RequireMFA: r.RequireMFA}
}

type memberRow struct {
	OrgID     uuid.UUID      `db:"org_id"`
	UserID    uuid.UUID      `db:"user_id"`
	Email     sql.NullString `db:"email"`
	Role      string         `db:"role"`
	CreatedAt ts             `db:"created_at"`
}

func (r *memberRow) domain() domain.Member {
	return domain.Member{OrgID: r.OrgID, UserID: r.UserID, Email: r.Email.String, Role: domain.Role(r.Role), CreatedAt: time.Time(r.CreatedAt)}
}

const memberSelect = `SELECT m.org_id, m.user_id, u.email, m.role, m.created_at FROM org_members m JOIN users u ON u.id = m.user_id`

// CreateOrganization stores the organization and its owner in one
// transaction, with the owner's organization.member.added event.
func (s *Store) CreateOrganization(ctx context.Context, o *domain.Organization, owner *domain.Member) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)`),
			o.ID, o.Name, ts(o.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
			owner.OrgID, owner.UserID, string(owner.Role), ts(owner.CreatedAt)); err != nil {
			return err
		}
		return s.emit(ctx, tx, memberAdded(owner, nil))
	})
}

// OrganizationByID returns the organization. Returns CodeNotFound if there
// is none.
func (s *Store) OrganizationByID(ctx context.Context, id uuid.UUID) (*domain.Organization, error) {
	var r orgRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT id, name, created_at, NULL AS role, require_mfa FROM organizations WHERE id = ?`), id); err != nil {
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "organization not found")
		}
		return nil, translate(err)
	}
	o := r.domain()
	return &o, nil
}

// UpdateOrganization sets the organization's name and require_mfa where
// given and returns it. Returns CodeNotFound if there is none.
func (s *Store) UpdateOrganization(ctx context.Context, id uuid.UUID, name *string, requireMFA *bool) (*domain.Organization, error) {
	var r orgRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &r, s.q(`UPDATE organizations SET name = COALESCE(?, name), require_mfa = COALESCE(?, require_mfa)
			WHERE id = ? RETURNING id, name, created_at, NULL AS role, require_mfa`), name, requireMFA, id)
	})
	if err != nil {
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "organization not found")
		}
		return nil, translate(err)
	}
	o := r.domain()
	return &o, nil
}

// ListOrganizations returns the user's organizations with the user's role,
// oldest first.
func (s *Store) ListOrganizations(ctx context.Context, userID uuid.UUID, after *domain.Cursor, limit int) ([]domain.Organization, error) {
	var rows []orgRow
	pc, pargs := pageCondOn("o.created_at", "o.id", after, false)
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT o.id, o.name, o.created_at, m.role, o.require_mfa FROM organizations o
		JOIN org_members m ON m.org_id = o.id WHERE m.user_id = ?`+pc+` ORDER BY o.created_at, o.id LIMIT ?`),
		append(append([]any{userID}, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Organization, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// Member returns the user's membership. Returns CodeNotFound if the user is
// not a member.
func (s *Store) Member(ctx context.Context, orgID, userID uuid.UUID) (*domain.Member, error) {
	return s.member(ctx, s.db, orgID, userID)
}

func (s *Store) member(ctx context.Context, q sqlx.QueryerContext, orgID, userID uuid.UUID) (*domain.Member, error) {
	var r memberRow
	if err := sqlx.GetContext(ctx, q, &r, s.q(memberSelect+` WHERE m.org_id = ? AND m.user_id = ?`), orgID, userID); err != nil {
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "member not found")
		}
		return nil, translate(err)
	}
	m := r.domain()
	return &m, nil
}

// ListMembers returns the organization's members, oldest first.
func (s *Store) ListMembers(ctx context.Context, orgID uuid.UUID, after *domain.Cursor, limit int) ([]domain.Member, error) {
	var rows []memberRow
	pc, pargs := pageCondOn("m.created_at", "m.user_id", after, false)
	if err := s.db.SelectContext(ctx, &rows, s.q(memberSelect+` WHERE m.org_id = ?`+pc+` ORDER BY m.created_at, m.user_id LIMIT ?`),
		append(append([]any{orgID}, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Member, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// lockOrg serialises membership changes of one organization. SQLite needs
// nothing: its write transactions begin IMMEDIATE and so run one at a time.
func (s *Store) lockOrg(ctx context.Context, tx *sqlx.Tx, orgID uuid.UUID) error {
	if s.dialect != Postgres {
		return nil
	}
	var id uuid.UUID
	err := tx.GetContext(ctx, &id, `SELECT id FROM organizations WHERE id = $1 FOR UPDATE`, orgID)
	if domain.IsCode(translate(err), domain.CodeNotFound) {
		return domain.Errorf(domain.CodeNotFound, "member not found")
	}
	return err
}

// keepsAnOwner returns CodeLastOwner when the owner m is the organization's
// only one.
func (s *Store) keepsAnOwner(ctx context.Context, tx *sqlx.Tx, orgID uuid.UUID) error {
	var n int
	if err := tx.GetContext(ctx, &n, s.q(`SELECT COUNT(*) FROM org_members WHERE org_id = ? AND role = ?`), orgID, string(domain.RoleOwner)); err != nil {
		return err
	}
	if n <= 1 {
		return domain.Errorf(domain.CodeLastOwner, "an organization must keep at least one owner")
	}
	return nil
}

// UpdateMember changes a member's role through fn and revokes at now the
// member's pending invitations that the new role does not grant, in one
// transaction serialised per organization, with organization.member.updated
// when the role changed and one invitation.revoked (reason
// inviter_role_changed) for the invitations. Returns fn's error,
// CodeNotFound, or CodeLastOwner when the last owner would stop being one.
func (s *Store) UpdateMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *domain.Member) error, now time.Time) (*domain.Member, error) {
	var out *domain.Member
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.lockOrg(ctx, tx, orgID); err != nil {
			return err
		}
		m, err := s.member(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		old := m.Role
		if err := fn(m); err != nil {
			return err
		}
		if !m.Role.Valid() {
			return domain.Errorf(domain.CodeInvalidRequest, "role must be owner, admin or member")
		}
		if old == domain.RoleOwner && m.Role != domain.RoleOwner {
			if err := s.keepsAnOwner(ctx, tx, orgID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE org_members SET role = ? WHERE org_id = ? AND user_id = ?`), string(m.Role), orgID, userID); err != nil {
			return err
		}
		out = m
		revoked, err := s.revokeInvitationsBy(ctx, tx, orgID, userID, m.Role, now)
		if err != nil {
			return err
		}
		if m.Role != old {
			if err := s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutOrgMemberUpdated, OrgID: idPtr(orgID), UserID: idPtr(userID), CreatedAt: now,
				Data: map[string]any{"org_id": orgID, "user_id": userID, "role": string(m.Role), "previous_role": string(old)}}); err != nil {
				return err
			}
		}
		return s.emitEach(ctx, tx, revoked)
	})
	return out, err
}

// RemoveMember deletes a membership unless fn vetoes it, revokes at now the
// member's pending invitations and, with revokeKeys, every active key of
// the organization the member created, in one transaction serialised per
// organization, with the organization.member.removed event, one
// api_key.revoked (reason member_removed) for the keys and one
// invitation.revoked (reason inviter_removed) for the invitations. Returns the revoked
// keys; fn's error, CodeNotFound, or CodeLastOwner when the last owner
// would leave.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *domain.Member) error, now time.Time, revokeKeys bool) ([]domain.APIKey, error) {
	var keys []domain.APIKey
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		keys = nil
		if err := s.lockOrg(ctx, tx, orgID); err != nil {
			return err
		}
		m, err := s.member(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Role == domain.RoleOwner {
			if err := s.keepsAnOwner(ctx, tx, orgID); err != nil {
				return err
			}
		}
		if _, err = tx.ExecContext(ctx, s.q(`DELETE FROM org_members WHERE org_id = ? AND user_id = ?`), orgID, userID); err != nil {
			return err
		}
		revoked, err := s.revokeInvitationsBy(ctx, tx, orgID, userID, "", now)
		if err != nil {
			return err
		}
		if revokeKeys {
			if keys, err = s.revokeKeysWhere(ctx, tx, `org_id = ? AND created_by = ?`, now, orgID, userID); err != nil {
				return err
			}
		}
		removed := &domain.OutboundEvent{Type: domain.OutOrgMemberRemoved, OrgID: idPtr(orgID), UserID: idPtr(userID), CreatedAt: now,
			Data: map[string]any{"org_id": orgID, "user_id": userID, "role": string(m.Role)}}
		return s.emitEach(ctx, tx, removed, apiKeysRevoked(keys, reasonMemberRemoved, now), revoked)
	})
	return keys, err
}

// UpsertExternalUser returns the organization's identity for u.ExternalID,
// creating it on first use (with its user.created event), in one statement
// that has exactly one winner when two first uses race.
func (s *Store) UpsertExternalUser(ctx context.Context, u *domain.User) (*domain.User, error) {
	var r userRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &r, s.q(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, external_id) WHERE org_id IS NOT NULL DO UPDATE SET
				email_verified = CASE WHEN excluded.email IS NOT NULL AND excluded.email <> COALESCE(users.email, '')
					THEN excluded.email_verified ELSE users.email_verified END,
				email_verified_at = CASE WHEN excluded.email IS NOT NULL AND excluded.email <> COALESCE(users.email, '')
					THEN NULL ELSE users.email_verified_at END,
				email = COALESCE(excluded.email, users.email),
				metadata = COALESCE(excluded.metadata, users.metadata),
				updated_at = excluded.updated_at
			RETURNING `+userReadCols),
			u.ID, nullStr(u.Email), false, nil, nullUUID(u.OrgID), u.ExternalID, nullJSON(u.Metadata), ts(u.CreatedAt), ts(u.UpdatedAt)); err != nil {
			return err
		}
		// The upsert keeps the id of an existing identity: the new id came
		// back only if this statement created it.
		if r.ID != u.ID {
			return nil
		}
		return s.emit(ctx, tx, userCreated(r.domain(), "delegated"))
	})
	if err != nil {
		return nil, err
	}
	return r.domain(), nil
}

type orgSessionRow struct {
	sessionRow
	ExternalID sql.NullString `db:"external_id"`
}

// ListOrgSessions returns the organization's active delegated sessions,
// newest first, with their external ids.
func (s *Store) ListOrgSessions(ctx context.Context, orgID uuid.UUID, externalID string, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error) {
	q := `SELECT ` + prefixed("s", sessionCols, false) + `, u.external_id
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.org_id = ? AND u.org_id = s.org_id AND ` + activeAt("s", "?")
	args := []any{orgID, ts(now), ts(now)}
	if externalID != "" {
		q += ` AND u.external_id = ?`
		args = append(args, externalID)
	}
	pc, pargs := pageCondOn("s.created_at", "s.id", after, true)
	q += pc + ` ORDER BY s.created_at DESC, s.id DESC LIMIT ?`
	args = append(append(args, pargs...), limit)
	var rows []orgSessionRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Session, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
		out[i].ExternalID = rows[i].ExternalID.String
	}
	return out, nil
}

// RevokeOrgSession revokes a delegated session of the organization and its
// refresh tokens, with its session.revoked event, and returns its user. Returns CodeNotFound if it is not an
// active session of that organization.
func (s *Store) RevokeOrgSession(ctx context.Context, orgID, sessionID uuid.UUID, now time.Time) (uuid.UUID, error) {
	var userID uuid.UUID
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &userID, s.q(`UPDATE sessions SET revoked_at = ?
			WHERE id = ? AND org_id = ? AND revoked_at IS NULL RETURNING user_id`), ts(now), sessionID, orgID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE refresh_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL`), ts(now), sessionID); err != nil {
			return err
		}
		return s.emit(ctx, tx, sessionsRevoked(userID, &orgID, []uuid.UUID{sessionID}, reasonRevoked, now))
	})
	if domain.IsCode(err, domain.CodeNotFound) {
		return uuid.Nil, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	return userID, err
}
