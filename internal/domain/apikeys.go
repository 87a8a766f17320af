package domain

import (
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// APIKey is a personal or organization API key. Only the SHA-256 of the key
// is stored, with a short display prefix; the key itself is never kept.
type APIKey struct {
	ID uuid.UUID
	// UserID is the owner of a personal key; nil for an organization key.
	UserID *uuid.UUID
	// OrgID is the owner of an organization key; nil for a personal key.
	OrgID *uuid.UUID
	// CreatedBy is the user who created (or rolled) the key; nil when an
	// organization key did.
	CreatedBy *uuid.UUID
	Label     string
	// Scopes are sorted and unique.
	Scopes     []string
	Prefix     string
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	// RolledTo is the key that replaced this one; a key is rolled once.
	RolledTo *uuid.UUID
	// OwnerBannedUntil is when the ban of a personal key's owner ends (nil:
	// not banned); read by the lookups authentication uses (APIKeyByHash,
	// APIKeyByID) only.
	OwnerBannedUntil *time.Time
}

// Active reports whether the key can be used at now.
func (k *APIKey) Active(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// Owner returns the key's owner.
func (k *APIKey) Owner() KeyOwner {
	if k.OrgID != nil {
		return KeyOwner{OrgID: *k.OrgID}
	}
	if k.UserID != nil {
		return KeyOwner{UserID: *k.UserID}
	}
	return KeyOwner{}
}

// KeyOwner names the owner of API keys: a user (UserID) or an organization
// (OrgID). Exactly one of the two is set.
type KeyOwner struct {
	UserID uuid.UUID
	OrgID  uuid.UUID
}

// Role is a member's role in an organization.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Roles returns every role, from most to least powerful.
func Roles() []Role { return []Role{RoleOwner, RoleAdmin, RoleMember} }

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// Manages reports whether the role manages members and keys.
func (r Role) Manages() bool { return r == RoleOwner || r == RoleAdmin }

// Grants reports whether a member of role r may invite someone with the
// role invited: an owner any role, an admin an admin or a member, a member
// none. An invitation stays acceptable only while its sender's role grants
// its role.
func (r Role) Grants(invited Role) bool {
	switch r {
	case RoleOwner:
		return invited.Valid()
	case RoleAdmin:
		return invited == RoleAdmin || invited == RoleMember
	}
	return false
}

// Organization is a group of users that owns API keys and delegated
// identities.
type Organization struct {
	ID        uuid.UUID
	Name      string
	CreatedAt time.Time
	// Role is the asking user's role, when the organization was read for a
	// member; "" otherwise.
	Role Role
	// RequireMFA is set when members need a verified second factor to
	// create keys or manage the organization.
	RequireMFA bool
}

// Invitation is an invitation to join an organization, sent by mail. Only
// the SHA-256 of its token is stored.
type Invitation struct {
	ID        uuid.UUID
	OrgID     uuid.UUID
	Email     string // normalised
	Role      Role
	Hash      []byte
	InvitedBy *uuid.UUID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Member is a user's membership of an organization.
type Member struct {
	OrgID     uuid.UUID
	UserID    uuid.UUID
	Email     string // the user's email, when read
	Role      Role
	CreatedAt time.Time
}

// scopePattern is the Scope schema's pattern in openapi.yaml.
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}:[a-z*][a-z0-9_.*:-]{0,63}$`)

// builtinNamespaces are the resources of the built-in scopes. Any other
// scope in these namespaces is refused, so that nobody mistakes, say,
// keys:* for a grant that Latch honours.
var builtinNamespaces = map[string]bool{"token": true, "tokens": true, "sessions": true, "keys": true, "users": true, "webhooks": true, "events": true, "sso": true, "admin": true}

// CheckScope checks that s is a built-in scope or an application scope of
// the form name:action outside Latch's namespaces. Returns
// CodeInvalidRequest otherwise.
func CheckScope(s string) error {
	if !scopePattern.MatchString(s) {
		return Errorf(CodeInvalidRequest, "scope %q is not of the form name:action", s)
	}
	ns, _, _ := strings.Cut(s, ":")
	if builtinNamespaces[ns] && !IsBuiltinScope(s) {
		return Errorf(CodeInvalidRequest, "scope %q is not a built-in scope; the built-in scopes are %s", s, strings.Join(BuiltinScopes(), ", "))
	}
	return nil
}
