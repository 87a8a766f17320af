package domain

import (
	"context"
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

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// Manages reports whether the role manages members and keys.
func (r Role) Manages() bool { return r == RoleOwner || r == RoleAdmin }

// Organization is a group of users that owns API keys and delegated
// identities.
type Organization struct {
	ID        uuid.UUID
	Name      string
	CreatedAt time.Time
	// Role is the asking user's role, when the organization was read for a
	// member; "" otherwise.
	Role Role
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

// APIKeyStore keeps API keys.
type APIKeyStore interface {
	// CreateAPIKey stores a new key.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with the SHA-256 hash, whatever its state.
	// Returns CodeNotFound if there is none.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeyByID returns the key, whatever its state. Returns CodeNotFound if
	// there is none.
	APIKeyByID(ctx context.Context, id uuid.UUID) (*APIKey, error)
	// ListAPIKeys returns up to limit keys of the owner (revoked and expired
	// ones too; only those created by createdBy when it is not nil) after
	// the cursor (nil: from the start), newest first.
	ListAPIKeys(ctx context.Context, owner KeyOwner, createdBy *uuid.UUID, after *Cursor, limit int) ([]APIKey, error)
	// CountActiveAPIKeys returns how many keys of the owner are neither
	// revoked nor expired at now.
	CountActiveAPIKeys(ctx context.Context, owner KeyOwner, now time.Time) (int, error)
	// RevokeUserAPIKeys revokes every active personal key of the user and
	// returns them.
	RevokeUserAPIKeys(ctx context.Context, userID uuid.UUID, now time.Time) ([]APIKey, error)
	// RevokeAPIKeysByCreator revokes every active key of the organization
	// that the user created and returns them.
	RevokeAPIKeysByCreator(ctx context.Context, orgID, creator uuid.UUID, now time.Time) ([]APIKey, error)
	// RevokeAPIKey revokes the owner's key (revoking twice is not an error)
	// and returns it. Returns CodeNotFound if the owner has no such key.
	RevokeAPIKey(ctx context.Context, owner KeyOwner, id uuid.UUID, now time.Time) (*APIKey, error)
	// RollAPIKey stores next as the successor of the owner's active key id in
	// one transaction whose conditional update has exactly one winner: the
	// old key is revoked at now when overlap is 0, and otherwise expires at
	// now+overlap (or earlier, if it already expired earlier). It returns the
	// old key as updated. Returns CodeNotFound if the owner has no such key
	// and CodeConflict if it is revoked, expired or already rolled.
	RollAPIKey(ctx context.Context, owner KeyOwner, id uuid.UUID, next *APIKey, now time.Time, overlap time.Duration) (*APIKey, error)
	// TouchAPIKey sets the key's last_used_at to now unless it was set less
	// than every ago, and reports whether it wrote.
	TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, every time.Duration) (bool, error)
}

// OrgStore keeps organizations, their members and their delegated
// identities and sessions.
type OrgStore interface {
	// CreateOrganization stores the organization and its first member (its
	// owner) in one transaction.
	CreateOrganization(ctx context.Context, o *Organization, owner *Member) error
	// OrganizationByID returns the organization (Role empty). Returns
	// CodeNotFound if there is none.
	OrganizationByID(ctx context.Context, id uuid.UUID) (*Organization, error)
	// ListOrganizations returns up to limit organizations the user belongs
	// to after the cursor, with the user's role in each, oldest first.
	ListOrganizations(ctx context.Context, userID uuid.UUID, after *Cursor, limit int) ([]Organization, error)
	// CountOwnedOrganizations returns how many organizations the user owns.
	CountOwnedOrganizations(ctx context.Context, userID uuid.UUID) (int, error)
	// Member returns the user's membership of the organization. Returns
	// CodeNotFound if the user is not a member.
	Member(ctx context.Context, orgID, userID uuid.UUID) (*Member, error)
	// ListMembers returns up to limit members of the organization after the
	// cursor (ordered by joining time and user id), oldest first.
	ListMembers(ctx context.Context, orgID uuid.UUID, after *Cursor, limit int) ([]Member, error)
	// CountSeats returns the organization's members plus its invitations
	// pending at now.
	CountSeats(ctx context.Context, orgID uuid.UUID, now time.Time) (int, error)
	// CreateInvitation stores the invitation and queues its mail (when m is
	// not nil) in one transaction.
	CreateInvitation(ctx context.Context, inv *Invitation, m *OutboxMessage) error
	// ListInvitations returns up to limit invitations of the organization
	// pending at now after the cursor, newest first.
	ListInvitations(ctx context.Context, orgID uuid.UUID, now time.Time, after *Cursor, limit int) ([]Invitation, error)
	// RevokeInvitation revokes a pending invitation of the organization.
	// Returns CodeNotFound if there is no such pending invitation.
	RevokeInvitation(ctx context.Context, orgID, id uuid.UUID, now time.Time) error
	// InvitationByHash returns the invitation with the token hash if it is
	// pending at now. Returns CodeNotFound otherwise.
	InvitationByHash(ctx context.Context, hash []byte, now time.Time) (*Invitation, error)
	// AcceptInvitation spends the pending invitation with the hash for the
	// user and adds the membership, in one transaction whose conditional
	// update has exactly one winner. Returns CodeInvalidToken when it is no
	// longer pending and CodeConflict when the user is already a member.
	AcceptInvitation(ctx context.Context, hash []byte, userID uuid.UUID, now time.Time) (*Member, error)
	// OrgAudiences returns the organization's registered audiences, sorted.
	OrgAudiences(ctx context.Context, orgID uuid.UUID) ([]string, error)
	// SetOrgAudiences replaces the organization's registered audiences.
	SetOrgAudiences(ctx context.Context, orgID uuid.UUID, audiences []string, now time.Time) error
	// CountExternalUsers returns how many delegated identities the
	// organization has; ExternalUserExists whether it has one for the
	// external id.
	CountExternalUsers(ctx context.Context, orgID uuid.UUID) (int, error)
	ExternalUserExists(ctx context.Context, orgID uuid.UUID, externalID string) (bool, error)
	// UpdateMember reads the membership, lets fn change its role, and stores
	// it, in one transaction that serialises with every other membership
	// change of the organization. Returns fn's error, CodeNotFound if the
	// user is not a member, and CodeLastOwner if the change would leave the
	// organization without an owner.
	UpdateMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *Member) error) (*Member, error)
	// RemoveMember reads the membership, lets fn veto the removal, and
	// deletes it, under the same rules as UpdateMember; when revokeKeysAt is
	// not nil, the same transaction revokes at that time every active key of
	// the organization the member created. Returns the revoked keys.
	RemoveMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *Member) error, revokeKeysAt *time.Time) ([]APIKey, error)
	// UpsertExternalUser returns the organization's identity for
	// u.ExternalID, creating it from u on first use; on later calls it
	// updates the email and metadata that u sets (an empty one keeps its
	// value) and keeps the id and creation time. A changed email is
	// unverified.
	UpsertExternalUser(ctx context.Context, u *User) (*User, error)
	// ListOrgSessions returns the organization's delegated sessions active at
	// now (only those of externalID when it is not ""), newest first, with
	// ExternalID set.
	ListOrgSessions(ctx context.Context, orgID uuid.UUID, externalID string, now time.Time, after *Cursor, limit int) ([]Session, error)
	// RevokeOrgSession revokes a delegated session of the organization and
	// its refresh tokens, and returns its user. Returns CodeNotFound if it is
	// not an active session of that organization.
	RevokeOrgSession(ctx context.Context, orgID, sessionID uuid.UUID, now time.Time) (uuid.UUID, error)
}

// scopePattern is the Scope schema's pattern in openapi.yaml.
var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}:[a-z*][a-z0-9_.*-]{0,63}$`)

// builtinNamespaces are the resources of the built-in scopes. Any other
// scope in these namespaces is refused, so that nobody mistakes, say,
// keys:* for a grant that Latch honours.
var builtinNamespaces = map[string]bool{"token": true, "tokens": true, "sessions": true, "keys": true, "users": true}

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
