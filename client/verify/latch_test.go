package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/client/verify"
	"github.com/latchauth/latch/internal/testutil"
)

// TestAgainstLatch verifies tokens that a real Latch issued, with the
// defaults (ES256, iss http://127.0.0.1:8080, aud latch) and its JWKS.
func TestAgainstLatch(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	v := newVerifier(t, verify.Config{JWKSURL: s.URL + "/.well-known/jwks.json", Now: s.Clock.Now})

	user, err := client.New(s.URL, client.WithClock(s.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := user.SignUp(ctx, "v"+uuid.NewString()[:8]+"@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tr.AccessToken)
	if err != nil {
		t.Fatalf("a Latch session token was refused: %v", err)
	}
	if !c.IsSession() || c.Subject != tr.User.Id.String() || c.SID != tr.SessionId.String() || len(c.Scopes()) != 0 {
		t.Fatalf("claims = %+v", c)
	}

	t.Run("exchanged token and RequireScopes", func(t *testing.T) {
		org, err := user.CreateOrganization(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		key, err := user.CreateOrgAPIKey(ctx, org.Id, client.CreateAPIKeyRequest{Label: "api", Scopes: []string{"token:exchange", "billing:read"}})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := client.New(s.URL, client.WithAPIKeyExchange(key.Key, client.ExchangeRequest{Scopes: &[]string{"billing:read"}}), client.WithClock(s.Clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := svc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := v.RequireScopes("billing:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := verify.ClaimsFrom(r.Context())
			_, _ = w.Write([]byte(c.OrgID))
		}))
		for name, tc := range map[string]struct {
			token  string
			status int
		}{
			"exchanged with billing:read": {tok.AccessToken, 200},
			"session token":               {tr.AccessToken, 403},
		} {
			req := httptest.NewRequest("GET", "/invoices", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%s: status %d, want %d: %s", name, rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 && rec.Body.String() != org.Id.String() {
				t.Fatalf("org_id claim %q, want %s", rec.Body, org.Id)
			}
		}
	})

	t.Run("expired", func(t *testing.T) {
		s.Clock.Advance(16 * time.Minute)
		if _, err := v.Verify(ctx, tr.AccessToken); !errors.Is(err, verify.ErrTokenExpired) {
			t.Fatalf("err = %v, want token_expired", err)
		}
	})
}

// TestSDKStopsAtSessionEnd calls a resource server behind the middleware
// with the SDK's TokenSource: once the session has ended, the SDK sends
// the resource server nothing, and says ErrSessionEnded.
func TestSDKStopsAtSessionEnd(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	v := newVerifier(t, verify.Config{JWKSURL: s.URL + "/.well-known/jwks.json", Now: s.Clock.Now})
	var served atomic.Int64
	rs := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) })))
	defer rs.Close()

	var ended atomic.Int64
	user, err := client.New(s.URL, client.WithClock(s.Clock.Now), client.WithOnSessionEnd(func(client.SessionEndReason) { ended.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := user.SignUp(ctx, "v"+uuid.NewString()[:8]+"@example.com", "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	// Not oauth2.NewClient: its cache would judge expiry on the real clock.
	hc := &http.Client{Transport: &oauth2.Transport{Source: user.TokenSource()}}
	res, err := hc.Get(rs.URL)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("with a session: %v", err)
	}
	res.Body.Close()

	global := client.LogoutGlobal
	if res, err := s.Client.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &global}, testutil.Bearer(tr.AccessToken)); err != nil || res.StatusCode() != 204 {
		t.Fatalf("revoke the session: %v", err)
	}
	s.Clock.Advance(16 * time.Minute) // the access token has expired: the refresh is refused
	for range 10 {
		if _, err := hc.Get(rs.URL); !errors.Is(err, client.ErrSessionEnded) {
			t.Fatalf("after the end: %v, want ErrSessionEnded", err)
		}
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("the resource server got %d requests, want 1 (before the end)", n)
	}
	if n := ended.Load(); n != 1 {
		t.Fatalf("WithOnSessionEnd told %d times, want 1", n)
	}
}
