package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

type invitationRow struct {
	ID        uuid.UUID     `db:"id"`
	OrgID     uuid.UUID     `db:"org_id"`
	Email     string        `db:"email"`
	Role      string        `db:"role"`
	Hash      []byte        `db:"token_hash"`
	InvitedBy uuid.NullUUID `db:"invited_by"`
	CreatedAt ts            `db:"created_at"`
	ExpiresAt ts            `db:"expires_at"`
}

const invitationCols = `id, org_id, email, role, token_hash, invited_by, created_at, expires_at`

func (r *invitationRow) domain() domain.Invitation {
	return domain.Invitation{ID: r.ID, OrgID: r.OrgID, Email: r.Email, Role: domain.Role(r.Role), Hash: r.Hash,
		InvitedBy: ptrUUID(r.InvitedBy), CreatedAt: time.Time(r.CreatedAt), ExpiresAt: time.Time(r.ExpiresAt)}
}

// pendingInvitation is the condition of an invitation that can still be
// accepted at a time (the argument).
const pendingInvitation = `accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?`

// revokeInvitationsBy revokes at now the organization's invitations pending
// at now that inviter sent and that the role ("" for none: a member who
// left) does not grant (domain.Role.Grants), in the caller's transaction,
// and returns the invitation.revoked event that lists them (reason
// inviter_role_changed, or inviter_removed for ""), for the caller to emit
// after its own; nil when none was pending.
func (s *Store) revokeInvitationsBy(ctx context.Context, tx *sqlx.Tx, orgID, inviter uuid.UUID, role domain.Role, now time.Time) (*domain.OutboundEvent, error) {
	var roles []any
	for _, r := range domain.Roles() {
		if !role.Grants(r) {
			roles = append(roles, string(r))
		}
	}
	if len(roles) == 0 {
		return nil, nil
	}
	in := strings.Repeat("?, ", len(roles)-1) + "?"
	var rows []revokedInvitation
	err := tx.SelectContext(ctx, &rows, s.q(`UPDATE org_invitations SET revoked_at = ?
		WHERE org_id = ? AND invited_by = ? AND role IN (`+in+`) AND `+pendingInvitation+`
		RETURNING id, email, role`),
		append(append([]any{ts(now), orgID, inviter}, roles...), ts(now))...)
	if err != nil {
		return nil, err
	}
	reason := "inviter_role_changed"
	if role == "" {
		reason = "inviter_removed"
	}
	return invitationsRevoked(orgID, rows, reason, now), nil
}

// revokedInvitation is what an invitation.revoked event tells of each
// invitation it lists.
type revokedInvitation struct {
	ID    uuid.UUID `db:"id" json:"invitation_id"`
	Email string    `db:"email" json:"email"`
	Role  string    `db:"role" json:"role"`
}

// invitationsRevoked is the invitation.revoked event of one change that
// ended the organization's invitations (in id order); nil for none.
func invitationsRevoked(orgID uuid.UUID, invs []revokedInvitation, reason string, now time.Time) *domain.OutboundEvent {
	if len(invs) == 0 {
		return nil
	}
	sort.Slice(invs, func(i, j int) bool { return invs[i].ID.String() < invs[j].ID.String() })
	return &domain.OutboundEvent{Type: domain.OutInvitationRevoked, OrgID: idPtr(orgID), CreatedAt: now,
		Data: map[string]any{"org_id": orgID, "invitations": invs, "reason": reason}}
}

// CreateInvitation stores the invitation and queues its mail (when m is
// not nil) in one transaction, with its invitation.created event.
func (s *Store) CreateInvitation(ctx context.Context, inv *domain.Invitation, m *domain.OutboxMessage) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO org_invitations (`+invitationCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			inv.ID, inv.OrgID, inv.Email, string(inv.Role), inv.Hash, nullUUID(inv.InvitedBy), ts(inv.CreatedAt), ts(inv.ExpiresAt)); err != nil {
			return err
		}
		if m != nil {
			if err := s.insertOutbox(ctx, tx, m); err != nil {
				return err
			}
		}
		data := map[string]any{"invitation_id": inv.ID, "org_id": inv.OrgID, "email": inv.Email, "role": string(inv.Role),
			"expires_at": inv.ExpiresAt.UTC()}
		putOpt(data, "invited_by", inv.InvitedBy)
		return s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutInvitationCreated, OrgID: idPtr(inv.OrgID), UserID: inv.InvitedBy,
			Data: data, CreatedAt: inv.CreatedAt})
	})
}

// ListInvitations returns up to limit invitations of the organization
// pending at now after the cursor, newest first.
func (s *Store) ListInvitations(ctx context.Context, orgID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Invitation, error) {
	pc, pargs := pageCond(after, true)
	var rows []invitationRow
	if err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+invitationCols+` FROM org_invitations
		WHERE org_id = ? AND `+pendingInvitation+pc+` ORDER BY created_at DESC, id DESC LIMIT ?`),
		append(append([]any{orgID, ts(now)}, pargs...), limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Invitation, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// RevokeInvitation revokes a pending invitation of the organization, with
// its invitation.revoked event (reason revoked), in one transaction.
// Returns CodeNotFound if there is no such pending invitation.
func (s *Store) RevokeInvitation(ctx context.Context, orgID, id uuid.UUID, now time.Time) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var r revokedInvitation
		err := tx.GetContext(ctx, &r, s.q(`UPDATE org_invitations SET revoked_at = ? WHERE id = ? AND org_id = ? AND `+pendingInvitation+`
			RETURNING id, email, role`), ts(now), id, orgID, ts(now))
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.CodeNotFound, "invitation not found")
		}
		if err != nil {
			return err
		}
		return s.emit(ctx, tx, invitationsRevoked(orgID, []revokedInvitation{r}, "revoked", now))
	})
}

// InvitationByHash returns the invitation with the token hash if it is
// pending at now. Returns CodeNotFound otherwise.
func (s *Store) InvitationByHash(ctx context.Context, hash []byte, now time.Time) (*domain.Invitation, error) {
	var r invitationRow
	if err := s.get(ctx, &r, `SELECT `+invitationCols+` FROM org_invitations WHERE token_hash = ? AND `+pendingInvitation, hash, ts(now)); err != nil {
		return nil, translate(err)
	}
	inv := r.domain()
	return &inv, nil
}

// AcceptInvitation spends the pending invitation with the hash for the
// user and adds the membership, in one transaction whose conditional update
// has exactly one winner and that serialises with the organization's
// membership changes (the organization is locked before the invitation, in
// the order UpdateMember and RemoveMember take them). Returns
// CodeInvalidToken when the invitation is no longer pending or its sender
// is no longer a member whose role grants its role (nothing changes then),
// and CodeConflict when the user is already a member (the invitation then
// stays pending). The new member's organization.member.added event names
// the invitation.
func (s *Store) AcceptInvitation(ctx context.Context, hash []byte, userID uuid.UUID, now time.Time) (*domain.Member, error) {
	var m *domain.Member
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		invalid := domain.Errorf(domain.CodeInvalidToken, "the invitation is invalid, expired, revoked or already used")
		// An invitation's organization never changes: read it to lock the
		// organization first.
		var orgID uuid.UUID
		if err := tx.GetContext(ctx, &orgID, s.q(`SELECT org_id FROM org_invitations WHERE token_hash = ? AND `+pendingInvitation), hash, ts(now)); err != nil {
			if domain.IsCode(translate(err), domain.CodeNotFound) {
				return invalid
			}
			return err
		}
		if err := s.lockOrg(ctx, tx, orgID); err != nil {
			return err
		}
		var r invitationRow
		if err := tx.GetContext(ctx, &r, s.q(`UPDATE org_invitations SET accepted_at = ?, accepted_by = ?
			WHERE token_hash = ? AND `+pendingInvitation+` RETURNING `+invitationCols), ts(now), userID, hash, ts(now)); err != nil {
			if domain.IsCode(translate(err), domain.CodeNotFound) {
				return invalid
			}
			return err
		}
		// The sender's authority is judged now, not when it sent the
		// invitation.
		if !r.InvitedBy.Valid {
			return invalid
		}
		inviter, err := s.member(ctx, tx, r.OrgID, r.InvitedBy.UUID)
		if domain.IsCode(err, domain.CodeNotFound) || err == nil && !inviter.Role.Grants(domain.Role(r.Role)) {
			return domain.Errorf(domain.CodeInvalidToken, "the invitation is no longer valid: its sender can no longer grant its role")
		}
		if err != nil {
			return err
		}
		m = &domain.Member{OrgID: r.OrgID, UserID: userID, Role: domain.Role(r.Role), CreatedAt: now}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
			m.OrgID, m.UserID, string(m.Role), ts(m.CreatedAt))
		if domain.IsCode(translate(err), domain.CodeConflict) {
			return domain.Errorf(domain.CodeConflict, "you are already a member of this organization")
		}
		if err != nil {
			return err
		}
		return s.emit(ctx, tx, memberAdded(m, &r.ID))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// CountSeats returns the organization's members plus its invitations
// pending at now.
func (s *Store) CountSeats(ctx context.Context, orgID uuid.UUID, now time.Time) (int, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT (SELECT COUNT(*) FROM org_members WHERE org_id = ?)
		+ (SELECT COUNT(*) FROM org_invitations WHERE org_id = ? AND `+pendingInvitation+`)`, orgID, orgID, ts(now)); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// CountOwnedOrganizations returns how many organizations the user owns.
func (s *Store) CountOwnedOrganizations(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM org_members WHERE user_id = ? AND role = 'owner'`, userID); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// CountExternalUsers returns how many delegated identities the
// organization has.
func (s *Store) CountExternalUsers(ctx context.Context, orgID uuid.UUID) (int, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM users WHERE org_id = ?`, orgID); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// ExternalUserExists reports whether the organization has an identity for
// the external id.
func (s *Store) ExternalUserExists(ctx context.Context, orgID uuid.UUID, externalID string) (bool, error) {
	var n int
	if err := s.get(ctx, &n, `SELECT COUNT(*) FROM users WHERE org_id = ? AND external_id = ?`, orgID, externalID); err != nil {
		return false, translate(err)
	}
	return n > 0, nil
}

// OrgAudiences returns the organization's registered audiences, sorted.
func (s *Store) OrgAudiences(ctx context.Context, orgID uuid.UUID) ([]string, error) {
	out := []string{}
	if err := s.db.SelectContext(ctx, &out, s.q(`SELECT audience FROM org_audiences WHERE org_id = ? ORDER BY audience`), orgID); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// SetOrgAudiences replaces the organization's registered audiences in one
// transaction.
func (s *Store) SetOrgAudiences(ctx context.Context, orgID uuid.UUID, audiences []string, now time.Time) error {
	auds := append([]string(nil), audiences...)
	sort.Strings(auds)
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM org_audiences WHERE org_id = ?`), orgID); err != nil {
			return err
		}
		for _, a := range auds {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO org_audiences (org_id, audience, created_at) VALUES (?, ?, ?)`), orgID, a, ts(now)); err != nil {
				return err
			}
		}
		return nil
	})
}
