package service

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// ssoStore is what the SSO feature needs of the store.
type ssoStore interface {
	// CreateOrgDomain stores a claimed domain. Returns CodeConflict when
	// the organization has it.
	CreateOrgDomain(ctx context.Context, d *domain.OrgDomain) error
	// ListOrgDomains returns the organization's domains, oldest first.
	ListOrgDomains(ctx context.Context, orgID uuid.UUID) ([]domain.OrgDomain, error)
	// OrgDomain returns one. Returns CodeNotFound.
	OrgDomain(ctx context.Context, orgID, id uuid.UUID) (*domain.OrgDomain, error)
	// VerifyOrgDomain marks it verified. Returns CodeNotFound, CodeConflict
	// when another organization verified the domain.
	VerifyOrgDomain(ctx context.Context, orgID, id uuid.UUID, now time.Time) (*domain.OrgDomain, error)
	// DeleteOrgDomain removes one. Returns CodeNotFound.
	DeleteOrgDomain(ctx context.Context, orgID, id uuid.UUID) error
	// PutSSOConnection creates or replaces the connection (a nil secret
	// keeps the stored one). Returns CodeInvalidRequest when there is none
	// to keep.
	PutSSOConnection(ctx context.Context, c *domain.SSOConnection) (*domain.SSOConnection, error)
	// SSOConnection returns it. Returns CodeNotFound.
	SSOConnection(ctx context.Context, orgID uuid.UUID) (*domain.SSOConnection, error)
	// DeleteSSOConnection removes it. Returns CodeNotFound.
	DeleteSSOConnection(ctx context.Context, orgID uuid.UUID) error
}

// SSO is enterprise SSO per organization: the email domains an
// organization verifies by a DNS TXT record, and its own OpenID Connect
// provider, whose sign-ins Federation runs (provider org-<org id>). Owners
// write (sso:write), owners and admins read (sso:read), as the
// organization's access rule says. It is safe for concurrent use.
type SSO struct {
	store    ssoStore
	orgs     *Orgs
	fed      *Federation
	resolver domain.TXTResolver
	sealer   *token.Sealer
	clock    domain.Clock
}

// NewSSO returns the feature. resolver looks up the TXT records that verify
// domains (nil: the system's resolver).
func NewSSO(sh Shared, st ssoStore, orgs *Orgs, fed *Federation, resolver domain.TXTResolver) *SSO {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	return &SSO{store: st, orgs: orgs, fed: fed, resolver: resolver, sealer: sh.Sealer, clock: sh.Clock}
}

// access checks that p holds sso:read (or sso:write) in the organization,
// and that a member writing meets its require_mfa. Returns CodeNotFound,
// CodeInsufficientPermissions, CodeOrgMFARequired.
func (s *SSO) access(ctx context.Context, p *domain.Principal, orgID uuid.UUID, write bool) error {
	a, err := s.orgs.orgAccess(ctx, p, orgID)
	if err != nil {
		return err
	}
	if !write {
		return a.require(domain.ScopeSSORead)
	}
	if err := a.require(domain.ScopeSSOWrite); err != nil {
		return err
	}
	return s.orgs.requireMemberMFA(ctx, a)
}

// domainProfile maps a domain as a lookup does and checks it as a host
// name: labels of letters, digits and hyphens, none empty, within DNS
// lengths.
var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true), idna.VerifyDNSLength(true),
	idna.StrictDomainName(true))

// NormalizeDomain returns the domain in lower-case ASCII (an
// internationalised name as its xn-- form). Returns CodeInvalidRequest for
// what is not a host name, a one-label name or a public suffix (com,
// co.uk, github.io).
func NormalizeDomain(raw string) (string, error) {
	d, err := domainProfile.ToASCII(strings.TrimSuffix(strings.TrimSpace(raw), "."))
	if err != nil || d == "" || len(d) > 253 {
		return "", domain.Errorf(domain.CodeInvalidRequest, "domain must be a host name, such as acme.example")
	}
	d = strings.ToLower(d)
	if !strings.Contains(d, ".") {
		return "", domain.Errorf(domain.CodeInvalidRequest, "domain must have at least two labels, such as acme.example")
	}
	if suffix, _ := publicsuffix.PublicSuffix(d); suffix == d {
		return "", domain.Errorf(domain.CodeInvalidRequest, "%s is a public suffix, which no organization owns; add your own domain under it", d)
	}
	return d, nil
}

// CreateDomain adds a domain to the organization, not verified, with a new
// verification token. Returns CodeInvalidRequest for a bad domain,
// CodeConflict when the organization has it, and access's errors.
func (s *SSO) CreateDomain(ctx context.Context, p *domain.Principal, orgID uuid.UUID, raw string) (*domain.OrgDomain, error) {
	if err := s.access(ctx, p, orgID, true); err != nil {
		return nil, err
	}
	name, err := NormalizeDomain(raw)
	if err != nil {
		return nil, err
	}
	tok, err := randomSecret()
	if err != nil {
		return nil, err
	}
	d := &domain.OrgDomain{ID: uuid.New(), OrgID: orgID, Domain: name, Token: tok, CreatedAt: s.clock.Now()}
	if err := s.store.CreateOrgDomain(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// ListDomains returns the organization's domains, oldest first.
func (s *SSO) ListDomains(ctx context.Context, p *domain.Principal, orgID uuid.UUID) ([]domain.OrgDomain, error) {
	if err := s.access(ctx, p, orgID, false); err != nil {
		return nil, err
	}
	return s.store.ListOrgDomains(ctx, orgID)
}

// DeleteDomain removes one of the organization's domains. Returns
// CodeNotFound and access's errors.
func (s *SSO) DeleteDomain(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID) error {
	if err := s.access(ctx, p, orgID, true); err != nil {
		return err
	}
	return s.store.DeleteOrgDomain(ctx, orgID, id)
}

// dnsRetryAfter is how long a caller waits after the resolver failed.
const dnsRetryAfter = 30 * time.Second

// VerifyDomain looks up the domain's TXT record and marks the domain
// verified when one of the records is its value. The check is made once: a
// record removed later does not un-verify the domain. A verified domain is
// returned as it is. Returns CodeDomainNotVerified when the record is
// missing or wrong, CodeConflict when another organization verified the
// domain, CodeUnavailable (with a Retry-After) when the resolver does not
// answer, CodeNotFound and access's errors.
func (s *SSO) VerifyDomain(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID) (*domain.OrgDomain, error) {
	if err := s.access(ctx, p, orgID, true); err != nil {
		return nil, err
	}
	d, err := s.store.OrgDomain(ctx, orgID, id)
	if err != nil || d.VerifiedAt != nil {
		return d, err
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	records, err := s.resolver.LookupTXT(lctx, d.RecordName())
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return nil, domain.Errorf(domain.CodeDomainNotVerified, "no TXT record at %s yet (DNS changes can take a while to show): publish %q there", d.RecordName(), d.RecordValue())
	case err != nil:
		return nil, &domain.Error{Code: domain.CodeUnavailable, Message: "the DNS resolver did not answer; try again", RetryAfter: dnsRetryAfter, Err: err}
	}
	found := false
	for _, r := range records {
		if strings.TrimSpace(r) == d.RecordValue() {
			found = true
		}
	}
	if !found {
		return nil, domain.Errorf(domain.CodeDomainNotVerified, "the TXT records at %s do not hold %q", d.RecordName(), d.RecordValue())
	}
	return s.store.VerifyOrgDomain(ctx, orgID, id, s.clock.Now())
}

// ConnectionInput is what PutConnection sets.
type ConnectionInput struct {
	Issuer, ClientID string
	// ClientSecret nil keeps the stored secret.
	ClientSecret *string
	Scopes       []string
	// DefaultRole is member or admin ("" is member).
	DefaultRole domain.Role
	RequireSSO  bool
}

// Connection is an organization's SSO connection as the API shows it:
// never its secret.
type Connection struct {
	*domain.SSOConnection
	ProviderID  string
	CallbackURL string
}

func (s *SSO) view(c *domain.SSOConnection) *Connection {
	id := domain.SSOProviderID(c.OrgID)
	return &Connection{SSOConnection: c, ProviderID: id, CallbackURL: s.fed.CallbackURL(id)}
}

// PutConnection registers or replaces the organization's OpenID Connect
// provider, after its discovery answers; the client secret is sealed.
// Returns CodeInvalidRequest for a bad issuer, role or scope or a missing
// first secret, CodeInvalidProvider when discovery fails, and access's
// errors.
func (s *SSO) PutConnection(ctx context.Context, p *domain.Principal, orgID uuid.UUID, in ConnectionInput) (*Connection, error) {
	if err := s.access(ctx, p, orgID, true); err != nil {
		return nil, err
	}
	role := in.DefaultRole
	if role == "" {
		role = domain.RoleMember
	}
	if role != domain.RoleMember && role != domain.RoleAdmin {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "default_role must be member or admin")
	}
	if strings.TrimSpace(in.ClientID) == "" {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "client_id is required")
	}
	for _, sc := range in.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "a scope is one word without spaces")
		}
	}
	if err := s.fed.checkIssuer(ctx, in.Issuer); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	c := &domain.SSOConnection{OrgID: orgID, Issuer: in.Issuer, ClientID: in.ClientID, Scopes: in.Scopes, DefaultRole: role,
		RequireSSO: in.RequireSSO, CreatedAt: now, UpdatedAt: now}
	if in.ClientSecret != nil {
		if *in.ClientSecret == "" {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "client_secret must not be empty (leave it out to keep the stored one)")
		}
		sealed, err := s.sealer.Seal([]byte(*in.ClientSecret), domain.SSOSecretLabel(orgID))
		if err != nil {
			return nil, err
		}
		c.ClientSecret = sealed
	}
	stored, err := s.store.PutSSOConnection(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.view(stored), nil
}

// GetConnection returns the organization's connection. Returns
// CodeNotFound and access's errors.
func (s *SSO) GetConnection(ctx context.Context, p *domain.Principal, orgID uuid.UUID) (*Connection, error) {
	if err := s.access(ctx, p, orgID, false); err != nil {
		return nil, err
	}
	c, err := s.store.SSOConnection(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return s.view(c), nil
}

// DeleteConnection removes the organization's connection. Returns
// CodeNotFound and access's errors.
func (s *SSO) DeleteConnection(ctx context.Context, p *domain.Principal, orgID uuid.UUID) error {
	if err := s.access(ctx, p, orgID, true); err != nil {
		return err
	}
	return s.store.DeleteSSOConnection(ctx, orgID)
}
