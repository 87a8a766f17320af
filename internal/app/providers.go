package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

// loadProviders parses LATCH_PROVIDERS or the file LATCH_PROVIDERS_FILE
// names into c.Providers and checks each provider and the redirect
// allow-list. The errors name the provider, never a secret.
func (c *Config) loadProviders() error {
	raw := []byte(c.ProvidersJSON)
	switch {
	case c.ProvidersJSON != "" && c.ProvidersFile != "":
		return errors.New("LATCH_PROVIDERS and LATCH_PROVIDERS_FILE: set one, not both")
	case c.ProvidersFile != "":
		b, err := os.ReadFile(c.ProvidersFile)
		if err != nil {
			return fmt.Errorf("LATCH_PROVIDERS_FILE=%q: %v", c.ProvidersFile, err)
		}
		raw = b
	}
	c.Providers = nil
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Providers); err != nil {
			return fmt.Errorf("LATCH_PROVIDERS: want a JSON array of providers such as "+
				`[{"id":"google","kind":"google","client_id":"...","client_secret":"..."}]: %v`, redactJSONErr(err))
		}
	}
	if err := service.CheckProviders(c.Providers); err != nil {
		return fmt.Errorf("LATCH_PROVIDERS: %w", err)
	}
	for _, u := range c.RedirectURLs {
		if err := service.CheckRedirectURL(u); err != nil {
			return fmt.Errorf("LATCH_REDIRECT_URLS: %q: %w", u, err)
		}
	}
	if len(c.Providers) > 0 && len(c.RedirectURLs) == 0 {
		return errors.New("LATCH_REDIRECT_URLS: providers are configured, so list the URLs their sign-ins may return to, such as https://app.example.com/auth/callback")
	}
	return nil
}

// redactJSONErr keeps a decoding error's position and kind, never the
// value it quotes (which may be a secret).
func redactJSONErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field") {
		return msg
	}
	return "invalid JSON"
}

// newFederation makes the provider sign-in feature, also without
// configured providers: organizations' SSO connections run through it.
func newFederation(c Config, sh service.Shared, st *sqlstore.Store) (*service.Federation, error) {
	return service.NewFederation(sh, st, service.FederationConfig{Providers: c.Providers, RedirectURLs: c.RedirectURLs,
		PublicURL: c.Recovery.PublicURL, SSOAllowPrivate: c.SSOAllowPrivate})
}

// newResolver returns the resolver of domain verification's TXT lookups:
// the system's, or, with LATCH_DNS_RESOLVER, Go's resolver asking that
// server only.
func newResolver(c Config) domain.TXTResolver {
	if c.DNSResolver == "" {
		return net.DefaultResolver
	}
	addr := c.DNSResolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}
