package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchauth/latch/client/latchapi"
)

// Client is the Latch SDK client. It is safe for concurrent use. Every
// operation of the generated API is reachable, typed, through API(), and is
// authenticated by the Client's transport; the methods of Client are
// shortcuts for the common flows that return the decoded body or an *Error.
type Client struct {
	base  *url.URL
	auth  *auth
	http  *http.Client
	api   *latchapi.ClientWithResponses
	mfa   *MFA
	admin *Admin
}

type settings struct {
	transport      http.RoundTripper
	timeout        time.Duration
	store          TokenStore
	mode           authMode
	apiKey         string
	exchange       ExchangeRequest
	onEnd          func(SessionEndReason)
	jitter         func(max time.Duration) time.Duration
	refresh        RefreshPolicy
	retry          RetryPolicy
	now            func() time.Time
	refreshTimeout time.Duration
	userAgent      string
}

// An Option configures a Client.
type Option func(*settings) error

// WithTransport makes the Client send through rt. The Client's
// authentication, retries and timeouts are layered over it.
//
// The default is a clone of http.DefaultTransport that keeps up to
// DefaultMaxIdleConnsPerHost idle connections to Latch, instead of
// net/http's 2, so that a service calling from many goroutines reuses its
// connections rather than opening one for most requests, and that bounds
// the wait for response headers to a minute. A transport given here is
// used as it is: size its MaxIdleConnsPerHost likewise.
func WithTransport(rt http.RoundTripper) Option {
	return func(s *settings) error {
		if rt == nil {
			return errors.New("latch: WithTransport(nil)")
		}
		s.transport = rt
		return nil
	}
}

// WithTimeout bounds each call, retries and a refresh included, until its
// response is read, like http.Client.Timeout; a call that outlasts it
// fails with a *NetworkError whose Timeout is true. The default is none
// (only the transport's wait of a minute for response headers, see
// WithTransport): use contexts, whose deadlines end a call the same way.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return errors.New("latch: WithTimeout: negative")
		}
		s.timeout = d
		return nil
	}
}

// WithTokenStore keeps the session's tokens in store instead of memory. The
// Client loads them from there on first use, so a FileStore lets a program
// keep its session across runs.
func WithTokenStore(store TokenStore) Option {
	return func(s *settings) error {
		if store == nil {
			return errors.New("latch: WithTokenStore(nil)")
		}
		s.store = store
		return nil
	}
}

// WithAPIKey authenticates every request with the API key in X-API-Key.
func WithAPIKey(key string) Option {
	return func(s *settings) error {
		if strings.TrimSpace(key) == "" {
			return errors.New("latch: WithAPIKey: empty key")
		}
		s.mode, s.apiKey = modeAPIKey, key
		return nil
	}
}

// WithAPIKeyExchange exchanges the API key at /auth/token for short-lived
// access tokens, sends those as bearer tokens, and exchanges again before
// they expire. req is the exchange asked for each time: its Scopes (all of
// the key's when nil), Audience (Latch's own when nil) and ExpiresIn in
// seconds (Latch's default when nil); the zero ExchangeRequest takes every
// default. The key itself goes only to /auth/token. A token for another
// Audience is for resource servers (Token, TokenSource): Latch does not
// accept it back, so calls to Latch through this Client then fail with
// invalid_token.
//
// An exchange that fails does not throw the current token away: calls go
// ahead with it until it expires, and the exchange is tried again after a
// backoff (see RefreshBackoffError).
func WithAPIKeyExchange(key string, req ExchangeRequest) Option {
	return func(s *settings) error {
		if strings.TrimSpace(key) == "" {
			return errors.New("latch: WithAPIKeyExchange: empty key")
		}
		if req.ExpiresIn != nil && *req.ExpiresIn <= 0 {
			return errors.New("latch: WithAPIKeyExchange: ExpiresIn not positive")
		}
		s.mode, s.apiKey, s.exchange = modeExchange, key, cloneExchangeRequest(req)
		return nil
	}
}

// cloneExchangeRequest copies req, so that the caller may change its own.
func cloneExchangeRequest(req ExchangeRequest) ExchangeRequest {
	c := ExchangeRequest{}
	if req.Scopes != nil {
		s := append([]Scope(nil), *req.Scopes...)
		c.Scopes = &s
	}
	if req.Audience != nil {
		a := *req.Audience
		c.Audience = &a
	}
	if req.ExpiresIn != nil {
		e := *req.ExpiresIn
		c.ExpiresIn = &e
	}
	return c
}

// WithOnSessionEnd makes the Client call f once when the session ends,
// with the reason: this Client's Logout (SessionEndLogout), Latch refusing
// the refresh (SessionEndInvalidGrant), or another process sharing the
// token store logging out (SessionEndRevokedElsewhere). f runs on the
// goroutine of the first call that reports the end (the others get
// ErrSessionEnded without waiting for f), before that call returns, with no
// lock held: it may call the Client, to log in again for example. An end
// found by a renewal in the background is reported by the next call that
// needs the session. A new session (SignIn, SignUp, SetTokens) may end, and
// be told, once more.
func WithOnSessionEnd(f func(reason SessionEndReason)) Option {
	return func(s *settings) error {
		if f == nil {
			return errors.New("latch: WithOnSessionEnd(nil)")
		}
		s.onEnd = f
		return nil
	}
}

// WithRefreshPolicy sets when tokens are renewed before they expire; zero
// fields take the defaults of DefaultRefreshPolicy.
func WithRefreshPolicy(p RefreshPolicy) Option {
	return func(s *settings) error {
		s.refresh = p
		return nil
	}
}

// WithRetryPolicy sets how 429 and 503 answers are retried. Use
// RetryPolicy{} to turn retries off.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(s *settings) error {
		if p.MaxRetries < 0 {
			return errors.New("latch: WithRetryPolicy: negative MaxRetries")
		}
		d := DefaultRetryPolicy()
		if p.BaseDelay <= 0 {
			p.BaseDelay = d.BaseDelay
		}
		if p.MaxDelay <= 0 {
			p.MaxDelay = d.MaxDelay
		}
		s.retry = p
		return nil
	}
}

// WithClock sets the clock that decides when tokens are due and when a
// renewal's backoff ends, for tests.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return errors.New("latch: WithClock(nil)")
		}
		s.now = now
		return nil
	}
}

// WithRefreshTimeout bounds one refresh or exchange (default 15 seconds).
// It runs detached from the cancellation of the request that needed it.
func WithRefreshTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return errors.New("latch: WithRefreshTimeout: not positive")
		}
		s.refreshTimeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent of requests that have none.
func WithUserAgent(ua string) Option {
	return func(s *settings) error {
		s.userAgent = ua
		return nil
	}
}

// DefaultMaxIdleConnsPerHost is how many idle connections to Latch the
// default transport keeps (see WithTransport): enough for a service that
// calls Latch from dozens of goroutines at once.
const DefaultMaxIdleConnsPerHost = 64

// defaultTransport is http.DefaultTransport's configuration with idle
// connections sized for a service and a bound on waiting for response
// headers.
func defaultTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, 2*DefaultMaxIdleConnsPerHost)
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}

// userAgentTransport sets a User-Agent on requests without one.
type userAgentTransport struct {
	ua   string
	next http.RoundTripper
}

func (t userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") != "" {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("User-Agent", t.ua)
	return t.next.RoundTrip(r)
}

// New returns a Client for the Latch at baseURL (such as
// "https://auth.example.com"). Without options it authenticates with the
// session of SignIn or SignUp, kept in memory. Returns an error for a bad
// URL or option.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("latch: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("latch: base URL %q: want http(s)://host[/path]", baseURL)
	}
	s := settings{
		store:          &MemoryStore{},
		retry:          DefaultRetryPolicy(),
		jitter:         randomJitter,
		now:            time.Now,
		refreshTimeout: 15 * time.Second,
		userAgent:      "latch-go",
	}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	base := s.transport
	if base == nil {
		base = defaultTransport()
	}
	base = netTransport{next: base}
	if s.userAgent != "" {
		base = userAgentTransport{ua: s.userAgent, next: base}
	}
	// bound adds WithTimeout's bound over everything else.
	bound := func(rt http.RoundTripper) http.RoundTripper {
		if s.timeout > 0 {
			return timeoutTransport{d: s.timeout, next: rt}
		}
		return rt
	}

	// The unauthenticated client refreshes and exchanges: going through the
	// authenticating transport would recurse. It does not retry: callers
	// may be waiting for it, so a failed renewal backs off instead.
	raw, err := latchapi.NewClientWithResponses(u.String(), latchapi.WithHTTPClient(&http.Client{Transport: bound(base)}))
	if err != nil {
		return nil, err
	}
	a := &auth{
		mode:     s.mode,
		apiKey:   s.apiKey,
		exchReq:  s.exchange,
		store:    s.store,
		raw:      raw,
		now:      s.now,
		policy:   s.refresh.withDefaults(),
		backoffs: s.retry,
		jitter:   s.jitter,
		timeout:  s.refreshTimeout,
		onEnd:    s.onEnd,
	}
	retry := &retryTransport{policy: s.retry, jitter: s.jitter, now: s.now, next: base}
	hc := &http.Client{Transport: bound(&authTransport{a: a, base: u, next: retry})}
	api, err := latchapi.NewClientWithResponses(u.String(), latchapi.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	c := &Client{base: u, auth: a, http: hc, api: api}
	c.mfa = &MFA{c: c}
	c.admin = &Admin{c: c}
	return c, nil
}

// API returns the generated, typed client of every operation of
// openapi.yaml (package latchapi). Its requests carry the Client's
// credentials, refreshed as needed, and its failures to get an answer are
// *NetworkError values wrapped in *url.Error; ResponseError reads its
// non-2xx answers.
func (c *Client) API() *latchapi.ClientWithResponses { return c.api }

// HTTPClient returns the authenticated *http.Client, for requests that the
// generated client does not cover. It adds credentials only to requests for
// the Latch base URL.
func (c *Client) HTTPClient() *http.Client { return c.http }

// BaseURL returns the Latch base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Token returns the current access token: a valid one at once (renewed in
// the background when due), an expired one after renewing it. Returns
// ErrNotLoggedIn without a session, an error matching ErrSessionEnded when
// the session has ended, a *RefreshBackoffError (ErrRefreshBackoff) when
// the token has expired and an earlier renewal failed moments ago, and an
// error wrapping Latch's *Error when a refresh or exchange is refused. With
// WithAPIKey there is no token: it returns an error.
func (c *Client) Token(ctx context.Context) (*Tokens, error) {
	if c.auth.mode == modeAPIKey {
		return nil, errors.New("latch: a Client with WithAPIKey has no access token; use WithAPIKeyExchange")
	}
	return c.auth.token(ctx)
}

// SetTokens makes t the Client's session, saving it to the token store: for
// example the tokens of a delegated session opened by another service.
func (c *Client) SetTokens(ctx context.Context, t *Tokens) error {
	if t == nil || t.AccessToken == "" {
		return errors.New("latch: SetTokens: no access token")
	}
	return c.auth.save(ctx, t)
}

// TokensFrom converts a TokenResponse (from login, signup, refresh or a
// delegated session) into Tokens, timed by the local clock.
func (c *Client) TokensFrom(r *TokenResponse) *Tokens { return c.auth.fromTokenResponse(r) }
