package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/clockcache"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/ratelimit"
)

// Limiter takes tokens from rate-limit buckets: Burst tokens per key,
// refilled evenly over Per (a token bucket, or its equivalent GCRA). Allow
// takes a token when one is left, atomically in the limiter's store, and
// returns, when none is left, how long until one is; Refund gives one back
// (never more than Burst). An error means the limiter's store
// did not answer; the service then fails closed (CodeUnavailable) for every
// rule but refresh, which fails open.
//
// Implementations: MemoryLimiter (one process), the PostgreSQL store
// (sqlstore.Store.RateLimit) and the Redis limiter (internal/redislimit),
// chosen by LATCH_RATE_LIMIT_STORE.
type Limiter interface {
	Allow(ctx context.Context, name string, r ratelimit.Rule, key string) (bool, time.Duration, error)
	Refund(ctx context.Context, name string, r ratelimit.Rule, key string) error
}

// MemoryLimiter is a Limiter over an in-process *ratelimit.Limiter: limits
// hold per process, which is exact for one instance (and for SQLite, whose
// file one process owns).
type MemoryLimiter struct{ L *ratelimit.Limiter }

// Allow takes a token; it never fails.
func (m MemoryLimiter) Allow(_ context.Context, name string, r ratelimit.Rule, key string) (bool, time.Duration, error) {
	ok, wait := m.L.Allow(name, r, key)
	return ok, wait, nil
}

// Refund gives a token back; it never fails.
func (m MemoryLimiter) Refund(_ context.Context, name string, r ratelimit.Rule, key string) error {
	m.L.Refund(name, r, key)
	return nil
}

// RateLimits applies the rate limits (Config.Limits, when
// Config.RateLimits is on) and the mail quotas: allow before the work a
// rule guards, refund after an attempt that succeeded, mailQuota before a
// mail is queued. A refusal records a rate_limited event, at most one per
// rule, key and period.
type RateLimits struct {
	enabled bool
	rules   Limits
	limiter Limiter
	// local is this process's limiter, for the per-IP refresh limit: a
	// shared round trip on every refresh would cost more than the limit is
	// worth, so that one limit holds per instance (N instances allow N
	// times LATCH_RATE_REFRESH_IP).
	local   MemoryLimiter
	store   mailCounter
	events  *EventLog
	metrics Metrics
	clock   domain.Clock
	log     *slog.Logger

	// refusals bounds the rate_limited events (see recordRefusal).
	refusalsMu sync.Mutex
	refusals   *clockcache.Cache[string, *refusalWindow]
}

// mailCounter is what the mail quotas need of the store.
type mailCounter interface {
	CountMail(ctx context.Context, recipient string, orgID *uuid.UUID, since time.Time) (int, error)
}

// allow takes a token of the rule for key, atomically in the limiter's
// store, before the work it guards; when none is left it records a
// rate_limited event and returns CodeRateLimited with the wait.
func (l *RateLimits) allow(ctx context.Context, name string, key string, meta domain.RequestMeta, userID *uuid.UUID) error {
	if !l.enabled {
		return nil
	}
	r := l.rule(name)
	if r.Burst <= 0 {
		return nil
	}
	var lim Limiter = l.limiter
	if name == ruleRefreshIP {
		lim = l.local
	}
	ok, wait, err := lim.Allow(ctx, name, r, key)
	if err != nil {
		// The shared limiter is down: refuse rather than allow unlimited
		// guesses (refresh never gets here: its limit is local).
		l.metrics.RateLimit(name, "unavailable")
		l.log.Warn("rate limiter unavailable", "rule", name, "err", err)
		return &domain.Error{Code: domain.CodeUnavailable, Message: "the rate limiter is unavailable; try again shortly", RetryAfter: 2 * time.Second, Err: err}
	}
	if ok {
		l.metrics.RateLimit(name, "allowed")
		return nil
	}
	l.metrics.RateLimit(name, "refused")
	l.recordRefusal(ctx, name, r, key, meta, userID)
	return &domain.Error{Code: domain.CodeRateLimited, Message: "too many requests; try again later", RetryAfter: wait}
}

// refusalWindow is the state of one rule and key's refusals: the event
// written at its start covers every refusal until it ends.
type refusalWindow struct {
	until      time.Time
	suppressed int
}

// recordRefusal records a rate_limited event for the rule and key at most
// once per the rule's period, so that a flood of refused requests is not a
// flood of writes. The event's detail carries the rule and, as suppressed,
// how many refusals of the same rule and key since the previous event were
// not recorded.
func (l *RateLimits) recordRefusal(ctx context.Context, name string, r ratelimit.Rule, key string, meta domain.RequestMeta, userID *uuid.UUID) {
	now := l.clock.Now()
	k := name + "\x00" + key
	l.refusalsMu.Lock()
	w, ok := l.refusals.Get(k)
	if ok && now.Before(w.until) {
		w.suppressed++
		l.refusalsMu.Unlock()
		return
	}
	suppressed := 0
	if ok {
		suppressed = w.suppressed
	}
	l.refusals.Add(k, &refusalWindow{until: now.Add(r.Per)})
	l.refusalsMu.Unlock()
	l.events.record(ctx, domain.EventRateLimited, meta, userID, nil, nil, map[string]any{"rule": name, "suppressed": suppressed})
}

// allowIP is allow for a rule keyed by the client's address, as
// ratelimit.IPKey groups it: an IPv6 client by its /64.
func (l *RateLimits) allowIP(ctx context.Context, name string, meta domain.RequestMeta, userID *uuid.UUID) error {
	return l.allow(ctx, name, ratelimit.IPKey(meta.IP), meta, userID)
}

// refund gives back the token that allow took for an attempt that
// succeeded: the account rules (login-account, mfa-account) count failures,
// but take their token before the work so that concurrent guesses cannot
// all pass one look at the bucket. A refund that fails is logged; the
// attempt only cost a token.
func (l *RateLimits) refund(ctx context.Context, name string, key string) {
	if !l.enabled {
		return
	}
	r := l.rule(name)
	if r.Burst <= 0 {
		return
	}
	if err := l.limiter.Refund(context.WithoutCancel(ctx), name, r, key); err != nil {
		l.log.Warn("rate limiter unavailable: a token was not refunded", "rule", name, "err", err)
	}
}

func (l *RateLimits) rule(name string) (r ratelimit.Rule) {
	switch name {
	case ruleLoginAccount:
		return l.rules.LoginAccount
	case ruleLoginIP:
		return l.rules.LoginIP
	case ruleSignupIP:
		return l.rules.SignupIP
	case ruleRefreshIP:
		return l.rules.RefreshIP
	case ruleForgotEmail:
		return l.rules.ForgotEmail
	case ruleForgotIP:
		return l.rules.ForgotIP
	case ruleResetIP:
		return l.rules.ResetIP
	case ruleVerifyIP:
		return l.rules.VerifyIP
	case ruleResendUser:
		return l.rules.ResendUser
	case ruleDelegatedKey:
		return l.rules.DelegatedKey
	case ruleInviteOrg:
		return l.rules.InviteOrg
	case ruleInviteUser:
		return l.rules.InviteUser
	case ruleMFAAccount:
		return l.rules.MFAAccount
	case ruleMFAIP:
		return l.rules.MFAIP
	case ruleOTPEmail:
		return l.rules.OTPEmail
	case ruleOTPIP:
		return l.rules.OTPIP
	case ruleOTPVerifyIP:
		return l.rules.OTPVerifyIP
	}
	return r
}

// mailQuota returns how long to wait before another mail may go to the
// recipient (when not "") and, for a notification, for the organization
// (when orgID is not nil); 0 when it may go now. The quotas
// (Limits.MailRecipient, Limits.MailOrg) are counted in the outbox, so they
// hold across instances and whatever account caused the mails. Under
// concurrent requests a quota may be passed by the few that raced.
func (l *RateLimits) mailQuota(ctx context.Context, recipient string, orgID *uuid.UUID, now time.Time) (time.Duration, error) {
	if !l.enabled {
		return 0, nil
	}
	check := func(r ratelimit.Rule, recipient string, orgID *uuid.UUID) (time.Duration, error) {
		if r.Burst <= 0 {
			return 0, nil
		}
		n, err := l.store.CountMail(ctx, recipient, orgID, now.Add(-r.Per))
		if err != nil || n < r.Burst {
			return 0, err
		}
		// The oldest mail in the window leaves it within r.Per; a caller
		// is told the whole window, which is never too early.
		return r.Per, nil
	}
	if recipient != "" {
		if wait, err := check(l.rules.MailRecipient, recipient, nil); err != nil || wait > 0 {
			return wait, err
		}
	}
	if orgID != nil {
		return check(l.rules.MailOrg, "", orgID)
	}
	return 0, nil
}
