package domain

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// The purposes of a recovery token.
const (
	// PurposePasswordReset is a token that sets a new password.
	PurposePasswordReset = "password_reset"
	// PurposeVerifyEmail is a token that proves the control of an address.
	PurposeVerifyEmail = "verify_email"
)

// RecoveryToken is a single-use token sent by mail: a password reset or an
// email verification. Only the SHA-256 hash of the token is ever stored.
type RecoveryToken struct {
	ID      uuid.UUID
	UserID  uuid.UUID
	Purpose string
	Hash    []byte
	// Email is the address the token was sent to; a verification token
	// verifies only that address.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// The priorities of queued mail: lower goes first.
const (
	MailPriorityAccount      = 0
	MailPriorityNotification = 1
)

// MailInvitation is the template of an invitation to an organization.
const MailInvitation = "org_invitation"

// OutboxMessage is a mail waiting in the outbox. Its Payload is the sealed
// template data (it carries the token's link, so it is encrypted at rest
// and wiped once the message is sent or abandoned).
type OutboxMessage struct {
	ID uuid.UUID
	// Template names the mail: PurposePasswordReset, PurposeVerifyEmail or
	// MailInvitation.
	Template string
	// Priority orders due mail: MailPriorityAccount (reset, verification)
	// goes out before MailPriorityNotification (invitations), so that a
	// flood of one cannot starve the other.
	Priority int
	// OrgID is the organization a notification was sent for, for its quota.
	OrgID     *uuid.UUID
	Recipient string
	UserID    *uuid.UUID
	Payload   []byte
	CreatedAt time.Time
	// NextAttemptAt is when the message may next be claimed.
	NextAttemptAt time.Time
	// ExpiresAt, when set, is when the message stops being worth sending
	// (its link has expired).
	ExpiresAt *time.Time
	// Attempts counts the claims so far, the current one included.
	Attempts int
	// ClaimID identifies the worker's current claim; a worker may only
	// settle the rows it still holds.
	ClaimID uuid.UUID
}

// CredentialChange is what one transaction does to a password account's
// credentials. The service decides it (the recovery rules live there); the
// store applies all of it or nothing. Zero fields change nothing.
type CredentialChange struct {
	// PasswordHash replaces the password hash.
	PasswordHash string
	// IfPasswordHash applies the change only while the stored hash is still
	// this one (an optimistic check against a concurrent change).
	IfPasswordHash string
	// IfEmail applies the change only while the user's email is this one.
	IfEmail string
	// VerifyEmail marks the email verified if it is still this address,
	// keeping an earlier verification time.
	VerifyEmail string
	// SpendTokens are the recovery purposes whose outstanding tokens of the
	// user are spent.
	SpendTokens []string
	// RevokeSessions revokes every active session of the user but
	// KeepSession (uuid.Nil keeps none), with their refresh tokens.
	RevokeSessions bool
	KeepSession    uuid.UUID
	// RevokeAPIKeys revokes every active personal API key of the user.
	RevokeAPIKeys bool
	// DisablePasskeyLogin stops every WebAuthn credential of the user from
	// signing in alone; they stay second factors.
	DisablePasskeyLogin bool
	// UnlockMFA clears the user's failed second-factor attempts and lock.
	UnlockMFA bool
}

// CredentialResult is what a credential change did.
type CredentialResult struct {
	UserID uuid.UUID
	// Revoked are the sessions that the change revoked.
	Revoked []uuid.UUID
	// RevokedKeys are the personal API keys that the change revoked.
	RevokedKeys []APIKey
}

// OutboxStore is the mail outbox that workers drain. Several workers, in
// one process or many, may drain it at once: a claimed row is leased to one
// claim until the lease ends.
type OutboxStore interface {
	// EnqueueMail stores a message on its own.
	EnqueueMail(ctx context.Context, m *OutboxMessage) error
	// ClaimMail leases up to limit due messages (unsent, not abandoned, due
	// at now, not leased) until now+lease to one new claim, counts the
	// attempt and returns them. A message whose attempts are used up and
	// whose last lease ran out is abandoned instead.
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit, maxAttempts int) ([]OutboxMessage, error)
	// MarkMailSent records that the claimed message was sent and wipes its
	// payload. Returns CodeNotFound if the claim no longer holds it.
	MarkMailSent(ctx context.Context, id, claimID uuid.UUID, now time.Time) error
	// MarkMailFailed records a failed attempt of the claimed message: it is
	// due again at retryAt, or abandoned (its payload wiped) when retryAt is
	// nil. Returns CodeNotFound if the claim no longer holds it.
	MarkMailFailed(ctx context.Context, id, claimID uuid.UUID, now time.Time, reason string, retryAt *time.Time) error
}

// The kinds of rows that pruning deletes.
const (
	PruneRefreshTokens  = "refresh_tokens"
	PruneSessions       = "sessions"
	PruneRecoveryTokens = "recovery_tokens"
	PruneEvents         = "security_events"
	PruneOutbox         = "mail_outbox"
	PruneRateLimits     = "rate_limits"
	// PruneMFAChallenges are WebAuthn ceremonies that expired unfinished.
	PruneMFAChallenges = "mfa_challenges"
	// PruneMFAFactors are factors whose enrolment was never confirmed.
	// (Used TOTP steps need no pruning: a factor keeps its last ten.)
	PruneMFAFactors = "mfa_factors"
	// PruneWebhookMessages are webhook messages delivered or failed before
	// the event retention; PruneWebhookAttempts the delivery log's entries
	// older than it.
	PruneWebhookMessages = "webhook_messages"
	PruneWebhookAttempts = "webhook_attempts"
	// PruneOutboundEvents are outbound events older than their retention.
	PruneOutboundEvents = "outbound_events"
	// PruneOTPChallenges are email sign-in challenges that expired.
	PruneOTPChallenges = "otp_challenges"
	// PruneProviderFlows and PruneProviderCodes are provider sign-ins and
	// one-time codes that expired unanswered or unexchanged.
	PruneProviderFlows = "provider_flows"
	PruneProviderCodes = "provider_codes"
)

// PruneKinds returns the kinds in the order they are pruned: refresh tokens
// before the sessions that own them.
func PruneKinds() []string {
	return []string{PruneRefreshTokens, PruneSessions, PruneRecoveryTokens, PruneEvents, PruneOutbox, PruneRateLimits,
		PruneMFAChallenges, PruneMFAFactors, PruneWebhookMessages, PruneWebhookAttempts, PruneOutboundEvents, PruneOTPChallenges, PruneProviderFlows, PruneProviderCodes}
}

// MailData is what a queued mail's template is rendered with. It is stored
// sealed in the outbox row, since Link carries a token.
type MailData struct {
	// Email is the recipient's address.
	Email string `json:"email"`
	// Link is the page that takes the token.
	Link string `json:"link"`
	// ExpiresAt is when the link stops working.
	ExpiresAt time.Time `json:"expires_at"`
	// TTL is the link's lifetime.
	TTL time.Duration `json:"ttl"`
	// Organization is the name of the organization an invitation is to.
	Organization string `json:"organization,omitempty"`
	// Role is the role an invitation offers.
	Role string `json:"role,omitempty"`
	// Factor is the name of the second factor a factor mail is about.
	Factor string `json:"factor,omitempty"`
	// Factors are the account's second factors, listed in a reset mail.
	Factors []string `json:"factors,omitempty"`
	// Code is the 6-digit code of a sign-in mail (MailOTP).
	Code string `json:"code,omitempty"`
	// Endpoint is the URL of the webhook endpoint a mail is about.
	Endpoint string `json:"endpoint,omitempty"`
}

// OutboxPayloadLabel is the label an outbox payload is sealed under: it
// binds the payload to its row, so a payload copied to another row does not
// open.
func OutboxPayloadLabel(id uuid.UUID) string { return "mail-outbox:" + id.String() }
