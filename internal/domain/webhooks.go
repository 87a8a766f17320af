package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// OutboundTypes returns every outbound event type that a change emits: the
// types an endpoint may subscribe to (besides OutWebhookTest, which it
// always receives when it asks for a test).
func OutboundTypes() []string {
	return []string{OutUserCreated, OutUserUpdated, OutUserDeleted, OutUserBanned, OutSessionCreated, OutSessionRevoked,
		OutPasswordReset, OutEmailVerified, OutMFAFactorAdded, OutMFAFactorRemoved, OutAPIKeyCreated, OutAPIKeyRevoked,
		OutOrgMemberAdded, OutOrgMemberRemoved, OutOrgMemberUpdated, OutInvitationCreated, OutInvitationRevoked}
}

// WebhookEndpoint is a URL that receives outbound events as Standard
// Webhooks messages. OrgID is nil for an operator's endpoint, which
// receives every event; an organization's receives only the events whose
// OrgID is its organization.
type WebhookEndpoint struct {
	ID          uuid.UUID
	OrgID       *uuid.UUID
	URL         string
	Description string
	// EventTypes are the types sent; empty for all.
	EventTypes []string
	Enabled    bool
	// Secret is the signing secret as stored: sealed under
	// WebhookSecretLabel(ID). PreviousSecret (sealed the same way) still
	// signs until PreviousSecretUntil after a rotation.
	Secret              []byte
	PreviousSecret      []byte
	PreviousSecretUntil *time.Time
	CreatedBy           *uuid.UUID
	CreatedAt           time.Time
	UpdatedAt           time.Time
	// DisabledAt is set when Latch disabled the endpoint after a streak of
	// failures; FailingSince is the first failure since the last success.
	DisabledAt   *time.Time
	FailingSince *time.Time
}

// MailWebhookDisabled is the template of the mail that tells an
// endpoint's owners (the operators, or the organization's owners) that
// Latch disabled it.
const MailWebhookDisabled = "webhook_disabled"

// WebhookSecretLabel is the sealing label of an endpoint's secrets.
func WebhookSecretLabel(endpointID uuid.UUID) string { return "webhook-secret:" + endpointID.String() }

// WebhookMessage is one event to send to one endpoint. Its id is the
// event's id: the webhook-id header, the same on every attempt.
type WebhookMessage struct {
	EndpointID uuid.UUID
	EventID    uuid.UUID
	EventType  string
	// Payload is the request body, the Standard Webhooks envelope.
	Payload       []byte
	CreatedAt     time.Time
	NextAttemptAt time.Time
	// Attempts counts the attempts, this claim's included.
	Attempts int
	ClaimID  uuid.UUID
	// Endpoint is the message's endpoint as it was when claimed.
	Endpoint WebhookEndpoint
}

// WebhookAttempt is one delivery attempt in an endpoint's log.
type WebhookAttempt struct {
	ID         uuid.UUID
	EndpointID uuid.UUID
	EventID    uuid.UUID
	EventType  string
	Attempt    int
	// StatusCode is 0 when no response came.
	StatusCode      int
	Latency         time.Duration
	ResponseExcerpt string
	Error           string
	AttemptedAt     time.Time
}

// WebhookOutcome is how a claimed message's attempt ends.
type WebhookOutcome struct {
	// Delivered is true for a 2xx answer.
	Delivered bool
	// RetryAt is when to try again; nil (and not Delivered) abandons the
	// message as failed.
	RetryAt *time.Time
	// DisableIfFailingSince disables the endpoint, in the same transaction,
	// when the attempt failed and the endpoint's failure streak began at or
	// before this time.
	DisableIfFailingSince time.Time
}

// WebhookPayload is the body of a webhook message: the Standard Webhooks
// envelope {"type", "timestamp", "data"}, plus the event's "seq" (absent
// for a test message) by which a receiver can order the events it gets.
func WebhookPayload(typ string, at time.Time, seq int64, data []byte) ([]byte, error) {
	if len(data) == 0 {
		data = []byte("{}")
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Seq       int64           `json:"seq,omitempty"`
		Data      json.RawMessage `json:"data"`
	}{typ, at.UTC().Format(time.RFC3339Nano), seq, data})
}
