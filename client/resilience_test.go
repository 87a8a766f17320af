package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// These tests hold the Client to what it sends when the session ends or
// Latch pushes back. They count requests, never milliseconds.

// counter is an http.RoundTripper that counts the requests sent through it
// by "METHOD /path", answered or not (a refused connection counts too).
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func newCounter(next http.RoundTripper) *counter {
	return &counter{next: next, n: map[string]int{}}
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// countingClient returns a Client for l whose requests are counted (and
// validated against openapi.yaml).
func (l *latch) countingClient(t *testing.T, opts ...client.Option) (*client.Client, *counter) {
	t.Helper()
	rt := newCounter(testutil.NewValidatingTransport(t, http.DefaultTransport))
	return l.newClient(t, append([]client.Option{client.WithTransport(rt)}, opts...)...), rt
}

// reasons records the reasons given to a WithOnSessionEnd function.
type reasons struct {
	mu   sync.Mutex
	list []client.SessionEndReason
}

func (r *reasons) hook(reason client.SessionEndReason) {
	r.mu.Lock()
	r.list = append(r.list, reason)
	r.mu.Unlock()
}

func (r *reasons) get() []client.SessionEndReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.SessionEndReason(nil), r.list...)
}

// hammer runs f from n goroutines, each calling it times times, and fails
// the test when they have not all returned within a generous bound: a
// caller stuck behind something it should not wait for.
func hammer(t *testing.T, n, times int, f func() error) []error {
	t.Helper()
	errs := make([]error, n*times)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := range times {
				errs[g*times+i] = f()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("callers are blocked")
	}
	return errs
}

func TestSessionEndStopsRequests(t *testing.T) {
	const callers, after = 16, 50
	ctx := context.Background()
	l := start(t)
	var ended reasons
	store := &client.MemoryStore{}
	c, rt := l.countingClient(t, client.WithOnSessionEnd(ended.hook), client.WithTokenStore(store))
	addr := email()
	tr, err := c.SignUp(ctx, addr, password)
	if err != nil {
		t.Fatal(err)
	}

	// Every goroutine calls Me until it has seen the session end, then
	// after more times.
	var warm sync.WaitGroup
	warm.Add(callers)
	var wg sync.WaitGroup
	endedCalls, otherErrs := make([]int, callers), make([]error, callers)
	for g := range callers {
		wg.Go(func() {
			warmed := false
			for endedCalls[g] < after {
				_, err := c.Me(ctx)
				switch {
				case err == nil:
				case errors.Is(err, client.ErrSessionEnded) && errors.Is(err, client.ErrNotLoggedIn):
					endedCalls[g]++
				default:
					otherErrs[g] = err
					endedCalls[g] = after
				}
				if !warmed {
					warmed = true
					warm.Done()
				}
			}
		})
	}
	warm.Wait() // all 16 are calling
	global := client.LogoutGlobal
	if res, err := l.Client.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &global}, testutil.Bearer(tr.AccessToken)); err != nil || res.StatusCode() != 204 {
		t.Fatalf("revoke the session elsewhere: %v", err)
	}
	me := rt.count("GET /auth/me")
	wg.Wait()
	for _, err := range otherErrs {
		if err != nil {
			t.Fatalf("a call failed otherwise: %v", err)
		}
	}

	// One wave: at most one request per goroutine after the revocation
	// (the 401 that revealed it), one refresh (refused; the token was never
	// due), then nothing.
	if n := rt.count("GET /auth/me") - me; n > callers {
		t.Fatalf("%d requests after the revocation for %d goroutines and %d calls: later calls were sent", n, callers, callers*after)
	}
	if n := l.countStatus("GET /auth/me 401"); n > callers {
		t.Fatalf("%d requests answered 401 for %d goroutines", n, callers)
	}
	if n := rt.count("POST /auth/refresh"); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if got := ended.get(); len(got) != 1 || got[0] != client.SessionEndInvalidGrant {
		t.Fatalf("WithOnSessionEnd got %v, want [invalid_grant] once", got)
	}
	if tok, _ := store.Load(ctx); tok != nil {
		t.Fatal("the store still holds the ended session")
	}
	sent := rt.total()
	if _, err := c.Token(ctx); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Token: %v", err)
	}
	if _, err := c.Refresh(ctx); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := c.API().GetSessionWithResponse(ctx, client.SessionId{}); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("a generated operation: %v", err)
	}
	if n := rt.total() - sent; n != 0 {
		t.Fatalf("%d requests after the end", n)
	}

	// A new session works, and may end (and be told) once more.
	if _, err := c.SignIn(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("after logging in again: %v", err)
	}
	if err := c.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatalf("logout once more: %v", err)
	}
	if got := ended.get(); len(got) != 2 || got[1] != client.SessionEndLogout {
		t.Fatalf("WithOnSessionEnd got %v, want [invalid_grant logout]", got)
	}
}

func TestNoSessionSendsNothing(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	var ended reasons
	c, rt := l.countingClient(t, client.WithOnSessionEnd(ended.hook))
	_, err := c.Me(ctx)
	if !errors.Is(err, client.ErrNotLoggedIn) || errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Me without a session: %v, want ErrNotLoggedIn only", err)
	}
	if err := c.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatalf("Logout without a session: %v", err)
	}
	if n := rt.total(); n != 0 {
		t.Fatalf("%d requests without a session", n)
	}
	if got := ended.get(); len(got) != 0 {
		t.Fatalf("WithOnSessionEnd got %v without a session", got)
	}
	// A public operation goes out as ever.
	if _, err := c.API().GetHealthWithResponse(ctx); err != nil || rt.count("GET /health") != 1 {
		t.Fatalf("health: %v", err)
	}
}

// TestSharedStore: two Clients sharing one store stand for two processes
// sharing a FileStore.
func TestSharedStore(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	store := &client.MemoryStore{}
	var endedA, endedB reasons
	a, rtA := l.countingClient(t, client.WithTokenStore(store), client.WithOnSessionEnd(endedA.hook))
	b := l.newClient(t, client.WithTokenStore(store), client.WithOnSessionEnd(endedB.hook))
	addr := email()
	if _, err := a.SignUp(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Me(ctx); err != nil {
		t.Fatalf("b does not share a's session: %v", err)
	}
	if err := b.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatal(err)
	}
	// a's next call is refused (401), and a finds the store empty: ended
	// elsewhere, without a refresh.
	if _, err := a.Me(ctx); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("a after b logged out: %v", err)
	}
	if n := rtA.count("POST /auth/refresh"); n != 0 {
		t.Fatalf("a sent %d refreshes", n)
	}
	if a, b := endedA.get(), endedB.get(); len(a) != 1 || a[0] != client.SessionEndRevokedElsewhere || len(b) != 1 || b[0] != client.SessionEndLogout {
		t.Fatalf("ends told: a %v, b %v", a, b)
	}
	// b logs in again: a finds the new session in the store.
	if _, err := b.SignIn(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Me(ctx); err != nil {
		t.Fatalf("a after b logged in again: %v", err)
	}
}

func TestRefreshRateLimited(t *testing.T) {
	const callers, times = 16, 20
	ctx := context.Background()
	l := start(t, func(c *app.Config) {
		c.RateLimits = true
		c.Limits.RefreshIP = ratelimit.Rule{Burst: 2, Per: time.Minute} // LATCH_RATE_REFRESH_IP=2/1m
	})
	// A refresh timeout longer than the test: a caller that waited for the
	// held refresh would still be waiting when hammer gives up.
	c, rt := l.countingClient(t, client.WithRefreshTimeout(10*time.Minute))
	signup(t, c)
	other := l.newClient(t)
	signup(t, other)

	// Ten seconds before c's token expires: due, still valid. The other
	// session spends the two refreshes of the minute; the server's clock
	// stands still, so the bucket stays empty until the test moves it.
	l.Clock.Advance(accessTTL - 10*time.Second)
	for range 2 {
		if _, err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Refresh(ctx); !errors.Is(err, client.ErrRateLimited) || !errors.Is(err, client.ErrRefreshBackoff) {
		t.Fatalf("third refresh of the minute: %v, want rate_limited", err)
	}

	// c's background refresh is held at the server: every call goes ahead
	// with the valid token meanwhile (hammer fails if any waits).
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	hold := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/auth/refresh" {
			<-release
		}
		return false
	}
	l.intercept.Store(&hold)
	for _, err := range hammer(t, callers, times, func() error { _, err := c.Me(ctx); return err }) {
		if err != nil {
			t.Fatalf("a call with a valid token failed: %v", err)
		}
	}
	releaseOnce.Do(func() { close(release) })
	client.WaitForRefresh(c)
	l.intercept.Store(nil)
	if n := rt.count("POST /auth/refresh"); n != 1 {
		t.Fatalf("%d refreshes for %d calls, want 1", n, callers*times)
	}
	if n := l.countStatus("POST /auth/refresh 429"); n != 2 {
		t.Fatalf("%d refreshes answered 429, want 2 (other's and c's)", n)
	}

	// Within Retry-After (30 s on the server's clock) the failure is
	// remembered: valid-token calls go ahead, no refresh is tried.
	for _, err := range hammer(t, callers, times, func() error { _, err := c.Me(ctx); return err }) {
		if err != nil {
			t.Fatalf("a call with a valid token failed: %v", err)
		}
	}
	// Once the token has expired, calls fail at once, without a request.
	l.Clock.Advance(15 * time.Second)
	me := rt.count("GET /auth/me")
	for _, err := range hammer(t, callers, times, func() error { _, err := c.Me(ctx); return err }) {
		var be *client.RefreshBackoffError
		if !errors.Is(err, client.ErrRefreshBackoff) || !errors.As(err, &be) || !errors.Is(err, client.ErrRateLimited) {
			t.Fatalf("with an expired token while backing off: %v", err)
		}
		if !be.RetryAt.After(l.Clock.Now()) || be.RetryAfter <= 0 {
			t.Fatalf("RetryAt %v is not after now %v", be.RetryAt, l.Clock.Now())
		}
	}
	if n := rt.count("POST /auth/refresh"); n != 1 {
		t.Fatalf("%d refreshes within Retry-After, want 1", n)
	}
	if n := rt.count("GET /auth/me") - me; n != 0 {
		t.Fatalf("%d requests sent with an expired token", n)
	}

	// After Retry-After the bucket has a token again: one refresh, and the
	// calls recover.
	l.Clock.Advance(20 * time.Second)
	for _, err := range hammer(t, callers, times, func() error { _, err := c.Me(ctx); return err }) {
		if err != nil {
			t.Fatalf("after Retry-After: %v", err)
		}
	}
	if n := rt.count("POST /auth/refresh"); n != 2 {
		t.Fatalf("%d refreshes after Retry-After, want 2", n)
	}
}

func TestRefreshBacksOffWhileLatchIsDown(t *testing.T) {
	const callers = 16
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		srv := &http.Server{Handler: s.App.Handler}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	srv := serve(ln)

	// The Client's clock runs, so that backoffs pass; skew moves it past
	// the access token's expiry without moving the server's.
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	rt := newCounter(http.DefaultTransport)
	c, err := client.New("http://"+addr, client.WithTransport(rt), client.WithClock(now),
		client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 3, BaseDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	signup(t, c)

	srv.Close() // latchd stops
	skew.Store(int64(accessTTL + time.Minute))
	refreshes, me := rt.count("POST /auth/refresh"), rt.count("GET /auth/me")
	var stop atomic.Bool
	var calls, ok atomic.Int64
	var wg sync.WaitGroup
	unexpected := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for !stop.Load() {
				calls.Add(1)
				_, err := c.Me(ctx)
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, client.ErrRefreshBackoff):
					select {
					case unexpected <- err:
					default:
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(3 * time.Second) // the gap
	gap := rt.count("POST /auth/refresh") - refreshes
	sentDuringGap := rt.count("GET /auth/me") - me
	okDuringGap, callsDuringGap := ok.Load(), calls.Load()

	ln, err = net.Listen("tcp", addr) // latchd is back, on the same port
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	serve(ln)
	for deadline := time.Now().Add(30 * time.Second); ok.Load() <= okDuringGap && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(unexpected)
	for err := range unexpected {
		t.Errorf("a call failed otherwise than ErrRefreshBackoff: %v", err)
	}
	t.Logf("gap: %d calls, %d refresh attempts", callsDuringGap, gap)
	if gap >= 20 || gap < 2 {
		t.Fatalf("%d refresh attempts in the gap for %d calls, want a few (backing off, still trying)", gap, callsDuringGap)
	}
	if sentDuringGap != 0 || okDuringGap != 0 {
		t.Fatalf("with an expired token: %d requests sent, %d calls succeeded", sentDuringGap, okDuringGap)
	}
	if ok.Load() == 0 {
		t.Fatal("the calls did not recover once latchd was back")
	}
	// The one that succeeded, and perhaps one that failed between the
	// count of the gap and the restart.
	if n := rt.count("POST /auth/refresh") - refreshes - gap; n < 1 || n > 2 {
		t.Fatalf("%d refreshes after latchd came back, want 1 or 2", n)
	}
}

func TestDefaultTransportReusesConnections(t *testing.T) {
	const callers, times = 16, 50
	l := start(t)
	c, err := client.New(l.URL, client.WithClock(l.Clock.Now)) // the default transport
	if err != nil {
		t.Fatal(err)
	}
	signup(t, c)
	var dials atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		ConnectStart: func(string, string) { dials.Add(1) },
	})
	for _, err := range hammer(t, callers, times, func() error { _, err := c.Me(ctx); return err }) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Load(); n > 2*callers {
		t.Fatalf("%d connections opened for %d goroutines (%d calls)", n, callers, callers*times)
	}
}

// TestExchangeKeepsTokenWhenRenewalFails refuses renewals of an exchanged
// token: the old one is used until it expires, then calls fail at once
// until the backoff has passed.
func TestExchangeKeepsTokenWhenRenewalFails(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	org, key := orgKey(t, l, "token:exchange", "sessions:read")
	sessions := "GET /organizations/" + org.String() + "/sessions"
	for name, tc := range map[string]struct {
		status int
		code   client.Code
		header map[string]string
	}{
		"429 with Retry-After": {429, client.ErrRateLimited, map[string]string{"Retry-After": "30"}},
		"503 with Retry-After": {503, client.ErrUnavailable, map[string]string{"Retry-After": "30"}},
		"500":                  {500, client.ErrInternal, nil},
	} {
		t.Run(name, func(t *testing.T) {
			// Backoffs of 30 s to a minute, on the server's clock.
			c, rt := l.countingClient(t,
				client.WithAPIKeyExchange(key, client.ExchangeRequest{Scopes: &[]string{"sessions:read"}}),
				client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 3, BaseDelay: time.Minute, MaxDelay: time.Minute}))
			first, err := c.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			refuse := func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/auth/token" {
					return false
				}
				writeError(w, tc.status, string(tc.code), tc.header)
				return true
			}
			l.intercept.Store(&refuse)
			defer l.intercept.Store(nil)

			// Due, still valid: one renewal is tried and refused; every
			// call goes ahead with the old token.
			l.Clock.Advance(first.ExpiresAt.Sub(first.IssuedAt) - 10*time.Second)
			for range 20 {
				if _, err := c.OrgSessions(ctx, org, ""); err != nil {
					t.Fatal(err)
				}
				client.WaitForRefresh(c)
			}
			if n := rt.count("POST /auth/token"); n != 2 {
				t.Fatalf("%d exchanges, want 2 (the first, one refused)", n)
			}
			if tok, err := c.Token(ctx); err != nil || tok.AccessToken != first.AccessToken {
				t.Fatalf("the old token was dropped: %v", err)
			}

			// Expired, backing off: calls fail at once, nothing is sent.
			l.Clock.Advance(11 * time.Second)
			sent := rt.count(sessions)
			_, err = c.OrgSessions(ctx, org, "")
			var be *client.RefreshBackoffError
			if !errors.As(err, &be) || !errors.Is(err, client.ErrRefreshBackoff) || !errors.Is(err, tc.code) {
				t.Fatalf("with the token expired: %v", err)
			}
			if n := rt.count("POST /auth/token"); n != 2 || rt.count(sessions) != sent {
				t.Fatalf("while backing off: %d exchanges, %d requests", n, rt.count(sessions)-sent)
			}

			// After the backoff, with Latch answering again.
			l.intercept.Store(nil)
			l.Clock.Advance(be.RetryAt.Sub(l.Clock.Now()))
			if _, err := c.OrgSessions(ctx, org, ""); err != nil {
				t.Fatalf("after the backoff: %v", err)
			}
			tok, err := c.Token(ctx)
			if err != nil || tok.AccessToken == first.AccessToken || rt.count("POST /auth/token") != 3 {
				t.Fatalf("after the backoff: %v, exchanges %d", err, rt.count("POST /auth/token"))
			}
		})
	}
}

// TestPermanentExchangeErrors: an exchange that Latch refuses for good (a
// 4xx other than 408 and 429: a configuration mistake) fails at once with
// the *Error it is, not a backoff, and is not tried again, whether it is
// the first exchange or a renewal.
func TestPermanentExchangeErrors(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	user := l.newClient(t)
	signup(t, user)
	personal, err := user.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Label: "ci", Scopes: []client.Scope{"token:exchange", "keys:read"}})
	if err != nil {
		t.Fatal(err)
	}
	_, noExchange := orgKey(t, l, "sessions:read")
	aud := "https://api.example.com"

	for name, tc := range map[string]struct {
		key string
		req client.ExchangeRequest
	}{
		"a personal key naming an audience": {personal.Key, client.ExchangeRequest{Audience: &aud}},
		"a key without token:exchange":      {noExchange, client.ExchangeRequest{}},
	} {
		t.Run(name, func(t *testing.T) {
			c, rt := l.countingClient(t, client.WithAPIKeyExchange(tc.key, tc.req))
			for i := range 3 {
				_, err := c.Token(ctx)
				var ae *client.Error
				if !errors.As(err, &ae) || ae.StatusCode != 403 || !errors.Is(err, client.ErrInsufficientPermissions) || errors.Is(err, client.ErrRefreshBackoff) {
					t.Fatalf("call %d: %v, want the 403 insufficient_permissions itself", i, err)
				}
				_, err = c.Me(ctx)
				if !errors.As(err, &ae) || ae.StatusCode != 403 || errors.Is(err, client.ErrRefreshBackoff) {
					t.Fatalf("call %d through the transport: %v", i, err)
				}
			}
			if n := rt.count("POST /auth/token"); n != 1 {
				t.Fatalf("%d exchanges, want 1: a permanent refusal is not tried again", n)
			}
			if n := rt.count("GET /auth/me"); n != 0 {
				t.Fatalf("%d requests sent without a token", n)
			}
		})
	}

	// A renewal refused for good: the valid token goes on being used, the
	// renewal is not tried again, and once the token has expired calls
	// fail with the refusal, not a backoff.
	_, key := orgKey(t, l, "token:exchange", "sessions:read")
	for name, tc := range map[string]struct {
		status int
		code   client.Code
		header map[string]string
	}{
		"400": {400, client.ErrInvalidRequest, nil},
		"401": {401, client.ErrInvalidClient, map[string]string{"WWW-Authenticate": `Bearer error="invalid_client"`}},
		"403": {403, client.ErrInsufficientPermissions, nil},
	} {
		t.Run("renewal "+name, func(t *testing.T) {
			c, rt := l.countingClient(t, client.WithAPIKeyExchange(key, client.ExchangeRequest{Scopes: &[]string{"sessions:read"}}))
			first, err := c.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			refuse := func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/auth/token" {
					return false
				}
				writeError(w, tc.status, string(tc.code), tc.header)
				return true
			}
			l.intercept.Store(&refuse)
			defer l.intercept.Store(nil)

			l.Clock.Advance(first.ExpiresAt.Sub(first.IssuedAt) - 10*time.Second)
			for range 10 {
				if tok, err := c.Token(ctx); err != nil || tok.AccessToken != first.AccessToken {
					t.Fatalf("while the token is valid: %v", err)
				}
				client.WaitForRefresh(c)
			}
			l.Clock.Advance(11 * time.Second)
			for range 3 {
				_, err = c.Token(ctx)
				var ae *client.Error
				if !errors.As(err, &ae) || ae.StatusCode != tc.status || !errors.Is(err, tc.code) || errors.Is(err, client.ErrRefreshBackoff) {
					t.Fatalf("with the token expired: %v, want the %d itself", err, tc.status)
				}
			}
			if n := rt.count("POST /auth/token"); n != 2 {
				t.Fatalf("%d exchanges, want 2 (the first, one refused)", n)
			}
		})
	}
}

// TestRenewalBackoffGrows checks the backoff after failures in a row,
// with the jitter at its largest: BaseDelay doubled up to MaxDelay, and
// Retry-After plus a tenth (at most a second) when Latch sends one.
func TestRenewalBackoffGrows(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	_, key := orgKey(t, l, "token:exchange")
	c, rt := l.countingClient(t,
		client.WithAPIKeyExchange(key, client.ExchangeRequest{}),
		client.WithRetryPolicy(client.RetryPolicy{BaseDelay: time.Second, MaxDelay: 8 * time.Second}),
		client.WithJitter(func(max time.Duration) time.Duration { return max }))
	var status atomic.Int32
	refuse := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/auth/token" {
			return false
		}
		if status.Load() == 429 {
			writeError(w, 429, "rate_limited", map[string]string{"Retry-After": "20"})
		} else {
			writeError(w, 503, "unavailable", nil)
		}
		return true
	}
	l.intercept.Store(&refuse)
	defer l.intercept.Store(nil)
	// The sixth is answered 429 with Retry-After 20: 20 s plus a tenth
	// capped at a second, which is more than the capped 8 s.
	for i, want := range []time.Duration{1, 2, 4, 8, 8, 21} {
		want *= time.Second
		if i == 5 {
			status.Store(429)
		}
		_, err := c.Token(ctx)
		var be *client.RefreshBackoffError
		if !errors.As(err, &be) || be.RetryAfter != want || !be.RetryAt.Equal(l.Clock.Now().Add(want)) {
			t.Fatalf("failure %d: %v, want a backoff of %v", i+1, err, want)
		}
		// Within the backoff nothing is sent.
		if _, err := c.Token(ctx); !errors.Is(err, client.ErrRefreshBackoff) || rt.count("POST /auth/token") != i+1 {
			t.Fatalf("failure %d: %d exchanges, %v", i+1, rt.count("POST /auth/token"), err)
		}
		l.Clock.Advance(want)
	}
}
