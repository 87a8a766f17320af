package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// publicPaths are the operations with `security: []` in openapi.yaml: the
// Client sends them no credentials, and so never refreshes for them. A test
// keeps the list in step with the spec.
var publicPaths = map[string]bool{
	"/health":                true,
	"/health/ready":          true,
	"/.well-known/jwks.json": true,
	"/docs":                  true,
	"/openapi.yaml":          true,
	"/openapi.json":          true,
	"/auth/signup":           true,
	"/auth/login":            true,
	"/auth/refresh":          true,
	"/auth/password/forgot":  true,
	"/auth/password/reset":   true,
	"/auth/verify":           true,
	// Discovery and the pages that mailed links open.
	"/.well-known/openid-configuration":       true,
	"/.well-known/oauth-authorization-server": true,
	"/favicon.ico":       true,
	"/reset-password":    true,
	"/verify-email":      true,
	"/accept-invitation": true,
	// Passwordless sign-in.
	"/auth/passkey/challenge": true,
	"/auth/passkey/login":     true,
	// Email sign-in links and codes.
	"/auth/otp":        true,
	"/auth/otp/verify": true,
	// Provider sign-in's browser steps (isPublic matches the templates).
	"/auth/providers":                      true,
	"/auth/providers/{provider}/authorize": true,
	"/auth/providers/{provider}/callback":  true,
	// Enterprise SSO's start (its callback is a provider's).
	"/auth/sso": true,
}

// isPublic reports whether a request path is one of publicPaths, a
// provider's {provider} filled in.
func isPublic(p string) bool {
	if publicPaths[p] {
		return true
	}
	if rest, ok := strings.CutPrefix(p, "/auth/providers/"); ok {
		id, step, _ := strings.Cut(rest, "/")
		return id != "" && !strings.Contains(step, "/") && publicPaths["/auth/providers/{provider}/"+step]
	}
	return false
}

var (
	_ http.RoundTripper = (*authTransport)(nil)
	_ http.RoundTripper = (*retryTransport)(nil)
	_ http.RoundTripper = userAgentTransport{}
)

// exchangePath is authenticated by an API key only, never by a bearer token.
const exchangePath = "/auth/token"

// authTransport adds the Client's credentials to requests for the Latch
// base URL (never to other hosts), renews tokens before they expire, and on
// a 401 token_expired or invalid_token renews once and retries once. An
// authenticated operation without credentials to send (no session, an
// ended one, a renewal backing off) fails here, without a request.
type authTransport struct {
	a    *auth
	base *url.URL
	next http.RoundTripper
}

// relPath returns the path of req below the base URL, and false for a
// request to another origin.
func (t *authTransport) relPath(req *http.Request) (string, bool) {
	if req.URL.Scheme != t.base.Scheme || req.URL.Host != t.base.Host {
		return "", false
	}
	p := req.URL.Path
	prefix := strings.TrimSuffix(t.base.Path, "/")
	if prefix != "" {
		if !strings.HasPrefix(p, prefix+"/") {
			return "", false
		}
		p = strings.TrimPrefix(p, prefix)
	}
	return p, true
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p, ours := t.relPath(req)
	// The caller's own credentials win; public operations get none.
	if !ours || isPublic(p) || req.Header.Get("Authorization") != "" || req.Header.Get("X-API-Key") != "" {
		return t.next.RoundTrip(req)
	}
	if t.a.mode == modeAPIKey {
		r := req.Clone(req.Context())
		r.Header.Set("X-API-Key", t.a.apiKey)
		return t.next.RoundTrip(r)
	}
	if p == exchangePath {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	tok, err := t.a.token(ctx)
	if err != nil {
		closeBody(req)
		return nil, deadline(req, err)
	}
	res, err := t.next.RoundTrip(withBearer(req, tok.AccessToken, req.Body))
	if err != nil || res.StatusCode != http.StatusUnauthorized || !replayable(req) {
		return res, err
	}
	if code := peekCode(res); code != string(ErrTokenExpired) && code != string(ErrInvalidToken) {
		return res, nil
	}
	// Once: whatever the retried request answers is the answer.
	nt, err := t.a.renew(ctx, tok.AccessToken)
	if err != nil {
		res.Body.Close()
		return nil, deadline(req, err)
	}
	body := req.Body
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			res.Body.Close()
			return nil, err
		}
	}
	res.Body.Close()
	return t.next.RoundTrip(withBearer(req, nt.AccessToken, body))
}

// deadline makes a deadline that passed while req waited for a renewal
// a *NetworkError, like one that passes while it is sent.
func deadline(req *http.Request, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return networkError(req, err)
	}
	return err
}

// withBearer returns a copy of req with the access token and body.
func withBearer(req *http.Request, token string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// replayable reports whether req can be sent again: no body, or GetBody.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// peekCode returns the error code of an Error body and puts the body back.
func peekCode(res *http.Response) string {
	b, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	res.Body.Close()
	res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{err}))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	// Without a body, RFC 6750's header says as much.
	if strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		return string(ErrInvalidToken)
	}
	return ""
}

// errReader returns err (or io.EOF) once the peeked bytes are read.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}

// RetryPolicy says how the Client retries 429 and 503 answers. A request is
// retried when the server asks it to wait (429, any method: the server did
// not start the work) or is unavailable (503, idempotent methods only:
// GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or a request with an
// Idempotency-Key header). The wait is the larger of Retry-After and an
// exponential backoff with jitter, and never shorter than Retry-After. The
// Client gives up at once, returning the response, when the wait would
// exceed MaxDelay or outlast the request's context deadline, and stops
// waiting when the context ends.
//
// Refreshes and exchanges are not retried this way, as callers would wait
// on them: a failed one is remembered instead, and the next is not tried
// before its Retry-After, or else before an exponential backoff from
// BaseDelay up to MaxDelay, with jitter, even when MaxRetries is 0 (see
// RefreshBackoffError).
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt; 0
	// disables retries.
	MaxRetries int
	// BaseDelay is the backoff of the first retry, doubled for each next.
	BaseDelay time.Duration
	// MaxDelay caps the wait before one retry.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is the policy of a Client without WithRetryPolicy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 3, BaseDelay: 250 * time.Millisecond, MaxDelay: 30 * time.Second}
}

// backoff returns the wait after failure number n (0-based) in a row:
// BaseDelay doubled n times and capped at MaxDelay, half of it fixed and
// half drawn by jitter ("equal jitter", so that waits grow however the
// draws fall). When the server asked for retryAfter the wait is never
// shorter, and up to a tenth of it (at most a second) longer, so that
// clients told the same moment do not all come back at that moment.
// jitter returns a random duration in [0, max].
func (p RetryPolicy) backoff(n int, retryAfter time.Duration, jitter func(max time.Duration) time.Duration) time.Duration {
	b := p.BaseDelay << min(n, 20)
	if b <= 0 || b > p.MaxDelay {
		b = p.MaxDelay
	}
	d := b/2 + jitter(b/2)
	if retryAfter > 0 {
		d = max(d, retryAfter+jitter(min(retryAfter/10, time.Second)))
	}
	return d
}

// randomJitter is the jitter of a Client: uniform in [0, max].
func randomJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max + 1)
}

// retryTransport retries 429 and 503 responses according to its policy.
type retryTransport struct {
	policy RetryPolicy
	jitter func(max time.Duration) time.Duration
	now    func() time.Time // the Client's clock, for Retry-After dates
	next   http.RoundTripper
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func (t *retryTransport) retryable(req *http.Request, res *http.Response) bool {
	switch res.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return idempotent(req)
	}
	return false
}

// delay returns the wait before retry number attempt (0-based), and false
// when the server asks for more than MaxDelay.
func (t *retryTransport) delay(attempt int, res *http.Response) (time.Duration, bool) {
	ra, _ := parseRetryAfter(res.Header.Get("Retry-After"), t.now())
	if ra > t.policy.MaxDelay {
		return 0, false
	}
	return min(t.policy.backoff(attempt, ra, t.jitter), t.policy.MaxDelay), true
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	r := req
	for attempt := 0; ; attempt++ {
		res, err := t.next.RoundTrip(r)
		if err != nil || attempt >= t.policy.MaxRetries || !t.retryable(req, res) || !replayable(req) {
			return res, err
		}
		d, ok := t.delay(attempt, res)
		if !ok {
			return res, nil
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < d {
			return res, nil
		}
		// Let the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxErrorBody))
		res.Body.Close()
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, context.Cause(ctx)
		case <-timer.C:
		}
		r = req.Clone(ctx)
		if req.Body != nil && req.Body != http.NoBody {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}
