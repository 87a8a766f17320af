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
func (o *Orgs) InviteMember(ctx context.Context, p *domain.Principal, orgID uuid.UUID, email string, role domain.Role, meta domain.RequestMeta) error {
	if !role.Valid() {
		return domain.Errorf(domain.CodeInvalidRequest, "role must be owner, admin or member")
	}
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return err
	}
	a, err := o.manager(ctx, p, orgID)
	if err != nil {
		return err
	}
	if !a.role.Grants(role) {
		return domain.Errorf(domain.CodeInsufficientPermissions, "only an owner can invite an owner")
	}
	if err := o.limits.allow(ctx, ruleInviteOrg, orgID.String(), meta, &p.UserID); err != nil {
		return err
	}
	if err := o.limits.allow(ctx, ruleInviteUser, p.UserID.String(), meta, &p.UserID); err != nil {
		return err
	}
	now := o.clock.Now()
	if max := o.quotas.Members; max > 0 {
		n, err := o.store.CountSeats(ctx, orgID, now)
		if err != nil {
			return err
		}
		if n >= max {
			return domain.Errorf(domain.CodeQuotaExceeded, "members and pending invitations are limited to %d per organization", max)
		}
	}
	if wait, err := o.limits.mailQuota(ctx, email, &orgID, now); err != nil {
		return err
	} else if wait > 0 {
		return &domain.Error{Code: domain.CodeRateLimited, Message: "too many mails for this organization or to this address; try again later", RetryAfter: wait}
	}
	raw := make([]byte, recoveryTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	h := sha256.Sum256(raw)
	exp := now.Add(o.recovery.InviteTTL)
	inviter := p.UserID
	inv := &domain.Invitation{ID: uuid.New(), OrgID: orgID, Email: email, Role: role, Hash: h[:], InvitedBy: &inviter, CreatedAt: now, ExpiresAt: exp}
	var m *domain.OutboxMessage
	if o.recovery.Mail {
		if o.mail.outbox == nil {
			return errNotInit
		}
		data, err := json.Marshal(domain.MailData{Email: email, Link: BuildLink(o.recovery.InviteURL, base64.RawURLEncoding.EncodeToString(raw)),
			ExpiresAt: exp, TTL: o.recovery.InviteTTL, Organization: a.org.Name, Role: string(role)})
		if err != nil {
			return err
		}
		id := uuid.New()
		payload, err := o.mail.outbox.Seal(data, domain.OutboxPayloadLabel(id))
		if err != nil {
			return err
		}
		oid := orgID
		m = &domain.OutboxMessage{ID: id, Template: domain.MailInvitation, Recipient: email, Payload: payload, CreatedAt: now,
			NextAttemptAt: now, ExpiresAt: &exp, Priority: domain.MailPriorityNotification, OrgID: &oid}
	}
	if err := o.store.CreateInvitation(ctx, inv, m); err != nil {
		return err
	}
	if m != nil {
		o.mail.queued()
	}
	o.events.record(ctx, domain.EventMemberInvited, meta, &p.UserID, &p.SessionID, nil,
		map[string]any{"org_id": orgID.String(), "invitation_id": inv.ID.String(), "role": string(role)})
	return nil
}

// ListInvitations returns a page of the organization's pending
// invitations, newest first, to its owners and admins.
func (o *Orgs) ListInvitations(ctx context.Context, p *domain.Principal, orgID uuid.UUID, page PageRequest) ([]domain.Invitation, *domain.Cursor, error) {
	if _, err := o.manager(ctx, p, orgID); err != nil {
		return nil, nil, err
	}
	now := o.clock.Now()
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Invitation, error) {
		return o.store.ListInvitations(ctx, orgID, now, after, limit)
	}, func(i *domain.Invitation) domain.Cursor { return domain.Cursor{CreatedAt: i.CreatedAt, ID: i.ID} })
}

// RevokeInvitation revokes a pending invitation; its link stops working.
// Returns CodeNotFound for one that is not pending in the organization.
func (o *Orgs) RevokeInvitation(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID) error {
	if _, err := o.manager(ctx, p, orgID); err != nil {
		return err
	}
	return o.store.RevokeInvitation(ctx, orgID, id, o.clock.Now())
}

// AcceptInvitation makes the session's user a member of the organization
// an invitation token is for, and spends the token. The user's email must
// be the invited address, and verified. The invitation's sender must still
// be a member whose role grants the invited one (checked in the accepting
// transaction); removing or demoting a member revokes the invitations they
// can no longer grant. Returns CodeInvalidToken for an unknown, used,
// revoked or expired token and for one whose sender can no longer grant
// it, CodeInsufficientPermissions for another address or a principal that
// is not a user's own session, CodeEmailNotVerified for an unverified
// address, CodeConflict for a member already, CodeRateLimited.
func (o *Orgs) AcceptInvitation(ctx context.Context, p *domain.Principal, tok string, meta domain.RequestMeta) (*domain.Organization, error) {
	if p.Kind != domain.PrincipalSession || p.OrgID != nil {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "accepting an invitation needs a user's own session")
	}
	if err := o.limits.allowIP(ctx, ruleVerifyIP, meta, &p.UserID); err != nil {
		return nil, err
	}
	h, err := decodeRecoveryToken(tok)
	if err != nil {
		return nil, err
	}
	now := o.clock.Now()
	inv, err := o.store.InvitationByHash(ctx, h, now)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the invitation is invalid, expired, revoked or already used")
	}
	if err != nil {
		return nil, err
	}
	u, err := o.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(u.Email, inv.Email) {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "this invitation is for another address; sign in with the invited one")
	}
	// Whoever registered the address without proving it holds it does
	// not get the invitation meant for its owner.
	if !u.EmailVerified {
		return nil, domain.Errorf(domain.CodeEmailNotVerified, "verify your email address before accepting an invitation")
	}
	m, err := o.store.AcceptInvitation(ctx, h, p.UserID, now)
	if err != nil {
		return nil, err
	}
	org, err := o.store.OrganizationByID(ctx, m.OrgID)
	if err != nil {
		return nil, err
	}
	org.Role = m.Role
	o.events.record(ctx, domain.EventInvitationAccepted, meta, &p.UserID, &p.SessionID, nil,
		map[string]any{"org_id": m.OrgID.String(), "invitation_id": inv.ID.String(), "role": string(m.Role)})
	return org, nil
}

// maxAudiences bounds an organization's registered audiences.
const maxAudiences = 50

// Audiences returns the organization's registered audiences to any member
// (or its own keys).
func (o *Orgs) Audiences(ctx context.Context, p *domain.Principal, orgID uuid.UUID) ([]string, error) {
	if _, err := o.orgAccess(ctx, p, orgID); err != nil {
		return nil, err
	}
	return o.store.OrgAudiences(ctx, orgID)
}

// SetAudiences replaces the organization's registered audiences; only its
// owners (by their own session) manage them. Returns
// CodeInsufficientPermissions otherwise, CodeInvalidRequest for a bad list.
func (o *Orgs) SetAudiences(ctx context.Context, p *domain.Principal, orgID uuid.UUID, audiences []string) ([]string, error) {
	a, err := o.manager(ctx, p, orgID)
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
	if err := o.store.SetOrgAudiences(ctx, orgID, out, o.clock.Now()); err != nil {
		return nil, err
	}
	return out, nil
}
