package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// MFAStore is the storage that multi-factor authentication needs; the
// SQL store implements it. Methods return CodeNotFound as documented and
// anything else only for a storage failure.
type MFAStore interface {
	// ListFactors returns every factor of the user, oldest first.
	ListFactors(ctx context.Context, userID uuid.UUID) ([]domain.Factor, error)
	// HasVerifiedFactor reports whether the user has a verified factor.
	HasVerifiedFactor(ctx context.Context, userID uuid.UUID) (bool, error)
	// RecordMFAFailure counts a failed second-factor attempt in one atomic
	// update and locks the user's second factors when the count reaches
	// lockAfter; it returns the count and whether this failure locked them.
	RecordMFAFailure(ctx context.Context, userID uuid.UUID, lockAfter int, now time.Time) (int, bool, error)
	// ResetMFAFailures clears the failed attempts and the lock.
	ResetMFAFailures(ctx context.Context, userID uuid.UUID) error
	// MFALocked reports whether the user's second factors are locked.
	MFALocked(ctx context.Context, userID uuid.UUID) (bool, error)
	// FactorByCredentialID returns the verified WebAuthn factor of the
	// credential id. Returns CodeNotFound if there is none.
	FactorByCredentialID(ctx context.Context, credentialID []byte) (*domain.Factor, error)
	// CreateFactor stores an unverified factor.
	CreateFactor(ctx context.Context, f *domain.Factor) error
	// ConfirmFactor verifies (or stores) a factor, replaces the recovery
	// codes when asked, raises the session's assurance and replaces its
	// refresh token, in one transaction, and returns the session. Returns
	// CodeNotFound for a factor or session that is not the user's;
	// CodeConflict for a credential already registered.
	ConfirmFactor(ctx context.Context, c domain.FactorChange) (*domain.Session, error)
	// SetSessionAssurance raises the assurance of the user's active session
	// and replaces its refresh token with rt (the live one counts as
	// spent). Returns CodeNotFound if it is not an active session of the
	// user.
	SetSessionAssurance(ctx context.Context, userID, sessionID uuid.UUID, aal string, amr []string, rt *domain.RefreshToken, now time.Time) (*domain.Session, error)
	// RenameFactor renames the user's factor. Returns CodeNotFound if it is
	// not the user's.
	RenameFactor(ctx context.Context, userID, id uuid.UUID, name string) (*domain.Factor, error)
	// DeleteFactor removes the user's factor at now (and the recovery codes
	// with the last verified one), with mfa.factor.removed for a verified
	// one, and returns how many verified factors are left. Returns
	// CodeNotFound if it is not the user's.
	DeleteFactor(ctx context.Context, userID, id uuid.UUID, now time.Time) (int, error)
	// UseFactor records a use: last_used_at, and a WebAuthn factor's
	// updated credential record.
	UseFactor(ctx context.Context, f *domain.Factor, now time.Time) error
	// UseTOTPStep records a used time step of a factor. Returns
	// CodeConflict when it was used before.
	UseTOTPStep(ctx context.Context, factorID uuid.UUID, step int64, now time.Time) error
	// UseRecoveryCode spends an unused recovery code of the user. Returns
	// CodeNotFound if there is none with the hash.
	UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte, now time.Time) error
	// ReplaceRecoveryCodes replaces every recovery code of the user.
	ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, hashes [][]byte, now time.Time) error
	// CountRecoveryCodes returns the user's unused recovery codes.
	CountRecoveryCodes(ctx context.Context, userID uuid.UUID) (int, error)
	// SaveChallenge stores a pending WebAuthn ceremony.
	SaveChallenge(ctx context.Context, c *domain.Challenge) error
	// TakeChallenge removes and returns the ceremony with the challenge
	// hash. Returns CodeNotFound if there is none or it expired.
	TakeChallenge(ctx context.Context, hash []byte, now time.Time) (*domain.Challenge, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// RevokeUserSessions revokes every active session of the user but keep.
	RevokeUserSessions(ctx context.Context, userID, keep uuid.UUID, now time.Time) ([]uuid.UUID, error)
	// EnqueueMail queues a mail.
	EnqueueMail(ctx context.Context, m *domain.OutboxMessage) error
}
