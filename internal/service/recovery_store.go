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
	// ResetPassword spends the reset token with the hash, in one transaction
	// whose conditional update has exactly one winner: it sets the user's
	// password hash, spends every other reset token of the user, marks the
	// address the token was sent to as verified and revokes every session and
	// every personal API key of the user. Returns CodeInvalidToken for an
	// unknown, used or expired token.
	ResetPassword(ctx context.Context, hash []byte, passwordHash string, now time.Time) (*domain.ResetResult, error)
	// VerifyEmail spends the verification token with the hash and marks the
	// user's email verified if it is still the address the token was sent
	// to. Returns the user id; CodeInvalidToken for an unknown, used or
	// expired token.
	VerifyEmail(ctx context.Context, hash []byte, now time.Time) (uuid.UUID, error)
	// ChangePassword replaces the user's password hash if it still equals
	// old, spends the user's outstanding reset tokens, revokes every session
	// of the user but keep and, with revokeKeys, every personal API key of
	// the user, in one transaction. Returns the revoked session ids and keys;
	// CodeNotFound if the user does not exist or the hash moved on.
	ChangePassword(ctx context.Context, userID uuid.UUID, old, new string, keep uuid.UUID, revokeKeys bool, now time.Time) ([]uuid.UUID, []domain.APIKey, error)
}
