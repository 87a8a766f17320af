package verify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/verify"
	"github.com/latchauth/latch/internal/testutil"
)

// TestAgainstLatch verifies tokens that a real Latch issued, with the
// defaults (ES256, iss http://127.0.0.1:8080, aud latch) and its JWKS.
func TestAgainstLatch(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite")
	v := newVerifier(t, verify.Config{JWKSURL: s.URL + "/.well-known/jwks.json", Now: s.Clock.Now})

	user, err := client.New(s.URL, client.WithClock(s.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := user.Signup(ctx, "v"+uuid.NewString()[:8]+"@example.com", "correct horse battery staple")
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
		svc, err := client.New(s.URL, client.WithAPIKeyExchange(key.Key, "billing:read"), client.WithClock(s.Clock.Now))
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
