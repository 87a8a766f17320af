package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// UsersStore is what Users needs of the store. Methods return the codes
// documented and anything else only for a storage failure.
type UsersStore interface {
	// ListUsers returns up to limit users that match the filter after the
	// cursor, newest first.
	ListUsers(ctx context.Context, f domain.UserFilter, after *domain.Cursor, limit int) ([]domain.UserSummary, error)
	// UserSummary returns the user with their verified factor count.
	// Returns CodeNotFound if there is none.
	UserSummary(ctx context.Context, id uuid.UUID) (*domain.UserSummary, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// UpdateUser changes the user in one transaction through fn, and
	// writes the outbound events fn returns in it. Returns CodeNotFound,
	// CodeEmailTaken, or fn's error.
	UpdateUser(ctx context.Context, id uuid.UUID, now time.Time, fn func(u *domain.User) ([]domain.OutboundEvent, error)) (*domain.User, error)
	// EndUserSessions revokes every active session of the user and emits
	// one session.revoked event with their count. Returns CodeNotFound for
	// an unknown user.
	EndUserSessions(ctx context.Context, userID uuid.UUID, reason string, now time.Time) ([]uuid.UUID, error)
	// RemoveFactors deletes the user's factor id (nil: all), queues m and
	// emits mfa.factor.removed per factor in one transaction. Returns
	// CodeNotFound for an unknown user or factor.
	RemoveFactors(ctx context.Context, userID uuid.UUID, id *uuid.UUID, m *domain.OutboxMessage, now time.Time) ([]domain.Factor, error)
	// DeleteUser deletes the user and all they hold in one transaction
	// and emits user.deleted. Returns CodeNotFound, or CodeConflict when
	// they alone own an organization and deleteSoleOwnedOrgs is false.
	DeleteUser(ctx context.Context, id uuid.UUID, deleteSoleOwnedOrgs bool, now time.Time) (*domain.DeletedUser, error)

	// The reads of a user's details and export.
	ListSessions(ctx context.Context, userID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error)
	ListAPIKeys(ctx context.Context, owner domain.KeyOwner, createdBy *uuid.UUID, after *domain.Cursor, limit int) ([]domain.APIKey, error)
	ListFactors(ctx context.Context, userID uuid.UUID) ([]domain.Factor, error)
	ListOrganizations(ctx context.Context, userID uuid.UUID, after *domain.Cursor, limit int) ([]domain.Organization, error)
	ListEvents(ctx context.Context, userID uuid.UUID, before domain.EventCursor, limit int) ([]domain.Event, error)
}
