package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// federationStore is what the Federation feature needs of the store.
type federationStore interface {
	// CreateProviderFlow stores a provider sign-in under way.
	CreateProviderFlow(ctx context.Context, f *domain.ProviderFlow) error
	// TakeProviderFlow deletes and returns the flow of a state hash, unless
	// it expired. Returns CodeNotFound.
	TakeProviderFlow(ctx context.Context, stateHash []byte, now time.Time) (*domain.ProviderFlow, error)
	// SignInIdentity finds or makes the user an identity signs in (see
	// domain.IdentitySignIn). Returns CodeIdentityNotLinked.
	SignInIdentity(ctx context.Context, req domain.IdentitySignIn) (*domain.User, *domain.Identity, error)
	// LinkIdentity links an identity to its UserID. Returns CodeConflict
	// when another user holds it.
	LinkIdentity(ctx context.Context, ident *domain.Identity) error
	// CreateProviderCode stores a one-time code's hash.
	CreateProviderCode(ctx context.Context, c *domain.ProviderCode) error
	// TakeProviderCode deletes and returns a code, unless it expired.
	// Returns CodeNotFound.
	TakeProviderCode(ctx context.Context, codeHash []byte, now time.Time) (*domain.ProviderCode, error)
	// ListIdentities returns the user's provider identities, oldest first.
	ListIdentities(ctx context.Context, userID uuid.UUID) ([]domain.Identity, error)
	// DeleteIdentity unlinks one, never the last way to sign in. Returns
	// CodeNotFound, CodeLastIdentity.
	DeleteIdentity(ctx context.Context, userID, id uuid.UUID) error
	// ListFactors returns every factor of the user, oldest first.
	ListFactors(ctx context.Context, userID uuid.UUID) ([]domain.Factor, error)
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// SSOConnection returns the organization's SSO connection. Returns
	// CodeNotFound.
	SSOConnection(ctx context.Context, orgID uuid.UUID) (*domain.SSOConnection, error)
	ssoLookup
}
