package app

import (
	"net"
	"strings"
)

// derivePublicURL makes LATCH_PUBLIC_URL the one source of the issuer and
// of every link: when it is unset it is derived from LATCH_ADDR
// (http://127.0.0.1:18080 for 127.0.0.1:18080; a wildcard host becomes
// 127.0.0.1), and PublicURLDerived makes latchd say so at start; when
// LATCH_ISSUER is unset the issuer is the public URL. Without this, tokens
// of a latchd on another port named an issuer that nobody serves.
func (c *Config) derivePublicURL() {
	if c.Recovery.PublicURL == "" {
		host, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			host, port = c.Addr, ""
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		u := "http://" + host
		if port != "" {
			u = "http://" + net.JoinHostPort(host, port)
		}
		c.Recovery.PublicURL, c.PublicURLDerived = u, true
	}
	if c.Issuer == "" {
		c.Issuer = strings.TrimRight(c.Recovery.PublicURL, "/")
	}
}
