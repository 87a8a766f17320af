package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// RecoveryStore is the storage that password reset, email verification and
// password change need; the SQL store implements it. Methods return the
// codes documented and anything else only for a storage failure.
type RecoveryStore interface {
	// UserByEmail returns the password account with the normalised email.
	// Returns CodeNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*domain.User, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// CreateRecoveryToken stores the token and queues the mail that carries
	// it in one transaction.
	CreateRecoveryToken(ctx context.Context, t *domain.RecoveryToken, m *domain.OutboxMessage) error
	// RecoveryToken returns the token of the purpose with the hash if it is
	// unused and unexpired at now. Returns CodeNotFound otherwise.
	RecoveryToken(ctx context.Context, purpose string, hash []byte, now time.Time) (*domain.RecoveryToken, error)
	// RedeemRecoveryToken spends the token of the purpose with the hash and
	// applies to its user the change that decide returns for it, in one
	// transaction whose conditional update has exactly one winner among
	// concurrent uses of the token. Returns CodeInvalidToken for an unknown,
	// used or expired token, or when the change's IfEmail no longer holds
	// (the token then stays unspent).
	RedeemRecoveryToken(ctx context.Context, purpose string, hash []byte, now time.Time, decide func(*domain.RecoveryToken) domain.CredentialChange) (*domain.CredentialResult, error)
	// ChangeCredentials applies the change to the user's credentials in one
	// transaction. Returns CodeNotFound if the user is not a password
	// account or the change's conditions no longer hold.
	ChangeCredentials(ctx context.Context, userID uuid.UUID, c domain.CredentialChange, now time.Time) (*domain.CredentialResult, error)
	// ListFactors returns every factor of the user, oldest first (a reset
	// mail lists them).
	ListFactors(ctx context.Context, userID uuid.UUID) ([]domain.Factor, error)
}
