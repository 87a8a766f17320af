package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// InviteMember invites the address to the organization with the role. Only
// owners and admins invite, and only owners invite owners. The outcome is
// the same whether or not the address has an account, so an invitation
// tells nobody who is registered: nothing about accounts is read here.
// The mail carries a single-use link whose token is stored only as its
// SHA-256; it is queued after account mail and counted against the
// organization's and the recipient's mail quotas (over them, the
// invitation is refused with CodeRateLimited). Returns CodeInvalidRequest
// for a bad email or role, CodeRateLimited (per organization and per
// inviter), CodeQuotaExceeded when members plus pending invitations reach
// Quotas.Members.
func (s *Service) InviteMember(ctx context.Context, p *domain.Principal, orgID uuid.UUID, email string, role domain.Role, meta domain.RequestMeta) error {
	if !role.Valid() {
		return domain.Errorf(domain.CodeInvalidRequest, "role must be owner, admin or member")
	}
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return err
	}
	a, err := s.manager(ctx, p, orgID)
	if err != nil {
		return err
	}
	if role == domain.RoleOwner && a.role != domain.RoleOwner {
		return domain.Errorf(domain.CodeInsufficientPermissions, "only an owner can invite an owner")
	}
	if err := s.allow(ctx, ruleInviteOrg, orgID.String(), meta, &p.UserID, false); err != nil {
		return err
	}
	if err := s.allow(ctx, ruleInviteUser, p.UserID.String(), meta, &p.UserID, false); err != nil {
		return err
	}
	now := s.clock.Now()
	if max := s.cfg.Quotas.Members; max > 0 {
		n, err := s.store.CountSeats(ctx, orgID, now)
		if err != nil {
			return err
		}
		if n >= max {
			return domain.Errorf(domain.CodeQuotaExceeded, "members and pending invitations are limited to %d per organization", max)
		}
	}
	if wait, err := s.mailQuota(ctx, email, &orgID, now); err != nil {
		return err
	} else if wait > 0 {
		return &domain.Error{Code: domain.CodeRateLimited, Message: "too many mails for this organization or to this address; try again later", RetryAfter: wait}
	}
	raw := make([]byte, recoveryTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	h := sha256.Sum256(raw)
	exp := now.Add(s.cfg.Recovery.InviteTTL)
	inviter := p.UserID
	inv := &domain.Invitation{ID: uuid.New(), OrgID: orgID, Email: email, Role: role, Hash: h[:], InvitedBy: &inviter, CreatedAt: now, ExpiresAt: exp}
	var m *domain.OutboxMessage
	if s.cfg.Recovery.Mail {
		if s.rec.outbox == nil {
			return errNotInit
		}
		data, err := json.Marshal(domain.MailData{Email: email, Link: BuildLink(s.cfg.Recovery.InviteURL, base64.RawURLEncoding.EncodeToString(raw)),
			ExpiresAt: exp, TTL: s.cfg.Recovery.InviteTTL, Organization: a.org.Name, Role: string(role)})
		if err != nil {
			return err
		}
		id := uuid.New()
		payload, err := s.rec.outbox.Seal(data, domain.OutboxPayloadLabel(id))
		if err != nil {
			return err
		}
		oid := orgID
		m = &domain.OutboxMessage{ID: id, Template: domain.MailInvitation, Recipient: email, Payload: payload, CreatedAt: now,
			NextAttemptAt: now, ExpiresAt: &exp, Priority: domain.MailPriorityNotification, OrgID: &oid}
	}
	if err := s.store.CreateInvitation(ctx, inv, m); err != nil {
		return err
	}
	if m != nil {
		s.rec.queued()
	}
	s.event(ctx, domain.EventMemberInvited, meta, &p.UserID, &p.SessionID, nil,
		map[string]any{"org_id": orgID.String(), "invitation_id": inv.ID.String(), "role": string(role)})
	return nil
}

// ListInvitations returns a page of the organization's pending
// invitations, newest first, to its owners and admins.
func (s *Service) ListInvitations(ctx context.Context, p *domain.Principal, orgID uuid.UUID, page PageRequest) ([]domain.Invitation, *domain.Cursor, error) {
	if _, err := s.manager(ctx, p, orgID); err != nil {
		return nil, nil, err
	}
	now := s.clock.Now()
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Invitation, error) {
		return s.store.ListInvitations(ctx, orgID, now, after, limit)
	}, func(i *domain.Invitation) domain.Cursor { return domain.Cursor{CreatedAt: i.CreatedAt, ID: i.ID} })
}

// RevokeInvitation revokes a pending invitation; its link stops working.
// Returns CodeNotFound for one that is not pending in the organization.
func (s *Service) RevokeInvitation(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID) error {
	if _, err := s.manager(ctx, p, orgID); err != nil {
		return err
	}
	return s.store.RevokeInvitation(ctx, orgID, id, s.clock.Now())
}

// AcceptInvitation makes the session's user a member of the organization
// an invitation token is for, and spends the token. The user's email must
// be the invited address. Returns CodeInvalidToken for an unknown, used,
// revoked or expired token, CodeInsufficientPermissions for another
// address or a principal that is not a user's own session, CodeConflict
// for a member already, CodeRateLimited.
func (s *Service) AcceptInvitation(ctx context.Context, p *domain.Principal, tok string, meta domain.RequestMeta) (*domain.Organization, error) {
	if p.Kind != domain.PrincipalSession || p.OrgID != nil {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "accepting an invitation needs a user's own session")
	}
	if err := s.allowIP(ctx, ruleVerifyIP, meta, &p.UserID); err != nil {
		return nil, err
	}
	h, err := decodeRecoveryToken(tok)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	inv, err := s.store.InvitationByHash(ctx, h, now)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the invitation is invalid, expired, revoked or already used")
	}
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(u.Email, inv.Email) {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "this invitation is for another address; sign in with the invited one")
	}
	m, err := s.store.AcceptInvitation(ctx, h, p.UserID, now)
	if err != nil {
		return nil, err
	}
	org, err := s.store.OrganizationByID(ctx, m.OrgID)
	if err != nil {
		return nil, err
	}
	org.Role = m.Role
	s.event(ctx, domain.EventInvitationAccepted, meta, &p.UserID, &p.SessionID, nil,
		map[string]any{"org_id": m.OrgID.String(), "invitation_id": inv.ID.String(), "role": string(m.Role)})
	return org, nil
}

// maxAudiences bounds an organization's registered audiences.
const maxAudiences = 50

// Audiences returns the organization's registered audiences to any member
// (or its own keys).
func (s *Service) Audiences(ctx context.Context, p *domain.Principal, orgID uuid.UUID) ([]string, error) {
	if _, err := s.orgAccess(ctx, p, orgID); err != nil {
		return nil, err
	}
	return s.store.OrgAudiences(ctx, orgID)
}

// SetAudiences replaces the organization's registered audiences; only its
// owners (by their own session) manage them. Returns
// CodeInsufficientPermissions otherwise, CodeInvalidRequest for a bad list.
func (s *Service) SetAudiences(ctx context.Context, p *domain.Principal, orgID uuid.UUID, audiences []string) ([]string, error) {
	a, err := s.manager(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	if a.role != domain.RoleOwner {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "only owners manage the organization's audiences")
	}
	if len(audiences) > maxAudiences {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "at most %d audiences", maxAudiences)
	}
	out := make([]string, 0, len(audiences))
	for _, aud := range audiences {
		if aud == "" || len(aud) > 255 || strings.ContainsAny(aud, " \t\r\n") {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "an audience is 1 to 255 bytes without spaces")
		}
		out = append(out, aud)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if err := s.store.SetOrgAudiences(ctx, orgID, out, s.clock.Now()); err != nil {
		return nil, err
	}
	return out, nil
}
