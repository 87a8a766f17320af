package service

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Orgs is organizations: their members and roles, invitations, registered
// audiences, and the delegated identities and sessions that organization
// keys open. It is made with the shared pieces it uses (sessions, API-key
// authentication, rate limits, events, mail). It is safe for concurrent use.
type Orgs struct {
	quotas   Quotas
	recovery RecoveryConfig
	store    OrgStore
	clock    domain.Clock
	events   *EventLog
	limits   *RateLimits
	sessions *Sessions
	keys     *KeyAuth
	mail     *Mail
}

// NewOrgs returns the organization service, made with the shared pieces.
func NewOrgs(sh Shared, store OrgStore) *Orgs {
	return &Orgs{quotas: sh.Config.Quotas, recovery: sh.Config.Recovery, store: store, clock: sh.Clock, events: sh.Events,
		limits: sh.Limits, sessions: sh.Sessions, keys: sh.Keys, mail: sh.Mail}
}

// roleAllows is the role cap: what a member of each role may do in the
// organization and may grant its keys.
//
//   - owner and admin: every built-in scope but users:read and the admin
//     scopes (which only mean something to an operator), and any application
//     scope. They differ in managing members (an admin cannot make, change
//     or remove an owner) and in SSO: only owners hold sso:write, since the
//     connection decides who signs in as the organization's users.
//   - member: sessions:read and keys:read, to see the organization's
//     delegated sessions and keys; a member creates no keys.
func roleAllows(role domain.Role, scope string) bool {
	switch role {
	case domain.RoleOwner:
		return scope != domain.ScopeUsersRead && !domain.IsAdminScope(scope)
	case domain.RoleAdmin:
		return scope != domain.ScopeUsersRead && !domain.IsAdminScope(scope) && scope != domain.ScopeSSOWrite
	case domain.RoleMember:
		return scope == domain.ScopeSessionsRead || scope == domain.ScopeKeysRead
	}
	return false
}

// orgAccess is what a principal may do in one organization:
//
//   - an organization key, in its own organization only: its scopes;
//   - a user session: what the user's role allows;
//   - a personal key: what both its scopes and its user's role allow.
//
// An organization the principal cannot see is CodeNotFound, never
// CodeInsufficientPermissions, so that nothing tells it exists.
type orgAccess struct {
	org  *domain.Organization
	role domain.Role // the acting user's role; "" for an organization key
	p    *domain.Principal
}

func errOrgNotFound() error { return domain.Errorf(domain.CodeNotFound, "organization not found") }

func (o *Orgs) orgAccess(ctx context.Context, p *domain.Principal, orgID uuid.UUID) (*orgAccess, error) {
	a := &orgAccess{p: p}
	switch {
	case p.Kind == domain.PrincipalAPIKey && p.OrgID != nil:
		if *p.OrgID != orgID {
			return nil, errOrgNotFound()
		}
	case p.Kind == domain.PrincipalSession && p.OrgID != nil:
		// A delegated identity belongs to an organization but is never a
		// member of one.
		return nil, errOrgNotFound()
	case p.UserID == uuid.Nil:
		return nil, errOrgNotFound()
	default:
		m, err := o.store.Member(ctx, orgID, p.UserID)
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, errOrgNotFound()
		}
		if err != nil {
			return nil, err
		}
		a.role = m.Role
	}
	org, err := o.store.OrganizationByID(ctx, orgID)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, errOrgNotFound()
	}
	if err != nil {
		return nil, err
	}
	org.Role = a.role
	a.org = org
	return a, nil
}

func (a *orgAccess) holds(scope string) bool {
	switch {
	case a.role == "":
		return a.p.HasScope(scope)
	case a.p.Kind == domain.PrincipalAPIKey:
		return a.p.HasScope(scope) && roleAllows(a.role, scope)
	default:
		return roleAllows(a.role, scope)
	}
}

// require returns CodeInsufficientPermissions, naming the scope, unless the
// principal holds it in the organization.
func (a *orgAccess) require(scope string) error {
	if a.holds(scope) {
		return nil
	}
	if a.role != "" && !roleAllows(a.role, scope) {
		return domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs the scope %q, which the role %q does not hold", scope, a.role)
	}
	return missingScope(scope)
}

// grant returns CodeInsufficientPermissions unless the principal may give
// an organization key the scope: it must hold it itself.
func (a *orgAccess) grant(scope string) error {
	if a.holds(scope) {
		return nil
	}
	if a.role != "" && !roleAllows(a.role, scope) {
		return domain.Errorf(domain.CodeInsufficientPermissions, "the role %q cannot grant the scope %q", a.role, scope)
	}
	return domain.Errorf(domain.CodeInsufficientPermissions, "this API key does not hold the scope %q, so it cannot grant it", scope)
}

// manager returns the acting user's membership when the principal is a
// user session with a managing role. Returns CodeNotFound for an
// organization it cannot see and CodeInsufficientPermissions otherwise.
func (o *Orgs) manager(ctx context.Context, p *domain.Principal, orgID uuid.UUID) (*orgAccess, error) {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	if p.Kind != domain.PrincipalSession || !a.role.Manages() {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "only owners and admins manage members")
	}
	if err := o.requireMemberMFA(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// requireMemberMFA applies an organization's require_mfa to a member
// acting in it (a session or a personal key): they need a verified second
// factor to manage the organization or write its keys and sessions.
// Returns CodeOrgMFARequired. An organization's own keys are not members
// and pass.
func (o *Orgs) requireMemberMFA(ctx context.Context, a *orgAccess) error {
	if !a.org.RequireMFA || a.role == "" {
		return nil
	}
	has, err := o.store.HasVerifiedFactor(ctx, a.p.UserID)
	if err != nil {
		return err
	}
	if !has {
		return domain.Errorf(domain.CodeOrgMFARequired, "this organization requires a second factor of its members: set one up (POST /auth/mfa/totp or /auth/mfa/webauthn/registration)")
	}
	return nil
}

// UpdateOrganization renames the organization and turns require_mfa on or
// off; only owners may (with aal2, as the spec declares), and an owner
// turning it on must have a verified factor. Returns CodeNotFound,
// CodeInsufficientPermissions, CodeOrgMFARequired, CodeInvalidRequest for a
// bad name.
func (o *Orgs) UpdateOrganization(ctx context.Context, p *domain.Principal, orgID uuid.UUID, name *string, requireMFA *bool) (*domain.Organization, error) {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	if p.Kind != domain.PrincipalSession || a.role != domain.RoleOwner {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "only owners change the organization")
	}
	if name != nil {
		n := strings.TrimSpace(*name)
		if n == "" || len(n) > 100 {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "name must be 1 to 100 bytes")
		}
		name = &n
	}
	if requireMFA != nil && *requireMFA {
		on := *a
		org := *a.org
		org.RequireMFA = true
		on.org = &org
		if err := o.requireMemberMFA(ctx, &on); err != nil {
			return nil, err
		}
	}
	org, err := o.store.UpdateOrganization(ctx, orgID, name, requireMFA)
	if err != nil {
		return nil, err
	}
	org.Role = a.role
	return org, nil
}

// CreateOrganization creates an organization whose owner is the session's
// user. Returns CodeInvalidRequest for a bad name and
// CodeInsufficientPermissions for a delegated session or an API key.
func (o *Orgs) CreateOrganization(ctx context.Context, p *domain.Principal, name string) (*domain.Organization, error) {
	if p.Kind != domain.PrincipalSession || p.OrgID != nil {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "only a user's own session can create an organization")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "name must be 1 to 100 bytes")
	}
	if max := o.quotas.Organizations; max > 0 {
		n, err := o.store.CountOwnedOrganizations(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		if n >= max {
			return nil, domain.Errorf(domain.CodeQuotaExceeded, "a user owns at most %d organizations", max)
		}
	}
	now := o.clock.Now()
	org := &domain.Organization{ID: uuid.New(), Name: name, CreatedAt: now, Role: domain.RoleOwner}
	if err := o.store.CreateOrganization(ctx, org, &domain.Member{OrgID: org.ID, UserID: p.UserID, Role: domain.RoleOwner, CreatedAt: now}); err != nil {
		return nil, err
	}
	return org, nil
}

// ListOrganizations returns a page of the organizations of the principal's
// user, oldest first.
func (o *Orgs) ListOrganizations(ctx context.Context, p *domain.Principal, page PageRequest) ([]domain.Organization, *domain.Cursor, error) {
	if p.UserID == uuid.Nil || p.OrgID != nil {
		return listPage(page, func(*domain.Cursor, int) ([]domain.Organization, error) { return nil, nil },
			func(*domain.Organization) domain.Cursor { return domain.Cursor{} })
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Organization, error) {
		return o.store.ListOrganizations(ctx, p.UserID, after, limit)
	}, func(x *domain.Organization) domain.Cursor { return domain.Cursor{CreatedAt: x.CreatedAt, ID: x.ID} })
}

// GetOrganization returns an organization of the principal, with its role.
// Returns CodeNotFound for any other.
func (o *Orgs) GetOrganization(ctx context.Context, p *domain.Principal, orgID uuid.UUID) (*domain.Organization, error) {
	a, err := o.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	return a.org, nil
}

// ListMembers returns a page of the organization's members, oldest first,
// to any member. Returns CodeNotFound for an organization the principal
// cannot see.
func (o *Orgs) ListMembers(ctx context.Context, p *domain.Principal, orgID uuid.UUID, page PageRequest) ([]domain.Member, *domain.Cursor, error) {
	if _, err := o.orgAccess(ctx, p, orgID); err != nil {
		return nil, nil, err
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Member, error) {
		return o.store.ListMembers(ctx, orgID, after, limit)
	}, func(m *domain.Member) domain.Cursor { return domain.Cursor{CreatedAt: m.CreatedAt, ID: m.UserID} })
}

// UpdateMember changes a member's role. Only owners and admins change
// roles, and only owners make, or change the role of, an owner. The same
// transaction revokes the member's pending invitations whose role the new
// role does not grant (domain.Role.Grants). Returns CodeNotFound for a user
// who is not a member and CodeLastOwner when the last owner would stop
// being one.
func (o *Orgs) UpdateMember(ctx context.Context, p *domain.Principal, orgID, userID uuid.UUID, role domain.Role) (*domain.Member, error) {
	if !role.Valid() {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "role must be owner, admin or member")
	}
	a, err := o.manager(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	return o.store.UpdateMember(ctx, orgID, userID, func(m *domain.Member) error {
		if (m.Role == domain.RoleOwner || role == domain.RoleOwner) && a.role != domain.RoleOwner && m.Role != role {
			return domain.Errorf(domain.CodeInsufficientPermissions, "only an owner can make or change an owner")
		}
		m.Role = role
		return nil
	}, o.clock.Now())
}

// RemoveMember removes a member. Any member may leave; otherwise only owners
// and admins remove members, and only owners remove owners. The same
// transaction revokes the member's pending invitations and, with
// revokeKeys, every active organization key the member created. Returns
// CodeNotFound for a user who is not a member and CodeLastOwner for the
// last owner.
func (o *Orgs) RemoveMember(ctx context.Context, p *domain.Principal, orgID, userID uuid.UUID, revokeKeys bool, meta domain.RequestMeta) error {
	var a *orgAccess
	var err error
	if p.Kind == domain.PrincipalSession && p.UserID == userID {
		a, err = o.orgAccess(ctx, p, orgID)
	} else {
		a, err = o.manager(ctx, p, orgID)
	}
	if err != nil {
		return err
	}
	keys, err := o.store.RemoveMember(ctx, orgID, userID, func(m *domain.Member) error {
		if m.UserID != p.UserID && m.Role == domain.RoleOwner && a.role != domain.RoleOwner {
			return domain.Errorf(domain.CodeInsufficientPermissions, "only an owner can remove an owner")
		}
		return nil
	}, o.clock.Now(), revokeKeys)
	if err != nil {
		return err
	}
	actor := p.UserID
	o.keys.revokedKeys(ctx, keys, &actor, meta, "member_removed")
	return nil
}

// existingUserByEmail returns the personal account with email (normalised
// first). Returns CodeInvalidRequest for a malformed email and CodeNotFound
// when no account has it.
func (o *Orgs) existingUserByEmail(ctx context.Context, email string) (*domain.User, error) {
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := o.store.UserByEmail(ctx, email)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, domain.Errorf(domain.CodeNotFound, "no account has this email")
	}
	return u, err
}
