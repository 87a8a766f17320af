package app

import (
	"flag"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// APIKeyConfig is the configuration of API keys, token exchange and
// operator lookups.
type APIKeyConfig struct {
	// ExchangeMaxTTL caps the lifetime of exchanged access tokens.
	ExchangeMaxTTL time.Duration
	// CacheTTL bounds how long an instance accepts a key revoked elsewhere.
	CacheTTL time.Duration
	// OperatorEmails may look users up by email with a users:read key.
	OperatorEmails []string
}

func defaultAPIKeys() APIKeyConfig {
	return APIKeyConfig{ExchangeMaxTTL: time.Hour, CacheTTL: service.DefaultKeyCacheTTL}
}

// flags registers the settings through ParseConfig's helpers.
func (c *APIKeyConfig) flags(dur func(p *time.Duration, name, env, usage string), value func(v flag.Value, name, env, usage string)) {
	dur(&c.ExchangeMaxTTL, "exchange-max-ttl", "LATCH_EXCHANGE_MAX_TTL", "longest lifetime of an access token exchanged from an API key")
	dur(&c.CacheTTL, "api-key-cache-ttl", "LATCH_API_KEY_CACHE_TTL", "how long an instance may accept an API key revoked on another instance")
	value(listFlag{&c.OperatorEmails}, "operator-emails", "LATCH_OPERATOR_EMAILS", "comma-separated emails of the operators whose users:read keys may look users up by email")
}

func (c *APIKeyConfig) validate(bad func(env, format string, args ...any)) {
	if c.ExchangeMaxTTL < 10*time.Second || c.ExchangeMaxTTL > 24*time.Hour {
		bad("LATCH_EXCHANGE_MAX_TTL", "must be between 10s and 24h")
	}
	if c.CacheTTL < 100*time.Millisecond || c.CacheTTL > 30*time.Second {
		bad("LATCH_API_KEY_CACHE_TTL", "must be between 100ms and 30s")
	}
	for i, e := range c.OperatorEmails {
		n, err := domain.NormalizeEmail(e)
		if err != nil {
			bad("LATCH_OPERATOR_EMAILS", "%q is not an email address", e)
			continue
		}
		c.OperatorEmails[i] = n
	}
}

func (c APIKeyConfig) serviceConfig() service.APIKeyConfig {
	return service.APIKeyConfig{CacheTTL: c.CacheTTL, ExchangeMaxTTL: c.ExchangeMaxTTL, OperatorEmails: c.OperatorEmails}
}
