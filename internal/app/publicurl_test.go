package app

import (
	"io"
	"testing"
)

// TestPublicURLIsTheIssuerAndDerivedFromAddr: LATCH_PUBLIC_URL is the one
// source of the issuer and the links, derived from LATCH_ADDR when unset.
func TestPublicURLIsTheIssuerAndDerivedFromAddr(t *testing.T) {
	cases := map[string]struct {
		env               map[string]string
		publicURL, issuer string
		derived           bool
	}{
		"default":      {nil, "http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		"another port": {map[string]string{"LATCH_ADDR": "127.0.0.1:18080"}, "http://127.0.0.1:18080", "http://127.0.0.1:18080", true},
		"wildcard":     {map[string]string{"LATCH_ADDR": ":9000"}, "http://127.0.0.1:9000", "http://127.0.0.1:9000", true},
		"public url":   {map[string]string{"LATCH_ADDR": ":9000", "LATCH_PUBLIC_URL": "https://auth.example.com/"}, "https://auth.example.com/", "https://auth.example.com", false},
		"issuer":       {map[string]string{"LATCH_PUBLIC_URL": "https://auth.example.com", "LATCH_ISSUER": "https://issuer.example.com"}, "https://auth.example.com", "https://issuer.example.com", false},
	}
	for name, c := range cases {
		cfg, err := ParseConfig(nil, func(k string) string { return c.env[k] }, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Recovery.PublicURL != c.publicURL || cfg.Issuer != c.issuer || cfg.PublicURLDerived != c.derived {
			t.Errorf("%s: public URL %q issuer %q derived %v", name, cfg.Recovery.PublicURL, cfg.Issuer, cfg.PublicURLDerived)
		}
		if got := cfg.Recovery.ResetLink(); got != trimSlash(c.publicURL)+"/reset-password#token={token}" {
			t.Errorf("%s: reset link %q", name, got)
		}
	}
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
