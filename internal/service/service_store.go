package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Store is the storage that the core Service needs: accounts, sessions and
// their refresh tokens, signing keys and server secrets, the API-key
// lookups of authentication, recording events, the verification mail of a
// new account, pruning and health. Each feature service declares its own
// (APIKeyStore, OrgStore, RecoveryStore, EventStore, MFAStore); the SQL
// store implements them all. Methods return the codes documented and
// anything else only for a storage failure.
type Store interface {
	ssoLookup
	// CreateUser stores a new user with its first session and refresh token in
	// one transaction; a nil session stores the user alone. Returns
	// CodeEmailTaken if the email is in use.
	CreateUser(ctx context.Context, u *domain.User, s *domain.Session, rt *domain.RefreshToken) error
	// CreateUserWithMail stores a new user with its first session and refresh
	// token, a verification token and the mail that carries it, in one
	// transaction. Returns CodeEmailTaken if the email is in use.
	CreateUserWithMail(ctx context.Context, u *domain.User, s *domain.Session, rt *domain.RefreshToken, t *domain.RecoveryToken, m *domain.OutboxMessage) error
	// UserByEmail returns the password account with the normalised email.
	// Returns CodeNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*domain.User, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	// SetPasswordHash replaces the user's password hash if it still equals
	// old (so a concurrent change is not overwritten by a rehash). Returns
	// CodeNotFound if the user does not exist or the hash moved on.
	SetPasswordHash(ctx context.Context, id uuid.UUID, old, new string, now time.Time) error

	// CreateSession stores a session with its first refresh token.
	CreateSession(ctx context.Context, s *domain.Session, rt *domain.RefreshToken) error
	// RotateRefreshToken spends a refresh token in one transaction whose
	// conditional update has exactly one winner. Returns CodeInvalidGrant for
	// an unknown token or a session that is no longer active; a detected reuse
	// is an outcome, not an error.
	RotateRefreshToken(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, error)
	// SessionByID returns the session. Returns CodeNotFound if there is none.
	SessionByID(ctx context.Context, id uuid.UUID) (*domain.Session, error)
	// ListSessions returns up to limit of the user's sessions active at now
	// after the cursor, newest first.
	ListSessions(ctx context.Context, userID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error)
	// CountActiveSessions returns how many sessions of the user are active
	// at now.
	CountActiveSessions(ctx context.Context, userID uuid.UUID, now time.Time) (int, error)
	// TrimSessions revokes every active session of the user but the newest
	// keep, with their refresh tokens, and returns the revoked ids.
	TrimSessions(ctx context.Context, userID uuid.UUID, keep int, now time.Time) ([]uuid.UUID, error)
	// RevokeSession revokes the user's session and its refresh tokens.
	// Returns CodeNotFound if it is not an active session of that user.
	RevokeSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time) error
	// RevokeUserSessions revokes every active session of the user except
	// keep (when not uuid.Nil) and returns the ids it revoked.
	RevokeUserSessions(ctx context.Context, userID, keep uuid.UUID, now time.Time) ([]uuid.UUID, error)
	// RenewSession moves the idle expiry of the user's active session to
	// now+idle, never past its absolute expiry. Returns CodeNotFound if it is
	// not an active session of that user.
	RenewSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time, idle time.Duration) (*domain.Session, error)

	// APIKeyByHash returns the key with the SHA-256 hash, whatever its state.
	// Returns CodeNotFound if there is none.
	APIKeyByHash(ctx context.Context, hash []byte) (*domain.APIKey, error)
	// APIKeyByID returns the key, whatever its state. Returns CodeNotFound if
	// there is none.
	APIKeyByID(ctx context.Context, id uuid.UUID) (*domain.APIKey, error)
	// TouchAPIKey sets the key's last_used_at to now unless it was set less
	// than every ago, and reports whether it wrote.
	TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, every time.Duration) (bool, error)
	// RevokeUserAPIKeys revokes every active personal key of the user and
	// returns them.
	RevokeUserAPIKeys(ctx context.Context, userID uuid.UUID, now time.Time) ([]domain.APIKey, error)

	// SigningKeys returns every key not retired before since, newest first.
	SigningKeys(ctx context.Context, since time.Time) ([]domain.SigningKey, error)
	// AddSigningKey stores a new key; it becomes the active one and every
	// older key is retired at k.CreatedAt.
	AddSigningKey(ctx context.Context, k domain.SigningKey) error
	// EnsureSigningKey stores k only when no unretired key exists (of any
	// algorithm), and returns whether it did. Concurrent callers store at
	// most one key.
	EnsureSigningKey(ctx context.Context, k domain.SigningKey) (bool, error)
	// Secret returns the named server secret, storing value (created at
	// now) first if there is none yet; concurrent callers all get the one
	// stored value.
	Secret(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error)

	// RecordEvent appends an event.
	RecordEvent(ctx context.Context, e *domain.Event) error
	// CountMail returns how many mails were queued since since to the
	// recipient (when not "") or for the organization (when orgID is not
	// nil), whatever became of them.
	CountMail(ctx context.Context, recipient string, orgID *uuid.UUID, since time.Time) (int, error)
	// Prune deletes at most limit rows of the kind that ended before
	// before: refresh tokens of sessions that ended, sessions that ended and
	// have no refresh token left, spent or expired recovery tokens, events
	// created before it, outbox messages sent or abandoned before it,
	// shared rate-limit rows whose bucket was full again before it, WebAuthn
	// ceremonies that expired before it, and unconfirmed factors created
	// before it. It returns how many rows it deleted.
	Prune(ctx context.Context, kind string, before time.Time, limit int) (int, error)
	// Ping reports whether the database answers. Returns CodeUnavailable if
	// not.
	Ping(ctx context.Context) error
}
