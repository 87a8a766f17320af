package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// OrgStore is the storage that organizations, their members, invitations
// and delegated identities and sessions need; the SQL store implements it.
// Methods return the codes documented and anything else only for a storage
// failure.
type OrgStore interface {
	// CreateOrganization stores the organization and its first member (its
	// owner) in one transaction.
	CreateOrganization(ctx context.Context, o *domain.Organization, owner *domain.Member) error
	// OrganizationByID returns the organization (Role empty). Returns
	// CodeNotFound if there is none.
	OrganizationByID(ctx context.Context, id uuid.UUID) (*domain.Organization, error)
	// UpdateOrganization sets the name and require_mfa where not nil and
	// returns the organization (Role empty). Returns CodeNotFound if there
	// is none.
	UpdateOrganization(ctx context.Context, id uuid.UUID, name *string, requireMFA *bool) (*domain.Organization, error)
	// HasVerifiedFactor reports whether the user has a verified second
	// factor (an organization may require one).
	HasVerifiedFactor(ctx context.Context, userID uuid.UUID) (bool, error)
	// ListOrganizations returns up to limit organizations the user belongs
	// to after the cursor, with the user's role in each, oldest first.
	ListOrganizations(ctx context.Context, userID uuid.UUID, after *domain.Cursor, limit int) ([]domain.Organization, error)
	// CountOwnedOrganizations returns how many organizations the user owns.
	CountOwnedOrganizations(ctx context.Context, userID uuid.UUID) (int, error)
	// Member returns the user's membership of the organization. Returns
	// CodeNotFound if the user is not a member.
	Member(ctx context.Context, orgID, userID uuid.UUID) (*domain.Member, error)
	// ListMembers returns up to limit members of the organization after the
	// cursor (ordered by joining time and user id), oldest first.
	ListMembers(ctx context.Context, orgID uuid.UUID, after *domain.Cursor, limit int) ([]domain.Member, error)
	// CountSeats returns the organization's members plus its invitations
	// pending at now.
	CountSeats(ctx context.Context, orgID uuid.UUID, now time.Time) (int, error)
	// CreateInvitation stores the invitation and queues its mail (when m is
	// not nil) in one transaction.
	CreateInvitation(ctx context.Context, inv *domain.Invitation, m *domain.OutboxMessage) error
	// ListInvitations returns up to limit invitations of the organization
	// pending at now after the cursor, newest first.
	ListInvitations(ctx context.Context, orgID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Invitation, error)
	// RevokeInvitation revokes a pending invitation of the organization.
	// Returns CodeNotFound if there is no such pending invitation.
	RevokeInvitation(ctx context.Context, orgID, id uuid.UUID, now time.Time) error
	// InvitationByHash returns the invitation with the token hash if it is
	// pending at now. Returns CodeNotFound otherwise.
	InvitationByHash(ctx context.Context, hash []byte, now time.Time) (*domain.Invitation, error)
	// AcceptInvitation spends the pending invitation with the hash for the
	// user and adds the membership, in one transaction whose conditional
	// update has exactly one winner and that serialises with every
	// membership change of the organization. Returns CodeInvalidToken when
	// it is no longer pending or when its sender is no longer a member whose
	// role grants its role (domain.Role.Grants; an invitation without a
	// sender counts as such), and CodeConflict when the user is already a
	// member.
	AcceptInvitation(ctx context.Context, hash []byte, userID uuid.UUID, now time.Time) (*domain.Member, error)
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
	// change of the organization; the same transaction revokes at now the
	// member's invitations pending at now whose role the new role does not
	// grant (domain.Role.Grants). Returns fn's error, CodeNotFound if the
	// user is not a member, and CodeLastOwner if the change would leave the
	// organization without an owner.
	UpdateMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *domain.Member) error, now time.Time) (*domain.Member, error)
	// RemoveMember reads the membership, lets fn veto the removal, and
	// deletes it, under the same rules as UpdateMember; the same transaction
	// revokes at now every invitation of the organization the member sent
	// that is pending at now and, with revokeKeys, every active key of the
	// organization the member created. Returns the revoked keys.
	RemoveMember(ctx context.Context, orgID, userID uuid.UUID, fn func(m *domain.Member) error, now time.Time, revokeKeys bool) ([]domain.APIKey, error)
	// UpsertExternalUser returns the organization's identity for
	// u.ExternalID, creating it from u on first use; on later calls it
	// updates the email and metadata that u sets (an empty one keeps its
	// value) and keeps the id and creation time. A changed email is
	// unverified.
	UpsertExternalUser(ctx context.Context, u *domain.User) (*domain.User, error)
	// ListOrgSessions returns the organization's delegated sessions active at
	// now (only those of externalID when it is not ""), newest first, with
	// ExternalID set.
	ListOrgSessions(ctx context.Context, orgID uuid.UUID, externalID string, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error)
	// RevokeOrgSession revokes a delegated session of the organization and
	// its refresh tokens, and returns its user. Returns CodeNotFound if it is
	// not an active session of that organization.
	RevokeOrgSession(ctx context.Context, orgID, sessionID uuid.UUID, now time.Time) (uuid.UUID, error)
	// UserByEmail returns the password account with the normalised email.
	// Returns CodeNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*domain.User, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// The organization's outbound events feed (filtered by org_id).
	outboundStore
}
