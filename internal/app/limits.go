package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/redislimit"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

// The rate-limit stores (LATCH_RATE_LIMIT_STORE).
const (
	LimitsMemory   = "memory"
	LimitsPostgres = "postgres"
	LimitsRedis    = "redis"
)

// limitStore returns the configured store of rate limits: memory (one
// process; the default on SQLite, whose file one process owns), postgres
// (the default on PostgreSQL, so that a second instance shares the limits
// at once) or redis (the default when LATCH_REDIS_URL is set).
func (c Config) limitStore() string {
	switch {
	case c.RateLimitStore != "":
		return c.RateLimitStore
	case c.RedisURL != "":
		return LimitsRedis
	case strings.HasPrefix(c.DatabaseURL, "postgres"):
		return LimitsPostgres
	}
	return LimitsMemory
}

func (c *Config) validateLimits(bad func(env, format string, args ...any)) {
	switch c.limitStore() {
	case LimitsMemory:
	case LimitsPostgres:
		if !strings.HasPrefix(c.DatabaseURL, "postgres") {
			bad("LATCH_RATE_LIMIT_STORE", "want memory or redis with this database: postgres needs a postgres:// LATCH_DATABASE_URL")
		}
	case LimitsRedis:
		if c.RedisURL == "" {
			bad("LATCH_REDIS_URL", "want a redis URL such as redis://127.0.0.1:6379/0 when LATCH_RATE_LIMIT_STORE is redis")
		}
	default:
		bad("LATCH_RATE_LIMIT_STORE", "want memory, postgres or redis")
	}
}

// newLimiter opens the configured rate-limit store; nil means the service's
// in-process one. The io.Closer releases what it opened (nil for none).
func newLimiter(ctx context.Context, c Config, st *sqlstore.Store, clock domain.Clock) (service.Limiter, io.Closer, error) {
	switch c.limitStore() {
	case LimitsPostgres:
		return st.RateLimiter(clock.Now), nil, nil
	case LimitsRedis:
		l, err := redislimit.Open(ctx, c.RedisURL, c.RedisPrefix)
		if err != nil {
			return nil, nil, fmt.Errorf("rate limits: %w", err)
		}
		return l, l, nil
	}
	return nil, nil, nil
}
