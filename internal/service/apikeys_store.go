package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// APIKeyStore is the storage that managing API keys, exchanging them, and
// introspecting and revoking tokens need; the SQL store implements it.
// Methods return the codes documented and anything else only for a storage
// failure.
type APIKeyStore interface {
	// CreateAPIKey stores a new key.
	CreateAPIKey(ctx context.Context, k *domain.APIKey) error
	// APIKeyByID returns the key, whatever its state. Returns CodeNotFound if
	// there is none.
	APIKeyByID(ctx context.Context, id uuid.UUID) (*domain.APIKey, error)
	// ListAPIKeys returns up to limit keys of the owner (revoked and expired
	// ones too; only those created by createdBy when it is not nil) after
	// the cursor (nil: from the start), newest first.
	ListAPIKeys(ctx context.Context, owner domain.KeyOwner, createdBy *uuid.UUID, after *domain.Cursor, limit int) ([]domain.APIKey, error)
	// CountActiveAPIKeys returns how many keys of the owner are neither
	// revoked nor expired at now.
	CountActiveAPIKeys(ctx context.Context, owner domain.KeyOwner, now time.Time) (int, error)
	// RevokeAPIKeysByCreator revokes every active key of the organization
	// that the user created and returns them.
	RevokeAPIKeysByCreator(ctx context.Context, orgID, creator uuid.UUID, now time.Time) ([]domain.APIKey, error)
	// RevokeAPIKey revokes the owner's key (revoking twice is not an error)
	// and returns it. Returns CodeNotFound if the owner has no such key.
	RevokeAPIKey(ctx context.Context, owner domain.KeyOwner, id uuid.UUID, now time.Time) (*domain.APIKey, error)
	// RollAPIKey stores next as the successor of the owner's active key id in
	// one transaction whose conditional update has exactly one winner: the
	// old key is revoked at now when overlap is 0, and otherwise expires at
	// now+overlap (or earlier, if it already expired earlier). It returns the
	// old key as updated. Returns CodeNotFound if the owner has no such key
	// and CodeConflict if it is revoked, expired or already rolled.
	RollAPIKey(ctx context.Context, owner domain.KeyOwner, id uuid.UUID, next *domain.APIKey, now time.Time, overlap time.Duration) (*domain.APIKey, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
}

// OAuthStore is the storage that OAuth needs: the audiences an organization
// registered (token exchange), and the sessions that tokens name
// (introspection and revocation).
type OAuthStore interface {
	// OrgAudiences returns the organization's registered audiences, sorted.
	OrgAudiences(ctx context.Context, orgID uuid.UUID) ([]string, error)
	// SessionByID returns the session. Returns CodeNotFound if there is none.
	SessionByID(ctx context.Context, id uuid.UUID) (*domain.Session, error)
	// RevokeSession revokes the user's session and its refresh tokens.
	// Returns CodeNotFound if it is not an active session of that user.
	RevokeSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) error
	// RefreshTokenSession returns the session of the refresh token whose
	// SHA-256 is hash, and whether the token itself is live: neither spent
	// nor revoked. Returns CodeNotFound for an unknown token.
	RefreshTokenSession(ctx context.Context, hash []byte) (*domain.Session, bool, error)
}
