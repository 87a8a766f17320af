package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// WebhookStore is the storage that webhooks need; the SQL store implements
// it. An endpoint's owner is the operators when orgID is nil, else the
// organization. Methods return the codes documented and anything else
// only for a storage failure.
type WebhookStore interface {
	// CreateWebhookEndpoint stores a new endpoint unless its owner already
	// has max (0: no quota), atomically. Returns CodeQuotaExceeded.
	CreateWebhookEndpoint(ctx context.Context, e *domain.WebhookEndpoint, max int) error
	// WebhookEndpoint returns the owner's endpoint. Returns CodeNotFound if
	// the owner has no such endpoint.
	WebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID) (*domain.WebhookEndpoint, error)
	// ListWebhookEndpoints returns up to limit endpoints of the owner after
	// the cursor, oldest first.
	ListWebhookEndpoints(ctx context.Context, orgID *uuid.UUID, after *domain.Cursor, limit int) ([]domain.WebhookEndpoint, error)
	// UpdateWebhookEndpoint reads the owner's endpoint, lets fn change it
	// and stores it, in one transaction. Returns fn's error, or
	// CodeNotFound.
	UpdateWebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID, fn func(e *domain.WebhookEndpoint) error) (*domain.WebhookEndpoint, error)
	// DeleteWebhookEndpoint deletes the owner's endpoint, its messages and
	// its log. Returns CodeNotFound.
	DeleteWebhookEndpoint(ctx context.Context, orgID *uuid.UUID, id uuid.UUID) error
	// EnqueueWebhookMessage queues one message on its own.
	EnqueueWebhookMessage(ctx context.Context, m *domain.WebhookMessage) error
	// RedeliverWebhookMessage makes the endpoint's message due at now
	// with a fresh schedule. Returns CodeNotFound, or CodeConflict while an
	// attempt holds it.
	RedeliverWebhookMessage(ctx context.Context, endpointID, eventID uuid.UUID, now time.Time) error
	// ListWebhookAttempts returns up to limit attempts of the endpoint
	// after the cursor, newest first.
	ListWebhookAttempts(ctx context.Context, endpointID uuid.UUID, after *domain.Cursor, limit int) ([]domain.WebhookAttempt, error)
}

// WebhookQueue is the storage the delivery worker needs.
type WebhookQueue interface {
	// ClaimWebhookMessages leases up to limit due messages of enabled
	// endpoints to a new claim (each message in at most one live claim),
	// with their endpoints; a message whose last allowed attempt died with
	// its worker is marked failed.
	ClaimWebhookMessages(ctx context.Context, now time.Time, lease time.Duration, limit, maxAttempts int) ([]domain.WebhookMessage, error)
	// RecordWebhookAttempt logs the attempt and settles the claimed
	// message, keeping the endpoint's failure streak, in one transaction.
	// Returns whether the endpoint was disabled by it, and CodeNotFound
	// (the attempt logged) when the claim had lapsed.
	RecordWebhookAttempt(ctx context.Context, m *domain.WebhookMessage, a *domain.WebhookAttempt, out domain.WebhookOutcome) (bool, error)
	// OldestPendingWebhook returns when the oldest undelivered message was
	// queued, nil when none is.
	OldestPendingWebhook(ctx context.Context) (*time.Time, error)
	// OrgOwnerEmails returns the addresses of the organization's owners.
	OrgOwnerEmails(ctx context.Context, orgID uuid.UUID) ([]string, error)
	// EnqueueMail queues a mail.
	EnqueueMail(ctx context.Context, m *domain.OutboxMessage) error
}
