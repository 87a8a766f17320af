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
)

// Client is the Latch SDK client. It is safe for concurrent use. Every
// operation of the generated API is reachable, typed, through API(), and is
// authenticated by the Client's transport; the methods of Client are
// shortcuts for the common flows that return the decoded body or an *Error.
type Client struct {
	base *url.URL
	auth *auth
	http *http.Client
	api  *ClientWithResponses
}

type settings struct {
	transport      http.RoundTripper
	timeout        time.Duration
	store          TokenStore
	mode           authMode
	apiKey         string
	scopes         []string
	refresh        RefreshPolicy
	retry          RetryPolicy
	now            func() time.Time
	refreshTimeout time.Duration
	userAgent      string
}

// An Option configures a Client.
type Option func(*settings) error

// WithTransport makes the Client send through rt (default: a clone of
// http.DefaultTransport that bounds the wait for response headers). The
// Client's authentication and retries are layered over it. (The generated
// WithHTTPClient is an option of NewClientWithResponses, not of New.)
func WithTransport(rt http.RoundTripper) Option {
	return func(s *settings) error {
		if rt == nil {
			return errors.New("latch: WithTransport(nil)")
		}
		s.transport = rt
		return nil
	}
}

// WithTimeout bounds each call, retries and a refresh included, like
// http.Client.Timeout. The default is none: use contexts.
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
// access tokens with the given scopes (all of the key's when none are
// given), sends those as bearer tokens, and exchanges again before they
// expire. The key itself goes only to /auth/token.
func WithAPIKeyExchange(key string, scopes ...string) Option {
	return func(s *settings) error {
		if strings.TrimSpace(key) == "" {
			return errors.New("latch: WithAPIKeyExchange: empty key")
		}
		s.mode, s.apiKey, s.scopes = modeExchange, key, append([]string(nil), scopes...)
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

// WithClock sets the clock that decides when tokens are due, for tests.
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

// defaultTransport is http.DefaultTransport's configuration with a bound on
// waiting for response headers.
func defaultTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = 60 * time.Second
		return t
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
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
// session of Login or Signup, kept in memory. Returns an error for a bad
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
	hc := &http.Client{Timeout: s.timeout}
	if s.userAgent != "" {
		base = userAgentTransport{ua: s.userAgent, next: base}
	}
	retry := &retryTransport{policy: s.retry, next: base}

	// The unauthenticated client refreshes and exchanges: going through the
	// authenticating transport would recurse.
	rawHTTP := &http.Client{Transport: retry, Timeout: hc.Timeout}
	raw, err := NewClientWithResponses(u.String(), WithHTTPClient(rawHTTP))
	if err != nil {
		return nil, err
	}
	a := &auth{
		mode:    s.mode,
		apiKey:  s.apiKey,
		scopes:  s.scopes,
		store:   s.store,
		raw:     raw,
		now:     s.now,
		policy:  s.refresh.withDefaults(),
		timeout: s.refreshTimeout,
	}
	hc.Transport = &authTransport{a: a, base: u, next: retry}
	api, err := NewClientWithResponses(u.String(), WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	return &Client{base: u, auth: a, http: hc, api: api}, nil
}

// API returns the generated, typed client. Its requests carry the Client's
// credentials, refreshed as needed.
func (c *Client) API() *ClientWithResponses { return c.api }

// HTTPClient returns the authenticated *http.Client, for requests that the
// generated client does not cover. It adds credentials only to requests for
// the Latch base URL.
func (c *Client) HTTPClient() *http.Client { return c.http }

// BaseURL returns the Latch base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Token returns the current access token, renewing it first when it is due.
// Returns ErrNotLoggedIn without a session, an error matching
// ErrSessionEnded when the session has ended, and an *Error when an
// exchange is refused. With WithAPIKey there is no token: it returns an
// error.
func (c *Client) Token(ctx context.Context) (*Tokens, error) {
	if c.auth.mode == modeAPIKey {
		return nil, errors.New("latch: a Client with WithAPIKey has no access token; use WithAPIKeyExchange")
	}
	t, err := c.auth.token(ctx)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, ErrNotLoggedIn
	}
	return t, nil
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
