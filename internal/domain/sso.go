package domain

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// OrgDomain is an email domain an organization claims. It routes sign-ins
// to the organization's SSO connection only once verified, and at most one
// organization holds a domain verified.
type OrgDomain struct {
	ID    uuid.UUID
	OrgID uuid.UUID
	// Domain is lower-case ASCII (an internationalised name in its xn--
	// form).
	Domain string
	// Token is the value the TXT record must carry; not a secret (it is
	// published in DNS).
	Token      string
	VerifiedAt *time.Time
	CreatedAt  time.Time
}

// DomainVerificationPrefix names the TXT record that verifies a domain:
// _latch-verification.<domain>.
const DomainVerificationPrefix = "_latch-verification."

// DomainVerificationValue is the prefix of the TXT record's value; the
// domain's Token follows it.
const DomainVerificationValue = "latch-domain-verification="

// RecordName is the name of the TXT record that verifies d.
func (d *OrgDomain) RecordName() string { return DomainVerificationPrefix + d.Domain }

// RecordValue is the value the TXT record must carry.
func (d *OrgDomain) RecordValue() string { return DomainVerificationValue + d.Token }

// SSOConnection is an organization's own OpenID Connect provider: an
// upstream whose provider id is SSOProviderID(OrgID).
type SSOConnection struct {
	OrgID    uuid.UUID
	Issuer   string
	ClientID string
	// ClientSecret is sealed with the master key (label SSOSecretLabel).
	ClientSecret []byte
	Scopes       []string
	// DefaultRole is what a first sign-in makes the user: member or admin.
	DefaultRole Role
	// RequireSSO refuses every other way to sign in for addresses of the
	// organization's verified domains.
	RequireSSO bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SSOProviderPrefix starts the provider id of an organization's
// connection: org-<org uuid>.
const SSOProviderPrefix = "org-"

// SSOProviderID is the provider id of the organization's connection.
func SSOProviderID(orgID uuid.UUID) string { return SSOProviderPrefix + orgID.String() }

// SSOSecretLabel binds a sealed client secret to its organization.
func SSOSecretLabel(orgID uuid.UUID) string { return "sso-client-secret:" + orgID.String() }

// TXTResolver looks up DNS TXT records (net.Resolver is one). A missing
// name or record is a *net.DNSError whose IsNotFound is true; any other
// error means the resolver did not answer.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}
