package service

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// Shared are the pieces that the feature services share, made once by New
// and passed by the wiring to each feature's constructor, which keeps only
// the pieces it uses: no feature holds the core *Service, and the core holds
// no feature. Each piece is safe for concurrent use.
type Shared struct {
	// Config is the service's configuration, with New's defaults applied.
	Config Config
	Clock  domain.Clock
	Log    *slog.Logger
	Hasher Hasher
	// Sealer seals secrets at rest under the master key.
	Sealer *token.Sealer
	// Tokens signs access tokens and verifies them through the
	// verified-token cache.
	Tokens *Tokens
	// Events records security events.
	Events *EventLog
	// Limits applies the rate limits and mail quotas.
	Limits *RateLimits
	// Sessions opens, revokes and caches sessions, and caches users.
	Sessions *Sessions
	// Keys authenticates API keys through their cache.
	Keys *KeyAuth
	// Mail queues mails and runs the background work requests start.
	Mail *Mail
	// SSO applies organizations' require_sso.
	SSO *SSORequirement
}

// Shared returns the pieces the feature services are made with.
func (s *Service) Shared() Shared { return s.shared }

// EventLog records security events. A failure to record is logged, never
// returned, so that auditing cannot break a login.
type EventLog struct {
	store eventRecorder
	clock domain.Clock
	log   *slog.Logger
}

// eventRecorder is what the EventLog needs of the store.
type eventRecorder interface {
	RecordEvent(ctx context.Context, e *domain.Event) error
}

// record records a security event of the type.
func (l *EventLog) record(ctx context.Context, typ string, meta domain.RequestMeta, userID, sessionID, keyID *uuid.UUID, detail map[string]any) {
	e := &domain.Event{ID: uuid.New(), Type: typ, UserID: userID, SessionID: sessionID, KeyID: keyID,
		IP: meta.IP, UserAgent: truncate(meta.UserAgent, 512), Detail: detail, CreatedAt: l.clock.Now()}
	if err := l.store.RecordEvent(context.WithoutCancel(ctx), e); err != nil {
		l.log.Error("record security event", "type", typ, "err", err)
	}
}

// changes tells the other instances what changed here and knows whether
// their changes arrive (degraded while they do not: then the caches keep
// nothing).
type changes struct {
	// notifier is nil for one instance.
	notifier Notifier
	clock    domain.Clock
	log      *slog.Logger
	degraded atomic.Bool
}

// publish tells the other instances about a change made here. A failure is
// logged: the caches' lifetimes still bound how long they trust stale
// entries.
func (c *changes) publish(topic, id string) {
	if c.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.notifier.Publish(ctx, topic, id, c.clock.Now()); err != nil {
		c.log.Warn("publish a change to the other instances", "topic", topic, "err", err)
	}
}

// Tokens signs access tokens with the loaded signing keys and verifies them
// through the verified-token cache (see verifyAccess).
type Tokens struct {
	issuer *token.Issuer
	// verified holds the claims of access tokens whose signature was
	// checked.
	verified *verifyCache
	clock    domain.Clock
}

// sign signs an access token with the claims.
func (t *Tokens) sign(c *token.Claims) (string, error) { return t.issuer.Sign(c) }

// keysChanged makes every token checked under the old key set be checked
// again; ReloadKeys calls it after loading a key set.
func (t *Tokens) keysChanged() { t.verified.invalidate() }
