// Package redislimit is Latch's rate limiter on Redis
// (LATCH_RATE_LIMIT_STORE=redis): a GCRA in one Lua script per check
// (github.com/go-redis/redis_rate), so a limit holds across every instance
// that shares the Redis. Redis's own clock times the buckets.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/latchauth/latch/internal/ratelimit"
)

// Limiter is a rate limiter on Redis. It is safe for concurrent use.
type Limiter struct {
	rdb    *redis.Client
	lim    *redis_rate.Limiter
	prefix string
}

// Open connects to the Redis that url names (redis://[user:pass@]host:port/db
// or rediss:// for TLS) and checks that it answers. Keys are named
// prefix + rule + key.
func Open(ctx context.Context, url, prefix string) (*Limiter, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, time.Second, time.Second
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &Limiter{rdb: rdb, lim: redis_rate.NewLimiter(rdb), prefix: prefix}, nil
}

// Close closes the connections.
func (l *Limiter) Close() error { return l.rdb.Close() }

// Allow takes one token of the rule for key. Returns an error when Redis
// does not answer.
func (l *Limiter) Allow(ctx context.Context, name string, r ratelimit.Rule, key string) (bool, time.Duration, error) {
	return l.take(ctx, name, r, key, 1)
}

// Refund gives back one token (redis_rate's GCRA with a cost of -1: the
// arrival time moves one interval back, never before now).
func (l *Limiter) Refund(ctx context.Context, name string, r ratelimit.Rule, key string) error {
	_, _, err := l.take(ctx, name, r, key, -1)
	return err
}

func (l *Limiter) take(ctx context.Context, name string, r ratelimit.Rule, key string, n int) (bool, time.Duration, error) {
	if r.Burst <= 0 {
		return true, 0, nil
	}
	res, err := l.lim.AllowN(ctx, l.prefix+name+":"+key, redis_rate.Limit{Rate: r.Burst, Burst: r.Burst, Period: r.Per}, n)
	if err != nil {
		return false, 0, errors.Join(errors.New("redis rate limiter"), err)
	}
	if n < 0 || res.Allowed >= 1 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, time.Second), nil
}
