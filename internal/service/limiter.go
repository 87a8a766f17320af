package service

import (
	"context"
	"time"

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
