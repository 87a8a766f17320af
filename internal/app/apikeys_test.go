package app_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/app"
)

func TestAPIKeySettings(t *testing.T) {
	c, err := app.ParseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKeys.ExchangeMaxTTL != time.Hour || c.APIKeys.CacheTTL != 5*time.Second || len(c.APIKeys.OperatorEmails) != 0 {
		t.Fatalf("defaults: %+v", c.APIKeys)
	}
	env := map[string]string{
		"LATCH_EXCHANGE_MAX_TTL":  "2h",
		"LATCH_API_KEY_CACHE_TTL": "1s",
		"LATCH_OPERATOR_EMAILS":   " Ops@Example.com, root@example.com ,",
	}
	c, err = app.ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKeys.ExchangeMaxTTL != 2*time.Hour || c.APIKeys.CacheTTL != time.Second ||
		strings.Join(c.APIKeys.OperatorEmails, ",") != "ops@example.com,root@example.com" {
		t.Fatalf("from the environment: %+v", c.APIKeys)
	}
	for env, v := range map[string]string{
		"LATCH_EXCHANGE_MAX_TTL":  "48h",
		"LATCH_API_KEY_CACHE_TTL": "5m",
		"LATCH_OPERATOR_EMAILS":   "not an email",
	} {
		if _, err := app.ParseConfig(nil, func(k string) string {
			if k == env {
				return v
			}
			return ""
		}, io.Discard); err == nil || !strings.Contains(err.Error(), env) {
			t.Fatalf("%s=%s: %v", env, v, err)
		}
	}
}
