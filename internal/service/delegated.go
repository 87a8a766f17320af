package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// DelegatedRequest names an organization's own user.
type DelegatedRequest struct {
	ExternalID string
	// Email, when not "", sets the identity's email.
	Email string
	// Metadata, when not nil, replaces the identity's metadata.
	Metadata map[string]any
}

// CreateDelegatedSession opens a session for an organization's own user,
// authenticated by an organization key with sessions:write. The identity
// for (organization, external id) is created on first use, with no
// password; later calls update the email and metadata they set. The session
// then behaves like any other, and its access tokens carry org_id and ext.
// Returns CodeInsufficientPermissions for any other principal and
// CodeInvalidRequest for a bad external id or email.
func (o *Orgs) CreateDelegatedSession(ctx context.Context, p *domain.Principal, req DelegatedRequest, meta domain.RequestMeta) (*TokenSet, error) {
	if p.Kind != domain.PrincipalAPIKey || p.OrgID == nil {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "delegated sessions need an organization API key")
	}
	if !p.HasScope(domain.ScopeSessionsWrite) {
		return nil, missingScope(domain.ScopeSessionsWrite)
	}
	if req.ExternalID == "" || len(req.ExternalID) > 255 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "external_id must be 1 to 255 bytes")
	}
	if err := o.limits.allow(ctx, ruleDelegatedKey, p.KeyID.String(), meta, nil); err != nil {
		return nil, err
	}
	now := o.clock.Now()
	orgID := *p.OrgID
	u := &domain.User{ID: uuid.New(), OrgID: &orgID, ExternalID: req.ExternalID, CreatedAt: now, UpdatedAt: now}
	if req.Email != "" {
		e, err := domain.NormalizeEmail(req.Email)
		if err != nil {
			return nil, err
		}
		u.Email = e
	}
	if req.Metadata != nil {
		b, err := json.Marshal(req.Metadata)
		if err != nil {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "metadata is not valid JSON")
		}
		u.Metadata = b
	}
	if err := o.checkIdentityQuota(ctx, orgID, req.ExternalID); err != nil {
		return nil, err
	}
	stored, err := o.store.UpsertExternalUser(ctx, u)
	if err != nil {
		return nil, err
	}
	if req.Email != "" || req.Metadata != nil {
		o.sessions.userChanged(stored.ID)
	}
	return o.sessions.open(ctx, stored, &orgID, meta, domain.EventLoginSucceeded)
}

// checkIdentityQuota returns CodeQuotaExceeded when the organization has
// no identity for externalID yet and already has as many as the quota
// allows. An existing identity is looked up first (an indexed read), so
// only a new identity pays for the count.
func (o *Orgs) checkIdentityQuota(ctx context.Context, orgID uuid.UUID, externalID string) error {
	max := o.quotas.DelegatedIdentities
	if max <= 0 {
		return nil
	}
	exists, err := o.store.ExternalUserExists(ctx, orgID, externalID)
	if err != nil || exists {
		return err
	}
	n, err := o.store.CountExternalUsers(ctx, orgID)
	if err != nil {
		return err
	}
	if n >= max {
		return domain.Errorf(domain.CodeQuotaExceeded, "the organization has %d delegated identities, its quota", max)
	}
	return nil
}

// ListOrgSessions returns the organization's live delegated sessions, those
// of one external id when it is not "". Needs sessions:read in the
// organization (see orgAccess); returns CodeNotFound for an organization the
// principal cannot see.
func (o *Orgs) ListOrgSessions(ctx context.Context, p *domain.Principal, orgID uuid.UUID, externalID string, page PageRequest) ([]domain.Session, *domain.Cursor, error) {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, nil, err
	}
	if err := a.require(domain.ScopeSessionsRead); err != nil {
		return nil, nil, err
	}
	now := o.clock.Now()
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Session, error) {
		return o.store.ListOrgSessions(ctx, orgID, externalID, now, after, limit)
	}, sessionPos)
}

// RevokeOrgSession revokes a delegated session of the organization; its
// access tokens are refused at once here and within SessionCacheTTL
// elsewhere. Needs sessions:write in the organization. Returns CodeNotFound
// for a session of another organization or one no longer active.
func (o *Orgs) RevokeOrgSession(ctx context.Context, p *domain.Principal, orgID, sessionID uuid.UUID, meta domain.RequestMeta) error {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return err
	}
	if err := a.require(domain.ScopeSessionsWrite); err != nil {
		return err
	}
	if err := o.requireMemberMFA(ctx, a); err != nil {
		return err
	}
	var keyID *uuid.UUID
	if p.Kind == domain.PrincipalAPIKey {
		id := p.KeyID
		keyID = &id
	}
	return o.sessions.revoke(ctx, meta, keyID, map[string]any{"org_id": orgID.String()}, func(now time.Time) (uuid.UUID, []uuid.UUID, error) {
		userID, err := o.store.RevokeOrgSession(ctx, orgID, sessionID, now)
		return userID, []uuid.UUID{sessionID}, err
	})
}

// LookupUser returns the password account with the email. It is an
// operator's debugging aid: the principal must be a personal API key with
// users:read whose owner is listed in APIKeyConfig.OperatorEmails and has
// verified that email, so that no ordinary user can enumerate accounts.
// Returns CodeInsufficientPermissions otherwise, CodeNotFound for an
// unknown email.
func (o *Orgs) LookupUser(ctx context.Context, p *domain.Principal, email string) (*domain.User, error) {
	denied := domain.Errorf(domain.CodeInsufficientPermissions,
		"looking users up needs the scope %q on a personal API key of an operator", domain.ScopeUsersRead)
	if p.Kind != domain.PrincipalAPIKey || p.OrgID != nil || p.UserID == uuid.Nil || !p.HasScope(domain.ScopeUsersRead) {
		return nil, denied
	}
	ok, err := o.keys.isOperatorKey(ctx, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, denied
	}
	return o.existingUserByEmail(ctx, email)
}
