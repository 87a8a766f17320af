package domain

import (
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
)

// PrincipalKind says what authenticated a request.
type PrincipalKind int

const (
	// PrincipalSession is a user's session access token.
	PrincipalSession PrincipalKind = iota + 1
	// PrincipalAPIKey is an API key, or an access token exchanged from one.
	PrincipalAPIKey
)

// The built-in scopes.
const (
	ScopeTokenExchange = "token:exchange"
	ScopeSessionsWrite = "sessions:write"
	ScopeSessionsRead  = "sessions:read"
	ScopeKeysRead      = "keys:read"
	ScopeKeysWrite     = "keys:write"
	ScopeUsersRead     = "users:read"
	// ScopeTokensIntrospect lets an API key call the RFC 7662
	// introspection endpoint.
	ScopeTokensIntrospect = "tokens:introspect"
	// ScopeEventsRead lets an organization's owners and admins (and keys
	// holding it) read the organization's outbound events feed.
	ScopeEventsRead = "events:read"
	// The operator scopes (the admin namespace): only an operator holds
	// them, whatever a key's scopes say (see IsAdminScope).
	ScopeAdminUsersRead  = "admin:users:read"
	ScopeAdminUsersWrite = "admin:users:write"
	// ScopeWebhooksRead and ScopeWebhooksWrite read and manage an
	// organization's webhook endpoints (owners and admins hold them).
	ScopeWebhooksRead  = "webhooks:read"
	ScopeWebhooksWrite = "webhooks:write"
	// ScopeAdminWebhooksRead and ScopeAdminWebhooksWrite read and manage the
	// operators' webhook endpoints, which receive every event.
	ScopeAdminWebhooksRead  = "admin:webhooks:read"
	ScopeAdminWebhooksWrite = "admin:webhooks:write"
	// ScopeAdminEventsRead reads the whole outbound events feed.
	ScopeAdminEventsRead = "admin:events:read"
	// ScopeSSORead reads an organization's email domains and SSO
	// connection (owners and admins hold it); ScopeSSOWrite manages them
	// (owners only).
	ScopeSSORead  = "sso:read"
	ScopeSSOWrite = "sso:write"
)

// IsAdminScope reports whether scope is in the operators' admin namespace.
// An operation that needs such a scope is refused to anyone but an
// operator; the HTTP layer enforces this for every operation at once.
func IsAdminScope(scope string) bool { return strings.HasPrefix(scope, "admin:") }

// BuiltinScopes returns the scopes that Latch itself interprets.
func BuiltinScopes() []string {
	return []string{ScopeTokenExchange, ScopeSessionsWrite, ScopeSessionsRead, ScopeKeysRead, ScopeKeysWrite, ScopeUsersRead, ScopeTokensIntrospect,
		ScopeWebhooksRead, ScopeWebhooksWrite, ScopeEventsRead, ScopeSSORead, ScopeSSOWrite,
		ScopeAdminUsersRead, ScopeAdminUsersWrite, ScopeAdminWebhooksRead, ScopeAdminWebhooksWrite, ScopeAdminEventsRead}
}

// IsBuiltinScope reports whether s is one of BuiltinScopes.
func IsBuiltinScope(s string) bool {
	for _, b := range BuiltinScopes() {
		if s == b {
			return true
		}
	}
	return false
}

// Principal is who a request acts as.
type Principal struct {
	Kind PrincipalKind
	// UserID is the session's user or the personal key's owner; uuid.Nil for
	// an organization key.
	UserID uuid.UUID
	// SessionID is set for PrincipalSession.
	SessionID uuid.UUID
	// OrgID is set for an organization key and for a delegated session.
	OrgID *uuid.UUID
	// KeyID is set for PrincipalAPIKey.
	KeyID uuid.UUID
	// Scopes are the key's (or exchanged token's) scopes. A session holds
	// every built-in scope and Scopes is nil.
	Scopes []string
	// Exchanged is true for an access token exchanged from an API key.
	Exchanged bool
	// ExpiresAt is when the credential itself stops working: the key's
	// expiry, or for an exchanged token the token's. Nil for a session and
	// for a key that never expires. A key that this principal creates never
	// outlives it.
	ExpiresAt *time.Time
	// AAL is a session token's assurance level (domain.AAL1 or AAL2) and
	// AMR its authentication methods (RFC 8176).
	AAL string
	AMR []string
	// AuthTime is a session token's auth_time: when its user last
	// authenticated (see Session.AuthTime).
	AuthTime time.Time
	// ActorID is the operator acting as the user on an impersonation token
	// (its act claim, matching its session); nil otherwise. Such a
	// principal is read-only: the HTTP layer refuses it every operation
	// that needs aal2 or writes (see Impersonated).
	ActorID *uuid.UUID
}

// Impersonated reports whether an operator acts as the user through an
// impersonation token.
func (p *Principal) Impersonated() bool { return p.ActorID != nil }

// HasScope reports whether the principal holds scope.
func (p *Principal) HasScope(scope string) bool {
	if p.Kind == PrincipalSession {
		return IsBuiltinScope(scope)
	}
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// RequestMeta describes the client of a request, for sessions and events.
type RequestMeta struct {
	IP        string
	UserAgent string
}

// NormalizeEmail trims spaces and lower-cases an email address, and checks
// that it is a single bare address of at most 320 bytes. Returns
// CodeInvalidRequest otherwise.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if len(e) < 3 || len(e) > 320 {
		return "", Errorf(CodeInvalidRequest, "email must be 3 to 320 bytes")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e, "@") {
		return "", Errorf(CodeInvalidRequest, "email is not a valid address")
	}
	return e, nil
}
