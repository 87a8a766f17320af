package domain

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser stores a new user with its first session and refresh token in
	// one transaction; a nil session stores the user alone. Returns
	// CodeEmailTaken if the email is in use.
	CreateUser(ctx context.Context, u *User, s *Session, rt *RefreshToken) error
	// UserByEmail returns the password account with the normalised email.
	// Returns CodeNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*User, error)
	// SetPasswordHash replaces the user's password hash if it still equals
	// old (so a concurrent change is not overwritten by a rehash). Returns
	// CodeNotFound if the user does not exist or the hash moved on.
	SetPasswordHash(ctx context.Context, id uuid.UUID, old, new string, now time.Time) error
}

// SessionStore keeps sessions and their refresh-token families.
type SessionStore interface {
	// CreateSession stores a session with its first refresh token.
	CreateSession(ctx context.Context, s *Session, rt *RefreshToken) error
	// RotateRefreshToken spends a refresh token in one transaction whose
	// conditional update has exactly one winner. Returns CodeInvalidGrant for
	// an unknown token or a session that is no longer active; a detected reuse
	// is an outcome, not an error.
	RotateRefreshToken(ctx context.Context, req RotateRequest) (*RotateResult, error)
	// SessionByID returns the session. Returns CodeNotFound if there is none.
	SessionByID(ctx context.Context, id uuid.UUID) (*Session, error)
	// ListSessions returns up to limit of the user's sessions active at now
	// after the cursor, newest first.
	ListSessions(ctx context.Context, userID uuid.UUID, now time.Time, after *Cursor, limit int) ([]Session, error)
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
	RenewSession(ctx context.Context, userID, sessionID uuid.UUID, now time.Time, idle time.Duration) (*Session, error)
}

// KeyStore keeps the signing keys and server secrets that every instance
// shares.
type KeyStore interface {
	// SigningKeys returns every key not retired before since, newest first.
	SigningKeys(ctx context.Context, since time.Time) ([]SigningKey, error)
	// AddSigningKey stores a new key; it becomes the active one and every
	// older key is retired at k.CreatedAt.
	AddSigningKey(ctx context.Context, k SigningKey) error
	// EnsureSigningKey stores k only when no unretired key exists (of any
	// algorithm), and returns whether it did. Concurrent callers store at
	// most one key.
	EnsureSigningKey(ctx context.Context, k SigningKey) (bool, error)
	// Secret returns the named server secret, storing value first if there
	// is none yet; concurrent callers all get the one stored value.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// EventStore keeps security events.
type EventStore interface {
	// RecordEvent appends an event.
	RecordEvent(ctx context.Context, e *Event) error
	// ListEvents returns up to limit events of the user created before the
	// cursor (the zero cursor means from the newest), newest first.
	ListEvents(ctx context.Context, userID uuid.UUID, before EventCursor, limit int) ([]Event, error)
}

// Cursor marks a position in a list ordered by creation time and id. Every
// list of the API pages with one.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// EventCursor marks a position in a user's event list.
type EventCursor = Cursor

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}
