package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

// The server's access tokens live 15 minutes: the default margin is then
// the lifetime's fifth, 3 minutes, plus at most 10% jitter.
const accessTTL = 15 * time.Minute

func TestProactiveRefresh(t *testing.T) {
	ctx := context.Background()
	t.Run("default policy", func(t *testing.T) {
		l := start(t)
		c := l.newClient(t)
		tr := signup(t, c)

		l.Clock.Advance(11 * time.Minute) // 4 minutes left: not due
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
		if n := l.refreshes(); n != 0 {
			t.Fatalf("refreshed %d times with 4 minutes left", n)
		}
		l.Clock.Advance(2 * time.Minute) // 2 minutes left: due
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
		client.WaitForRefresh(c) // the token was valid: Me did not wait
		if n := l.refreshes(); n != 1 {
			t.Fatalf("refreshes = %d, want 1", n)
		}
		if n := l.countStatus("GET /auth/me 401"); n != 0 {
			t.Fatalf("the token was refreshed after a 401, not before: %d 401s", n)
		}
		tok, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken == tr.AccessToken || tok.RefreshToken == tr.RefreshToken {
			t.Fatal("the tokens did not change")
		}
		if got := tok.ExpiresAt.Sub(l.Clock.Now()); got < accessTTL-2*time.Second || got > accessTTL {
			t.Fatalf("new token expires in %v, want %v", got, accessTTL)
		}
	})
	t.Run("configured margin", func(t *testing.T) {
		l := start(t)
		c := l.newClient(t, client.WithRefreshPolicy(client.RefreshPolicy{Before: time.Minute, Jitter: -1}))
		signup(t, c)
		l.Clock.Advance(13 * time.Minute) // 2 minutes left: not due under a 1-minute margin
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
		if n := l.refreshes(); n != 0 {
			t.Fatalf("refreshed %d times with 2 minutes left and a 1-minute margin", n)
		}
		l.Clock.Advance(90 * time.Second)
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
		client.WaitForRefresh(c)
		if n := l.refreshes(); n != 1 {
			t.Fatalf("refreshes = %d, want 1", n)
		}
	})
}

func TestConcurrentCallersShareOneRefresh(t *testing.T) {
	const callers = 100
	for name, serverClockOnly := range map[string]bool{
		// The client sees the expiry and refreshes before sending.
		"proactive": false,
		// The client's clock lags: every caller gets a 401 first.
		"after 401": true,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l := start(t)
			var opts []client.Option
			if serverClockOnly {
				opts = append(opts, client.WithClock(newFakeClock().Now))
			}
			c := l.newClient(t, opts...)
			signup(t, c)
			l.Clock.Advance(accessTTL + time.Minute)

			var wg sync.WaitGroup
			errs := make(chan error, callers)
			gate := make(chan struct{})
			for range callers {
				wg.Go(func() {
					<-gate
					_, err := c.Me(ctx)
					errs <- err
				})
			}
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := l.refreshes(); n != 1 {
				t.Fatalf("%d callers caused %d refreshes, want 1", callers, n)
			}
			unauthorized := l.countStatus("GET /auth/me 401")
			if !serverClockOnly && unauthorized != 0 {
				t.Fatalf("%d 401s despite the proactive refresh", unauthorized)
			}
			if serverClockOnly && unauthorized == 0 {
				t.Fatal("no 401: the test did not exercise the reactive path")
			}
			if ok := l.countStatus("GET /auth/me 200"); ok != callers {
				t.Fatalf("%d successful calls, want %d", ok, callers)
			}
			if n := l.count("GET /auth/me"); n != callers+unauthorized {
				t.Fatalf("%d requests for %d callers and %d 401s: a 401 was retried more than once", n, callers, unauthorized)
			}
		})
	}
}

func TestRetriesOnceAfter401(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	c := l.newClient(t, client.WithClock(newFakeClock().Now))
	signup(t, c)
	l.Clock.Advance(accessTTL + time.Second) // expired for the server only

	if _, err := c.Me(ctx); err != nil {
		t.Fatal(err)
	}
	if got := [3]int{l.count("GET /auth/me"), l.countStatus("GET /auth/me 401"), l.refreshes()}; got != [3]int{2, 1, 1} {
		t.Fatalf("(requests, 401s, refreshes) = %v, want [2 1 1]", got)
	}
}

func TestNoRetryLoop(t *testing.T) {
	ctx := context.Background()
	t.Run("refresh refused after a 401", func(t *testing.T) {
		l := start(t)
		store := &client.MemoryStore{}
		c := l.newClient(t, client.WithTokenStore(store))
		tr := signup(t, c)
		global := client.LogoutGlobal
		if res, err := l.Client.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &global}, testutil.Bearer(tr.AccessToken)); err != nil || res.StatusCode() != 204 {
			t.Fatalf("revoke the session behind the client's back: %v", err)
		}

		_, err := c.Me(ctx)
		if !errors.Is(err, client.ErrSessionEnded) || !errors.Is(err, client.ErrInvalidGrant) {
			t.Fatalf("err = %v, want ErrSessionEnded wrapping invalid_grant", err)
		}
		if got := [2]int{l.count("GET /auth/me"), l.refreshes()}; got != [2]int{1, 1} {
			t.Fatalf("(requests, refreshes) = %v, want [1 1]", got)
		}
		if tok, _ := store.Load(ctx); tok != nil {
			t.Fatal("the store still holds the ended session's tokens")
		}
		if _, err := c.Token(ctx); !errors.Is(err, client.ErrNotLoggedIn) {
			t.Fatalf("Token after the end: %v, want ErrNotLoggedIn", err)
		}
		// Without tokens no request goes out: the call fails here.
		if _, err := c.Me(ctx); !errors.Is(err, client.ErrSessionEnded) {
			t.Fatalf("Me after the end: %v, want ErrSessionEnded", err)
		}
		if got := [2]int{l.count("GET /auth/me"), l.refreshes()}; got != [2]int{1, 1} {
			t.Fatalf("after the end: (requests, refreshes) = %v, want [1 1]", got)
		}
	})
	t.Run("proactive refresh refused", func(t *testing.T) {
		l := start(t)
		c := l.newClient(t)
		tr := signup(t, c)
		global := client.LogoutGlobal
		if res, err := l.Client.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &global}, testutil.Bearer(tr.AccessToken)); err != nil || res.StatusCode() != 204 {
			t.Fatalf("revoke: %v", err)
		}
		l.Clock.Advance(accessTTL)
		if _, err := c.Me(ctx); !errors.Is(err, client.ErrSessionEnded) {
			t.Fatalf("err = %v, want ErrSessionEnded", err)
		}
		if got := [2]int{l.count("GET /auth/me"), l.refreshes()}; got != [2]int{0, 1} {
			t.Fatalf("(requests, refreshes) = %v, want [0 1]", got)
		}
	})
	t.Run("still 401 after a refresh", func(t *testing.T) {
		l := start(t)
		c := l.newClient(t)
		signup(t, c)
		always401 := func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/auth/me" {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token","message":"the access token is invalid","request_id":"test-1"}`))
			return true
		}
		l.intercept.Store(&always401)
		_, err := c.Me(ctx)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Code != latchapi.ErrorCodeInvalidToken || ae.RequestID != "test-1" {
			t.Fatalf("err = %v, want the second 401", err)
		}
		if got := [2]int{l.count("GET /auth/me"), l.refreshes()}; got != [2]int{2, 1} {
			t.Fatalf("(requests, refreshes) = %v, want [2 1]", got)
		}
	})
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	c := l.newClient(t)
	addr := email()
	if _, err := c.SignUp(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	_, err := c.SignIn(ctx, addr, "not the password at all")
	var ae *client.Error
	if !errors.Is(err, client.ErrInvalidCredentials) || !errors.As(err, &ae) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if ae.StatusCode != 401 || ae.RequestID == "" || ae.Message == "" || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("error = %#v", ae)
	}
	if _, err := c.SignUp(ctx, addr, password); !errors.Is(err, client.ErrEmailTaken) {
		t.Fatalf("second signup: %v, want ErrEmailTaken", err)
	}
	if _, err := c.SignUp(ctx, email(), "short"); !errors.Is(err, client.ErrInvalidRequest) && !errors.Is(err, client.ErrWeakPassword) {
		t.Fatalf("weak password: %v", err)
	}
	// The typed API's responses convert too.
	res, err := c.API().GetSessionWithResponse(ctx, client.SessionId{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ResponseError(res); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("ResponseError = %v, want not_found", err)
	}
}

func TestLoginLogout(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	c := l.newClient(t)
	addr := email()
	if _, err := c.SignUp(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	other := l.newClient(t)
	if _, err := other.SignIn(ctx, addr, password); err != nil {
		t.Fatal(err)
	}
	me, err := other.Me(ctx)
	if err != nil || me.Email == nil || string(*me.Email) != addr {
		t.Fatalf("me: %v %v", me, err)
	}
	sessions, err := other.Sessions(ctx)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions: %d %v", len(sessions), err)
	}
	if err := other.Logout(ctx, client.LogoutOthers); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Me(ctx); err != nil {
		t.Fatalf("logout of the others ended this session: %v", err)
	}
	if _, err := c.Me(ctx); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("the other session survived: %v", err)
	}
	if err := other.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Token(ctx); !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("tokens kept after logout: %v", err)
	}
	before := l.count("GET /auth/me")
	if _, err := other.Me(ctx); !errors.Is(err, client.ErrSessionEnded) || !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("me after logout: %v, want ErrSessionEnded and ErrNotLoggedIn", err)
	}
	if n := l.count("GET /auth/me") - before; n != 0 {
		t.Fatalf("me after logout sent %d requests", n)
	}
	// Logging out again is no error.
	if err := other.Logout(ctx, client.LogoutLocal); err != nil {
		t.Fatalf("second logout: %v", err)
	}
}

func TestTokenSource(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	c := l.newClient(t)
	signup(t, c)
	hc := oauth2.NewClient(ctx, c.TokenSource())
	res, err := hc.Get(l.URL + "/auth/me")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if _, err := l.newClient(t).TokenSource().Token(); !errors.Is(err, client.ErrNotLoggedIn) {
		t.Fatalf("token source without a session: %v", err)
	}
}

func TestCredentialsStayWithLatch(t *testing.T) {
	l := start(t)
	c, err := client.New(l.URL) // not validated: the other host is not Latch
	if err != nil {
		t.Fatal(err)
	}
	signup(t, c)
	var got http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer other.Close()
	res, err := c.HTTPClient().Get(other.URL + "/auth/me")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got.Get("Authorization") != "" || got.Get("X-API-Key") != "" {
		t.Fatal("credentials sent to another host")
	}
}

func TestAPIKeyModes(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	org, key := orgKey(t, l, "token:exchange", "sessions:read", "sessions:write")

	t.Run("X-API-Key", func(t *testing.T) {
		c := l.newClient(t, client.WithAPIKey(key))
		if _, err := c.OrgSessions(ctx, org, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Token(ctx); err == nil {
			t.Fatal("a WithAPIKey client returned an access token")
		}
	})
	t.Run("exchange and renewal", func(t *testing.T) {
		c := l.newClient(t, client.WithAPIKeyExchange(key, client.ExchangeRequest{Scopes: &[]string{"sessions:read"}}))
		exchanges := func() int { return l.count("POST /auth/token") }
		before := exchanges()
		for range 3 {
			if _, err := c.OrgSessions(ctx, org, ""); err != nil {
				t.Fatal(err)
			}
		}
		if n := exchanges() - before; n != 1 {
			t.Fatalf("exchanges = %d, want 1 for three calls", n)
		}
		tok, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Scope != "sessions:read" || tok.RefreshToken != "" {
			t.Fatalf("exchanged token: scope %q, refresh token %q", tok.Scope, tok.RefreshToken)
		}
		// Let the token run out: the client exchanges again before sending.
		l.Clock.Advance(tok.ExpiresAt.Sub(tok.IssuedAt))
		if _, err := c.OrgSessions(ctx, org, ""); err != nil {
			t.Fatal(err)
		}
		if n := exchanges() - before; n != 2 {
			t.Fatalf("exchanges = %d, want 2 after expiry", n)
		}
		if n := l.countStatus("GET /organizations/" + org.String() + "/sessions 401"); n != 0 {
			t.Fatalf("%d 401s: the exchange was not proactive", n)
		}
		next, _ := c.Token(ctx)
		if next.AccessToken == tok.AccessToken {
			t.Fatal("the token did not change")
		}
	})
	t.Run("exchange refused", func(t *testing.T) {
		c := l.newClient(t, client.WithAPIKeyExchange("latch_o_not_a_real_key_at_all", client.ExchangeRequest{}))
		_, err := c.OrgSessions(ctx, org, "")
		var ae *client.Error
		if !errors.As(err, &ae) || ae.StatusCode != 401 {
			t.Fatalf("err = %v, want a 401 from the exchange", err)
		}
	})
}

func TestSignupWhenVerificationIsRequired(t *testing.T) {
	ctx := context.Background()
	l := start(t, func(c *app.Config) { c.RequireVerifiedEmail = true })
	c := l.newClient(t)
	tok, err := c.SignUp(ctx, email(), password)
	if tok != nil || !errors.Is(err, client.ErrEmailNotVerified) {
		t.Fatalf("SignUp = %v, %v; want no tokens and ErrEmailNotVerified", tok, err)
	}
	if _, err := c.Me(ctx); err == nil {
		t.Fatal("the client holds a session after a signup that opened none")
	}
}
