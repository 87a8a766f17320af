package service

import (
	"context"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// OTPStore is the storage that email sign-in links and codes need; the SQL
// store implements it. Methods return the codes documented and anything
// else only for a storage failure.
type OTPStore interface {
	// UserByEmail returns the account with the normalised email. Returns
	// CodeNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*domain.User, error)
	// CreateOTPChallenge stores the challenge in place of its email's
	// pending one and queues its mail, in one transaction.
	CreateOTPChallenge(ctx context.Context, c *domain.OTPChallenge, m *domain.OutboxMessage) error
	// RedeemOTP spends the live challenge that r presents (a code takes one
	// of its attempts first, atomically, and a wrong one commits only that)
	// and returns the account it signs in, its email verified, created
	// when the challenge asked for one. Returns CodeInvalidToken for an
	// unknown, expired, spent or ended challenge, a wrong code, or an
	// address without an account whose challenge did not ask for one.
	RedeemOTP(ctx context.Context, r domain.OTPRedeem) (*domain.OTPResult, error)
	// Secret returns the named server secret, storing value first if there
	// is none yet.
	Secret(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error)
}
