package sqlstore

import (
	"context"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/ratelimit"
)

// RateLimiter is the PostgreSQL rate limiter (LATCH_RATE_LIMIT_STORE=
// postgres): a GCRA whose state is one row per rule and key, changed by one
// atomic upsert per check, so a limit holds across every instance on the
// database. Its clock is the caller's (the service's injected clock).
type RateLimiter struct {
	s   *Store
	now func() time.Time
}

// RateLimiter returns the store's shared rate limiter; now is the clock.
func (s *Store) RateLimiter(now func() time.Time) *RateLimiter {
	return &RateLimiter{s: s, now: now}
}

// Allow takes one token of the rule for key: the key's theoretical arrival
// time moves one emission interval (Per/Burst) past max(itself, now), unless
// that would put it more than Per ahead of now, which is a refusal with the
// wait until a token frees. Returns CodeUnavailable when the database does
// not answer.
func (l *RateLimiter) Allow(ctx context.Context, name string, r ratelimit.Rule, key string) (bool, time.Duration, error) {
	return l.take(ctx, name, r, key, 1)
}

// Refund gives back one token: the arrival time moves one emission
// interval back, never before now (a full bucket).
func (l *RateLimiter) Refund(ctx context.Context, name string, r ratelimit.Rule, key string) error {
	_, _, err := l.take(ctx, name, r, key, -1)
	return err
}

func (l *RateLimiter) take(ctx context.Context, name string, r ratelimit.Rule, key string, cost int) (bool, time.Duration, error) {
	if r.Burst <= 0 {
		return true, 0, nil
	}
	now := l.now().UTC().Truncate(time.Microsecond)
	interval := r.Per / time.Duration(r.Burst)
	inc := interval * time.Duration(cost)
	k := name + ":" + key // rule names hold no colon; text holds no NUL
	var tat ts
	// The new arrival time is max(tat, now) + inc; it is stored only when it
	// stays within the burst (now + Per). The conditional upsert is one
	// statement, so concurrent checks on any instance serialise on the row.
	err := l.s.get(ctx, &tat, `INSERT INTO rate_limits (key, tat) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET tat = GREATEST(rate_limits.tat, EXCLUDED.tat - ?::bigint * INTERVAL '1 microsecond') + ?::bigint * INTERVAL '1 microsecond'
		WHERE GREATEST(rate_limits.tat, EXCLUDED.tat - ?::bigint * INTERVAL '1 microsecond') + ?::bigint * INTERVAL '1 microsecond' <= ?
		RETURNING tat`,
		k, ts(now.Add(inc)), inc.Microseconds(), inc.Microseconds(), inc.Microseconds(), inc.Microseconds(), ts(now.Add(r.Per)))
	if err == nil {
		return true, 0, nil
	}
	if err = translate(err); !domain.IsCode(err, domain.CodeNotFound) {
		return false, 0, err
	}
	// Refused: read the arrival time to tell the wait.
	if err := l.s.get(ctx, &tat, `SELECT tat FROM rate_limits WHERE key = ?`, k); err != nil {
		return false, 0, translate(err)
	}
	wait := time.Time(tat).Add(interval).Sub(now.Add(r.Per))
	return false, max(wait, time.Second), nil
}
