// Package webhook is the wire side of Latch's webhooks, after the Standard
// Webhooks specification (https://www.standardwebhooks.com): secrets,
// signatures, the URL rule and an outbound HTTP client that refuses
// private addresses. It knows nothing of storage.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the size of a secret's random key (the specification
// asks for 24 to 64).
const secretBytes = 32

// NewSecret returns a new signing secret: "whsec_" and the base64 of 32
// random bytes.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// key returns the HMAC key of a secret: its base64 part decoded.
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhook: malformed signing secret")
	}
	return k, nil
}

// Sign returns one signature of the message: "v1," and the base64 of
// HMAC-SHA256 over "id.timestamp.body" under the secret's key.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	fmt.Fprintf(m, "%s.%d.", id, timestamp.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// Headers returns the Standard Webhooks headers of a message signed with
// every secret given (the current one and, during a rotation's overlap,
// the previous one): webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature (the signatures separated by spaces).
func Headers(secrets []string, id string, timestamp time.Time, body []byte) (http.Header, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, timestamp, body)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, sig)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(timestamp.Unix(), 10))
	h.Set("webhook-signature", strings.Join(sigs, " "))
	h.Set("Content-Type", "application/json")
	return h, nil
}

// Verify checks a message's headers against the secret as a receiver
// would: one of the signatures must match (compared in constant time) and
// the timestamp must be within tolerance of now.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return errors.New("webhook: bad timestamp")
	}
	at := time.Unix(sec, 0)
	if now.Sub(at) > tolerance || at.Sub(now) > tolerance {
		return errors.New("webhook: timestamp out of tolerance")
	}
	want, err := Sign(secret, h.Get("webhook-id"), at, body)
	if err != nil {
		return err
	}
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook: no matching signature")
}

// ErrPrivateAddress is why a request to, or a URL naming, an address that
// is not public was refused.
var ErrPrivateAddress = errors.New("webhook: the address is private, loopback, link-local or otherwise not public")

// cgnat is the carrier-grade NAT range (RFC 6598).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether a is a public unicast address: not private,
// loopback, link-local, unspecified, multicast or CGNAT.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() &&
		!a.IsInterfaceLocalMulticast() && !a.IsMulticast() && !a.IsUnspecified() && !cgnat.Contains(a)
}

// ValidateURL checks an endpoint URL: absolute http(s) with a host and no
// user info; https unless allowPrivate; and, when the host is an IP
// literal, a public one unless allowPrivate. (A name is checked after
// resolution, at each delivery, by the client's dialer.)
func ValidateURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errors.New("the URL must be absolute, with a host")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return errors.New("the URL must use https")
	}
	if u.User != nil {
		return errors.New("the URL must not carry user info")
	}
	if u.Fragment != "" {
		return errors.New("the URL must not carry a fragment")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !Public(a) {
		return ErrPrivateAddress
	}
	return nil
}

// ClientConfig tunes NewClient.
type ClientConfig struct {
	// Timeout bounds a whole request, body included (default 10s).
	Timeout time.Duration
	// AllowPrivate lets requests reach private and loopback addresses
	// (tests, and deployments whose receivers are internal).
	AllowPrivate bool
}

// NewClient returns the HTTP client that delivers webhooks: it never
// follows a redirect (the 3xx is the answer, a failure), bounds each
// request by the timeout, and unless AllowPrivate its dialer refuses, after
// DNS resolution, any address that is not Public, so a name that resolves
// to 127.0.0.1 or 169.254.169.254 is refused just as the literal is.
// Proxies from the environment are not used: they would dial for us.
func NewClient(cfg ClientConfig) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil || !Public(a) {
				return ErrPrivateAddress
			}
			return nil
		}
	}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &http.Client{
		Transport:     t,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
