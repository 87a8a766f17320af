package app

import (
	"flag"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// apiKeyFlags registers the settings of API keys, token exchange and
// operator lookups through ParseConfig's helpers. Their type and defaults
// are the service's (service.APIKeyConfig, service.DefaultAPIKeyConfig).
func apiKeyFlags(c *service.APIKeyConfig, dur func(p *time.Duration, name, env, usage string), value func(v flag.Value, name, env, usage string)) {
	dur(&c.ExchangeMaxTTL, "exchange-max-ttl", "LATCH_EXCHANGE_MAX_TTL", "longest lifetime of an access token exchanged from an API key")
	dur(&c.CacheTTL, "api-key-cache-ttl", "LATCH_API_KEY_CACHE_TTL", "how long an instance may accept an API key revoked on another instance")
	value(listFlag{&c.OperatorEmails}, "operator-emails", "LATCH_OPERATOR_EMAILS", "comma-separated emails of the operators whose users:read keys may look users up by email")
}

// validateAPIKeys checks c and normalises its operators' emails.
func validateAPIKeys(c *service.APIKeyConfig, bad func(env, format string, args ...any)) {
	if c.ExchangeMaxTTL < 10*time.Second || c.ExchangeMaxTTL > 24*time.Hour {
		bad("LATCH_EXCHANGE_MAX_TTL", "want a duration between 10s and 24h such as 1h")
	}
	if c.CacheTTL < 100*time.Millisecond || c.CacheTTL > 30*time.Second {
		bad("LATCH_API_KEY_CACHE_TTL", "want a duration between 100ms and 30s such as 5s")
	}
	for i, e := range c.OperatorEmails {
		n, err := domain.NormalizeEmail(e)
		if err != nil {
			bad("LATCH_OPERATOR_EMAILS", "%q is not an email address; want comma-separated addresses such as ops@example.com,root@example.com", e)
			continue
		}
		c.OperatorEmails[i] = n
	}
}
