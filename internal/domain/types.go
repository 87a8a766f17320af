package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// User is an account. A password account has an Email and a PasswordHash; a
// delegated identity (an organization's own user) has OrgID and ExternalID
// and no password.
type User struct {
	ID            uuid.UUID
	Email         string // normalised (trimmed, lower case); "" when none
	EmailVerified bool
	// VerifiedAt is when the email was verified; nil when it is not, and for
	// an account verified by an instance of an earlier release (which
	// therefore never gains operator power through an older key).
	VerifiedAt   *time.Time
	PasswordHash string // PHC string; "" for a delegated identity
	OrgID        *uuid.UUID
	ExternalID   string
	// Metadata is a delegated identity's metadata from its organization;
	// nil when none.
	Metadata json.RawMessage
	// AppMetadata is what operators store about the user (copied into
	// access tokens); UserMetadata what the user stores about themselves.
	// Each is a JSON object of at most MaxMetadataBytes, nil when none.
	AppMetadata  json.RawMessage
	UserMetadata json.RawMessage
	// BannedUntil is when the user's ban ends (nil: not banned); see
	// Banned. BanReason is the operator's note, shown to operators only.
	BannedUntil *time.Time
	BanReason   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// MaxMetadataBytes is the most bytes app_metadata and user_metadata may
// each take, serialised.
const MaxMetadataBytes = 8 << 10

// Banned reports whether the user is banned at now.
func (u *User) Banned(now time.Time) bool {
	return u.BannedUntil != nil && now.Before(*u.BannedUntil)
}

// ErrBanned is the refusal of anything that would issue a credential to,
// or authenticate, a banned user.
func ErrBanned() *Error {
	return Errorf(CodeUserBanned, "this account is banned")
}

// Session is one login on one device: a family of refresh tokens.
type Session struct {
	ID                uuid.UUID
	UserID            uuid.UUID
	OrgID             *uuid.UUID // set for a delegated session
	ExternalID        string     // the delegated identity's external id, when listed
	CreatedAt         time.Time
	LastUsedAt        time.Time
	ExpiresAt         time.Time // idle expiry, moved forward by refresh and renew
	AbsoluteExpiresAt time.Time // never moves
	RevokedAt         *time.Time
	UserAgent         string
	IP                string
	// AAL is the session's assurance level (AAL1 or AAL2; "" read from a
	// row written before multi-factor authentication is AAL1).
	AAL string
	// AMR are the session's authentication methods (RFC 8176).
	AMR []string
	// MFAAt is when the session last verified a second factor (nil: never,
	// or before this was recorded).
	MFAAt *time.Time
	// ActorID is the operator acting in an impersonation session (nil for
	// every other session): its tokens carry the act claim, stay aal1 and
	// are read-only.
	ActorID *uuid.UUID
}

// AuthTime is when the session's user last authenticated: the last
// verification of a second factor, else the login. Tokens carry it as
// auth_time, and aal2 operations need it recent.
func (s *Session) AuthTime() time.Time {
	if s.MFAAt != nil && s.MFAAt.After(s.CreatedAt) {
		return *s.MFAAt
	}
	return s.CreatedAt
}

// IdleExpiry is the idle expiry of a session used at now: now+idle, never
// past its absolute expiry. It is the one rule in Go; the store's SQL
// applies the same rule to stored sessions (sqlstore's touchExpiry).
func IdleExpiry(now time.Time, idle time.Duration, absolute time.Time) time.Time {
	if e := now.Add(idle); e.Before(absolute) {
		return e
	}
	return absolute
}

// Active reports whether the session can still be used at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt) && now.Before(s.AbsoluteExpiresAt)
}

// RefreshToken is one member of a session's token family. Only the SHA-256
// hash of the token is ever stored.
type RefreshToken struct {
	ID        uuid.UUID
	SessionID uuid.UUID
	ParentID  *uuid.UUID
	Hash      []byte
	CreatedAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
}

// RotateRequest asks the store to spend a refresh token and record its
// successor.
type RotateRequest struct {
	PresentedHash []byte        // SHA-256 of the presented token
	SuccessorHash []byte        // SHA-256 of the successor derived from it
	Now           time.Time     // the transaction's time
	IdleTTL       time.Duration // how far a use moves the session's idle expiry
	Grace         time.Duration // how long the previous token may be replayed
}

// RotateOutcome says how a rotation ended.
type RotateOutcome int

const (
	// Rotated: the presented token was live; it is spent and its successor is
	// stored.
	Rotated RotateOutcome = iota + 1
	// Replayed: the presented token was spent within the grace window and its
	// successor is still live; nothing was written but the session's use.
	Replayed
	// ReuseDetected: a spent token was presented outside the rules; the whole
	// session is now revoked.
	ReuseDetected
)

// RotateResult is what a rotation did, with the session after it.
type RotateResult struct {
	Outcome RotateOutcome
	Session Session
	User    User
}

// SigningKey is a private key that signs access tokens.
type SigningKey struct {
	KID        string
	Alg        string
	PrivatePEM []byte // PKCS#8 PEM, decrypted
	CreatedAt  time.Time
	RetiredAt  *time.Time
	// ActivatesAt is when the key starts signing; until then it is only
	// published (in the JWKS). Nil: from CreatedAt.
	ActivatesAt *time.Time
}

// Event is an append-only security event. Detail never holds a secret.
type Event struct {
	ID        uuid.UUID
	Type      string
	UserID    *uuid.UUID
	SessionID *uuid.UUID
	KeyID     *uuid.UUID
	IP        string
	UserAgent string
	Detail    map[string]any
	CreatedAt time.Time
}

// The event types.
const (
	EventSignup = "signup"
	// EventImpersonationStarted is on the impersonated user's feed: an
	// operator (detail actor_id, actor_email) opened an impersonation
	// session.
	EventImpersonationStarted   = "impersonation_started"
	EventLoginSucceeded         = "login_succeeded"
	EventLoginFailed            = "login_failed"
	EventRefreshReuseDetected   = "refresh_reuse_detected"
	EventLogout                 = "logout"
	EventSessionRevoked         = "session_revoked"
	EventPasswordChanged        = "password_changed"
	EventPasswordResetRequested = "password_reset_requested"
	EventPasswordResetCompleted = "password_reset_completed"
	EventEmailVerified          = "email_verified"
	EventAPIKeyCreated          = "api_key_created"
	EventAPIKeyRolled           = "api_key_rolled"
	EventAPIKeyRevoked          = "api_key_revoked"
	EventRateLimited            = "rate_limited"
	EventMemberInvited          = "member_invited"
	EventInvitationAccepted     = "invitation_accepted"
)

// OutboundEvent tells other systems what happened: it feeds webhooks and
// the events feed. The store writes it in the same transaction as the
// change it tells of, so it exists exactly when the change committed.
// Data is the type's payload schema in openapi.yaml and never holds a
// secret.
type OutboundEvent struct {
	// Seq orders the events as the store numbered them (0 until stored).
	Seq       int64
	ID        uuid.UUID
	Type      string
	OrgID     *uuid.UUID
	UserID    *uuid.UUID
	Data      map[string]any
	CreatedAt time.Time
}

// The outbound event types; openapi.yaml declares each one's payload.
const (
	OutUserCreated       = "user.created"
	OutUserUpdated       = "user.updated"
	OutUserDeleted       = "user.deleted"
	OutUserBanned        = "user.banned"
	OutSessionCreated    = "session.created"
	OutSessionRevoked    = "session.revoked"
	OutPasswordReset     = "password.reset"
	OutEmailVerified     = "email.verified"
	OutMFAFactorAdded    = "mfa.factor.added"
	OutMFAFactorRemoved  = "mfa.factor.removed"
	OutAPIKeyCreated     = "api_key.created"
	OutAPIKeyRevoked     = "api_key.revoked"
	OutOrgMemberAdded    = "organization.member.added"
	OutOrgMemberRemoved  = "organization.member.removed"
	OutOrgMemberUpdated  = "organization.member.updated"
	OutInvitationCreated = "invitation.created"
	OutInvitationRevoked = "invitation.revoked"
	// OutWebhookTest is a test delivery to a webhook endpoint; nothing
	// happened. It never enters the feed.
	OutWebhookTest = "webhook.test"
)
