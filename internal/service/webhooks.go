package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/poll"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/internal/webhook"
)

// WebhookConfig tunes webhooks. Zero fields take the defaults.
type WebhookConfig struct {
	// AllowPrivate lets endpoints use http and reach private, loopback and
	// link-local addresses (LATCH_WEBHOOK_ALLOW_PRIVATE; tests).
	AllowPrivate bool
	// Timeout bounds one delivery (LATCH_WEBHOOK_TIMEOUT, default 10s).
	Timeout time.Duration
	// Lease is how long a claim holds a message; well over Timeout
	// (default 6 × Timeout).
	Lease time.Duration
	// Poll is how often the worker looks for due messages (default 2s).
	Poll time.Duration
	// Batch is how many messages one pass claims (default 20).
	Batch int
	// Schedule is the delay before each retry; a message fails after
	// len(Schedule)+1 attempts (default DefaultWebhookSchedule).
	Schedule []time.Duration
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long (default 5 days).
	DisableAfter time.Duration
	// RotationOverlap is how long a rotated secret keeps signing (default
	// 24h).
	RotationOverlap time.Duration
}

// DefaultWebhookSchedule is the retry schedule: about three days in all.
var DefaultWebhookSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

func (c *WebhookConfig) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 6 * c.Timeout
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 20
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultWebhookSchedule
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	if c.RotationOverlap <= 0 {
		c.RotationOverlap = 24 * time.Hour
	}
}

// WebhookMetrics records the worker's outcomes; nil records nothing.
type WebhookMetrics interface {
	// WebhookAttempt counts an attempt by result: delivered, http_error
	// (a non-2xx answer) or transport_error (no answer).
	WebhookAttempt(result string)
	// WebhookFailed counts a message abandoned after its last attempt.
	WebhookFailed()
	// WebhookEndpointDisabled counts an endpoint disabled for failing.
	WebhookEndpointDisabled()
	// WebhookOldestPending sets the age of the oldest pending message.
	WebhookOldestPending(d time.Duration)
}

type noWebhookMetrics struct{}

func (noWebhookMetrics) WebhookAttempt(string)              {}
func (noWebhookMetrics) WebhookFailed()                     {}
func (noWebhookMetrics) WebhookEndpointDisabled()           {}
func (noWebhookMetrics) WebhookOldestPending(time.Duration) {}

// Webhooks manages webhook endpoints (the operators' and organizations')
// and delivers their messages. It is safe for concurrent use.
type Webhooks struct {
	cfg     WebhookConfig
	store   WebhookStore
	queue   WebhookQueue
	orgs    *Orgs
	sealer  *token.Sealer
	clock   domain.Clock
	log     *slog.Logger
	client  *http.Client
	metrics WebhookMetrics
	wake    chan struct{}
	// mailOn is whether mail is configured; operators are the addresses
	// told about a disabled operator endpoint.
	mailOn    bool
	mailer    *Mail
	operators []string
	// maxEndpoints is the endpoints per owner (Quotas.WebhookEndpoints).
	maxEndpoints int
}

// WebhookStores are the storage pieces of webhooks (the SQL store is both).
type WebhookStores interface {
	WebhookStore
	WebhookQueue
}

// NewWebhooks returns the webhook service, made with the shared pieces; orgs
// applies the organizations' access rules. metrics may be nil.
func NewWebhooks(cfg WebhookConfig, sh Shared, store WebhookStores, orgs *Orgs, metrics WebhookMetrics) *Webhooks {
	cfg.defaults()
	if metrics == nil {
		metrics = noWebhookMetrics{}
	}
	return &Webhooks{cfg: cfg, store: store, queue: store, orgs: orgs, sealer: sh.Sealer, clock: sh.Clock, log: sh.Log,
		client: webhook.NewClient(webhook.ClientConfig{Timeout: cfg.Timeout, AllowPrivate: cfg.AllowPrivate}), metrics: metrics,
		wake: make(chan struct{}, 1), mailOn: sh.Config.Recovery.Mail, mailer: sh.Mail, operators: sh.Config.APIKeys.OperatorEmails,
		maxEndpoints: sh.Config.Quotas.WebhookEndpoints}
}

// Config returns the configuration, defaults applied.
func (w *Webhooks) Config() WebhookConfig { return w.cfg }

// WebhookInput is what creating or updating an endpoint sets; nil fields
// are left as they are (created: no types is every type, enabled true).
type WebhookInput struct {
	URL         *string
	EventTypes  *[]string
	Description *string
	Enabled     *bool
}

// access checks that p may read (write false) or manage the owner's
// endpoints: for the operators (orgID nil) the HTTP layer's operator gate
// has passed; in an organization the principal must hold webhooks:read or
// webhooks:write there (owners and admins, or an organization key with
// the scope), and a member writing must meet the organization's
// require_mfa. Returns CodeNotFound or CodeInsufficientPermissions.
func (w *Webhooks) access(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, write bool) error {
	if orgID == nil {
		return nil
	}
	scope := domain.ScopeWebhooksRead
	if write {
		scope = domain.ScopeWebhooksWrite
	}
	a, err := w.orgs.orgAccess(ctx, p, *orgID)
	if err != nil {
		return err
	}
	if err := a.require(scope); err != nil {
		return err
	}
	if write {
		return w.orgs.requireMemberMFA(ctx, a)
	}
	return nil
}

func (w *Webhooks) checkInput(in WebhookInput) error {
	if in.URL != nil {
		if err := webhook.ValidateURL(*in.URL, w.cfg.AllowPrivate); err != nil {
			msg := err.Error()
			if errors.Is(err, webhook.ErrPrivateAddress) {
				msg = "the URL's address is private, loopback or link-local"
			}
			return domain.Errorf(domain.CodeInvalidRequest, "url: %s", msg)
		}
	}
	if in.EventTypes != nil {
		known := domain.OutboundTypes()
		for _, t := range *in.EventTypes {
			if !slices.Contains(known, t) {
				return domain.Errorf(domain.CodeInvalidRequest, "event_types: %q is not an event type", t)
			}
		}
	}
	return nil
}

func (in WebhookInput) apply(e *domain.WebhookEndpoint, now time.Time) {
	if in.URL != nil {
		e.URL = *in.URL
	}
	if in.EventTypes != nil {
		e.EventTypes = slices.Compact(slices.Sorted(slices.Values(*in.EventTypes)))
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.Enabled != nil {
		if *in.Enabled && !e.Enabled {
			e.DisabledAt, e.FailingSince = nil, nil
		}
		e.Enabled = *in.Enabled
	}
	e.UpdatedAt = now
}

// newSecret returns a new secret and its sealed form for the endpoint.
func (w *Webhooks) newSecret(id uuid.UUID) (string, []byte, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return "", nil, err
	}
	sealed, err := w.sealer.Seal([]byte(secret), domain.WebhookSecretLabel(id))
	if err != nil {
		return "", nil, err
	}
	return secret, sealed, nil
}

// Create registers an endpoint of the owner and returns it with its secret,
// which is never shown again. Returns CodeInvalidRequest for a bad URL or
// event type, CodeQuotaExceeded when the owner has Quotas.WebhookEndpoints
// already, and the access errors.
func (w *Webhooks) Create(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, in WebhookInput) (*domain.WebhookEndpoint, string, error) {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return nil, "", err
	}
	if in.URL == nil {
		return nil, "", domain.Errorf(domain.CodeInvalidRequest, "url is required")
	}
	if err := w.checkInput(in); err != nil {
		return nil, "", err
	}
	now := w.clock.Now()
	e := &domain.WebhookEndpoint{ID: uuid.New(), OrgID: orgID, Enabled: true, CreatedAt: now}
	if p.UserID != uuid.Nil {
		uid := p.UserID
		e.CreatedBy = &uid
	}
	in.apply(e, now)
	secret, sealed, err := w.newSecret(e.ID)
	if err != nil {
		return nil, "", err
	}
	e.Secret = sealed
	if err := w.store.CreateWebhookEndpoint(ctx, e, w.maxEndpoints); err != nil {
		return nil, "", err
	}
	return e, secret, nil
}

// Get returns the owner's endpoint. Returns CodeNotFound.
func (w *Webhooks) Get(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID) (*domain.WebhookEndpoint, error) {
	if err := w.access(ctx, p, orgID, false); err != nil {
		return nil, err
	}
	return w.store.WebhookEndpoint(ctx, orgID, id)
}

// List returns a page of the owner's endpoints, oldest first.
func (w *Webhooks) List(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, page PageRequest) ([]domain.WebhookEndpoint, *domain.Cursor, error) {
	if err := w.access(ctx, p, orgID, false); err != nil {
		return nil, nil, err
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.WebhookEndpoint, error) {
		return w.store.ListWebhookEndpoints(ctx, orgID, after, limit)
	}, func(e *domain.WebhookEndpoint) domain.Cursor { return domain.Cursor{CreatedAt: e.CreatedAt, ID: e.ID} })
}

// Update changes the owner's endpoint. Enabling a disabled endpoint ends
// its failure streak. Returns CodeNotFound, CodeInvalidRequest.
func (w *Webhooks) Update(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID, in WebhookInput) (*domain.WebhookEndpoint, error) {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return nil, err
	}
	if err := w.checkInput(in); err != nil {
		return nil, err
	}
	now := w.clock.Now()
	return w.store.UpdateWebhookEndpoint(ctx, orgID, id, func(e *domain.WebhookEndpoint) error {
		in.apply(e, now)
		return nil
	})
}

// Delete deletes the owner's endpoint, its pending messages and its log.
// Returns CodeNotFound.
func (w *Webhooks) Delete(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID) error {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return err
	}
	return w.store.DeleteWebhookEndpoint(ctx, orgID, id)
}

// RotateSecret gives the owner's endpoint a new secret, returned once, and
// keeps the current one signing until the returned time (both signatures
// are sent meanwhile). Returns CodeNotFound.
func (w *Webhooks) RotateSecret(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID) (string, time.Time, error) {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return "", time.Time{}, err
	}
	secret, sealed, err := w.newSecret(id)
	if err != nil {
		return "", time.Time{}, err
	}
	now := w.clock.Now()
	until := now.Add(w.cfg.RotationOverlap)
	if _, err := w.store.UpdateWebhookEndpoint(ctx, orgID, id, func(e *domain.WebhookEndpoint) error {
		e.PreviousSecret, e.PreviousSecretUntil = e.Secret, &until
		e.Secret, e.UpdatedAt = sealed, now
		return nil
	}); err != nil {
		return "", time.Time{}, err
	}
	return secret, until, nil
}

// Deliveries returns a page of the endpoint's delivery attempts, newest
// first. Returns CodeNotFound.
func (w *Webhooks) Deliveries(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID, page PageRequest) ([]domain.WebhookAttempt, *domain.Cursor, error) {
	if _, err := w.Get(ctx, p, orgID, id); err != nil {
		return nil, nil, err
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.WebhookAttempt, error) {
		return w.store.ListWebhookAttempts(ctx, id, after, limit)
	}, func(a *domain.WebhookAttempt) domain.Cursor { return domain.Cursor{CreatedAt: a.AttemptedAt, ID: a.ID} })
}

// Redeliver makes the endpoint's message due now with a fresh schedule.
// Returns CodeNotFound, CodeConflict while an attempt holds it.
func (w *Webhooks) Redeliver(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id, messageID uuid.UUID) error {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return err
	}
	if _, err := w.store.WebhookEndpoint(ctx, orgID, id); err != nil {
		return err
	}
	if err := w.store.RedeliverWebhookMessage(ctx, id, messageID, w.clock.Now()); err != nil {
		return err
	}
	w.Notify()
	return nil
}

// Test queues a webhook.test message to the owner's endpoint only.
// Returns CodeNotFound.
func (w *Webhooks) Test(ctx context.Context, p *domain.Principal, orgID *uuid.UUID, id uuid.UUID) error {
	if err := w.access(ctx, p, orgID, true); err != nil {
		return err
	}
	if _, err := w.store.WebhookEndpoint(ctx, orgID, id); err != nil {
		return err
	}
	now := w.clock.Now()
	m := &domain.WebhookMessage{EndpointID: id, EventID: uuid.New(), EventType: domain.OutWebhookTest, CreatedAt: now, NextAttemptAt: now}
	var err error
	if m.Payload, err = domain.WebhookPayload(m.EventType, now, 0, fmt.Appendf(nil, `{"endpoint_id":%q}`, id)); err != nil {
		return err
	}
	if err := w.store.EnqueueWebhookMessage(ctx, m); err != nil {
		return err
	}
	w.Notify()
	return nil
}

// Notify wakes the worker. It never blocks.
func (w *Webhooks) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx ends.
func (w *Webhooks) Run(ctx context.Context) {
	poll.Loop(ctx, w.wake, w.cfg.Poll, func(ctx context.Context) bool {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("webhook delivery", "err", err)
		}
		return err == nil && n == w.cfg.Batch
	})
}

// RunOnce claims one batch of due messages and delivers them one after
// another, then updates the oldest-pending gauge. It returns how many it
// claimed; an error only when the queue could not be read.
func (w *Webhooks) RunOnce(ctx context.Context) (int, error) {
	msgs, err := w.queue.ClaimWebhookMessages(ctx, w.clock.Now(), w.cfg.Lease, w.cfg.Batch, len(w.cfg.Schedule)+1)
	if err != nil {
		return 0, err
	}
	for i := range msgs {
		w.deliver(ctx, &msgs[i])
	}
	if oldest, err := w.queue.OldestPendingWebhook(ctx); err == nil {
		age := time.Duration(0)
		if oldest != nil {
			age = max(w.clock.Now().Sub(*oldest), 0)
		}
		w.metrics.WebhookOldestPending(age)
	}
	return len(msgs), nil
}

// Drain runs passes until no message is due; for tests and tools.
func (w *Webhooks) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := w.RunOnce(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// The bounds of what is read and kept of a receiver's answer.
const (
	maxWebhookResponse = 64 << 10
	maxWebhookExcerpt  = 1 << 10
)

// deliver makes one attempt at the claimed message and records it.
func (w *Webhooks) deliver(ctx context.Context, m *domain.WebhookMessage) {
	log := w.log.With("endpoint_id", m.EndpointID, "webhook_id", m.EventID, "type", m.EventType, "attempt", m.Attempts)
	now := w.clock.Now()
	a := &domain.WebhookAttempt{ID: uuid.New(), EndpointID: m.EndpointID, EventID: m.EventID, EventType: m.EventType,
		Attempt: m.Attempts, AttemptedAt: now}
	start := time.Now()
	status, excerpt, err := w.send(ctx, m, now)
	a.Latency, a.StatusCode, a.ResponseExcerpt = time.Since(start), status, excerpt
	out := domain.WebhookOutcome{Delivered: err == nil, DisableIfFailingSince: now.Add(-w.cfg.DisableAfter)}
	switch {
	case err == nil:
		w.metrics.WebhookAttempt("delivered")
	case status != 0:
		w.metrics.WebhookAttempt("http_error")
	default:
		w.metrics.WebhookAttempt("transport_error")
	}
	if err != nil {
		a.Error = err.Error()
		if m.Attempts <= len(w.cfg.Schedule) {
			d := w.cfg.Schedule[m.Attempts-1]
			retry := now.Add(d + time.Duration(rand.Int64N(int64(d)/10+1)))
			out.RetryAt = &retry
			log.Warn("webhook not delivered; will retry", "retry_at", retry, "err", a.Error)
		} else {
			w.metrics.WebhookFailed()
			log.Error("webhook failed after its last attempt", "err", a.Error)
		}
	}
	disabled, rerr := w.queue.RecordWebhookAttempt(context.WithoutCancel(ctx), m, a, out)
	switch {
	case domain.IsCode(rerr, domain.CodeNotFound):
		log.Warn("the claim on the webhook message lapsed before its outcome was recorded; it may be sent again (raise the lease)")
	case rerr != nil:
		log.Error("record webhook attempt", "err", rerr)
	}
	if disabled {
		w.metrics.WebhookEndpointDisabled()
		log.Error("webhook endpoint disabled: every attempt failed for too long", "disable_after", w.cfg.DisableAfter)
		w.mailDisabled(ctx, &m.Endpoint)
	}
}

// mailDisabled tells the endpoint's owners that it was disabled: the
// operators for an operator endpoint, the organization's owners for an
// organization's. A failure is logged: the metric and the endpoint's
// disabled_at still tell.
func (w *Webhooks) mailDisabled(ctx context.Context, e *domain.WebhookEndpoint) {
	if !w.mailOn || w.mailer == nil || w.mailer.outbox == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	to := w.operators
	if e.OrgID != nil {
		var err error
		if to, err = w.queue.OrgOwnerEmails(ctx, *e.OrgID); err != nil {
			w.log.Error("find the owners of a disabled webhook endpoint", "endpoint_id", e.ID, "err", err)
			return
		}
	}
	now := w.clock.Now()
	queued := false
	for _, addr := range to {
		data, err := json.Marshal(domain.MailData{Email: addr, Endpoint: e.URL, ExpiresAt: now})
		if err != nil {
			continue
		}
		id := uuid.New()
		payload, err := w.mailer.outbox.Seal(data, domain.OutboxPayloadLabel(id))
		if err == nil {
			err = w.queue.EnqueueMail(ctx, &domain.OutboxMessage{ID: id, Template: domain.MailWebhookDisabled, Recipient: addr,
				Payload: payload, CreatedAt: now, NextAttemptAt: now, Priority: domain.MailPriorityNotification})
		}
		if err != nil {
			w.log.Error("queue the mail about a disabled webhook endpoint", "endpoint_id", e.ID, "err", err)
			continue
		}
		queued = true
	}
	if queued {
		w.mailer.queued()
	}
}

// send posts the message, signed with the endpoint's secret (and the
// previous one during a rotation's overlap). It returns the answer's
// status (0 when none came), an excerpt of its body, and an error unless
// the status is 2xx. A redirect is not followed: it is a failure.
func (w *Webhooks) send(ctx context.Context, m *domain.WebhookMessage, now time.Time) (int, string, error) {
	e := &m.Endpoint
	label := domain.WebhookSecretLabel(e.ID)
	cur, err := w.sealer.Open(e.Secret, label)
	if err != nil {
		return 0, "", errors.New("the endpoint's secret could not be opened")
	}
	secrets := []string{string(cur)}
	if e.PreviousSecretUntil != nil && now.Before(*e.PreviousSecretUntil) && len(e.PreviousSecret) > 0 {
		if prev, err := w.sealer.Open(e.PreviousSecret, label); err == nil {
			secrets = append(secrets, string(prev))
		}
	}
	h, err := webhook.Headers(secrets, m.EventID.String(), now, m.Payload)
	if err != nil {
		return 0, "", err
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return 0, "", errors.New("the endpoint's URL is invalid")
	}
	req.Header = h
	req.Header.Set("User-Agent", "Latch-Webhooks/1")
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, webhook.ErrPrivateAddress) {
			return 0, "", errors.New("refused: the endpoint's address is private, loopback or link-local")
		}
		return 0, "", fmt.Errorf("request failed: %s", transportReason(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))
	excerpt := excerptOf(body)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, excerpt, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, excerpt, fmt.Errorf("HTTP %d: redirects are not followed", resp.StatusCode)
	default:
		return resp.StatusCode, excerpt, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
}

// transportReason names a failure to get an answer without the request's
// details.
func transportReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "Client.Timeout"):
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "no such host"):
		return "the host name does not resolve"
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		return "TLS handshake failed"
	}
	return "the connection failed"
}

// excerptOf is at most maxWebhookExcerpt bytes of body, cut on a rune.
func excerptOf(body []byte) string {
	if len(body) > maxWebhookExcerpt {
		body = body[:maxWebhookExcerpt]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
	}
	return strings.ToValidUTF8(string(body), "")
}
