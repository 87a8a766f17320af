package app

import (
	"fmt"
	"net"
	"net/url"

	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

var _ service.MFAStore = (*sqlstore.Store)(nil)

// webauthnConfig returns the WebAuthn relying party id and origins:
// LATCH_WEBAUTHN_RP_ID and LATCH_WEBAUTHN_ORIGINS, defaulting from
// LATCH_PUBLIC_URL (its host and its origin). Browsers refuse an IP address
// as an RP id, so a loopback public URL (the development default) gets RP id
// localhost and both its own origin and the same origin on localhost.
func webauthnConfig(c Config) (string, []string, error) {
	rpID, origins := c.WebAuthnRPID, c.WebAuthnOrigins
	u, err := url.Parse(c.Recovery.PublicURL)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("LATCH_PUBLIC_URL=%q: not an absolute URL, needed for the WebAuthn defaults", c.Recovery.PublicURL)
	}
	host := u.Hostname()
	loopback := false
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	}
	if rpID == "" {
		rpID = host
		if loopback {
			rpID = "localhost"
		}
	}
	if len(origins) == 0 {
		origins = []string{u.Scheme + "://" + u.Host}
		if loopback {
			h := "localhost"
			if p := u.Port(); p != "" {
				h = net.JoinHostPort(h, p)
			}
			origins = append(origins, u.Scheme+"://"+h)
		}
	}
	return rpID, origins, nil
}

// newMFA returns the multi-factor authentication service.
func newMFA(c Config, sh service.Shared, st *sqlstore.Store) (*service.MFA, error) {
	rpID, origins, err := webauthnConfig(c)
	if err != nil {
		return nil, err
	}
	return service.NewMFA(service.MFAConfig{RPID: rpID, Origins: origins, MaxAge: c.MFAMaxAge, EnrollmentTTL: c.MFAEnrollmentTTL}, sh, st)
}
