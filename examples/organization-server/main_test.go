package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

const idpIssuer = "https://idp.example.com/"

// fakeIdP stands in for Auth0: an RSA key whose JWKS a local server
// publishes, and tokens signed with it.
type fakeIdP struct {
	key  *rsa.PrivateKey
	jwks *httptest.Server
}

func newFakeIdP(t *testing.T) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "idp-1", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &fakeIdP{key: key, jwks: srv}
}

func (p *fakeIdP) token(t *testing.T, sub, email string, key *rsa.PrivateKey) string {
	t.Helper()
	c := jwt.MapClaims{"iss": idpIssuer, "aud": "org-api", "sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	if email != "" {
		c["email"] = email
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "idp-1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type caller struct {
	t     *testing.T
	base  string
	token string
}

func (c caller) do(method, path string, body string, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		_ = json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

func TestOrganizationServer(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	owner, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.SignUp(ctx, "owner@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	org, err := owner.CreateOrganization(ctx, "Acme")
	if err != nil {
		t.Fatalf("create organization (issue 3): %v", err)
	}
	key, err := owner.CreateOrgAPIKey(ctx, org.Id, client.CreateAPIKeyRequest{Label: "org server", Scopes: []string{"sessions:write", "sessions:read"}})
	if err != nil {
		t.Fatal(err)
	}
	idp := newFakeIdP(t)

	runCtx, stop := context.WithCancel(ctx)
	addr, done := make(chan string, 1), make(chan error, 1)
	env := map[string]string{
		"LATCH_URL": s.URL, "LATCH_API_KEY": key.Key, "LATCH_ORG_ID": org.Id.String(),
		"IDP_JWKS_URL": idp.jwks.URL, "IDP_ISSUER": idpIssuer, "IDP_AUDIENCE": "org-api",
		"CORS_ORIGINS": "https://app.example.com",
	}
	go func() {
		done <- run(runCtx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, hooks{
			ready:   func(a string) { addr <- a },
			options: []client.Option{client.WithTransport(testutil.NewValidatingTransport(t, http.DefaultTransport))},
		})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	alice := caller{t, base, idp.token(t, "auth0|alice", "alice@example.com", idp.key)}
	bob := caller{t, base, idp.token(t, "auth0|bob", "", idp.key)}
	forger, _ := rsa.GenerateKey(rand.Reader, 2048)

	t.Run("identity required", func(t *testing.T) {
		for name, c := range map[string]caller{
			"no token":     {t, base, ""},
			"forged token": {t, base, idp.token(t, "auth0|alice", "", forger)},
			"not a JWT":    {t, base, "opaque"},
		} {
			if st := c.do("GET", "/session", "", nil); st != 401 {
				t.Errorf("%s: %d, want 401", name, st)
			}
		}
	})

	var first, second client.TokenResponse
	if st := alice.do("POST", "/session", `{"metadata":{"plan":"pro"}}`, &first); st != 201 || first.AccessToken == "" || first.RefreshToken == "" {
		t.Fatalf("open: %d %+v", st, first)
	}
	if st := alice.do("POST", "/session", "", &second); st != 201 {
		t.Fatalf("open a second: %d", st)
	}
	var bobs client.TokenResponse
	if st := bob.do("POST", "/session", "", &bobs); st != 201 {
		t.Fatalf("open for bob: %d", st)
	}

	// The session is Alice's in Latch: her tokens work there.
	me, err := s.Client.GetMeWithResponse(ctx, testutil.Bearer(first.AccessToken))
	if err != nil || me.JSON200 == nil {
		t.Fatalf("me with the delegated token: %v %s", err, me.Body)
	}
	if u := me.JSON200; u.ExternalId == nil || *u.ExternalId != "auth0|alice" || u.OrgId == nil || *u.OrgId != org.Id || u.Email == nil || string(*u.Email) != "alice@example.com" {
		t.Fatalf("delegated user: %+v", u)
	}

	var list latchapi.SessionList
	if st := alice.do("GET", "/session", "", &list); st != 200 || len(list.Sessions) != 2 {
		t.Fatalf("list: %d, %d sessions", st, len(list.Sessions))
	}
	for _, ss := range list.Sessions {
		if ss.ExternalId == nil || *ss.ExternalId != "auth0|alice" {
			t.Fatalf("listed another user's session: %+v", ss)
		}
	}

	// Bob cannot touch Alice's sessions.
	if st := bob.do("POST", "/session/"+first.SessionId.String()+"/renew", "", nil); st != 404 {
		t.Fatalf("bob renews alice's session: %d", st)
	}
	if st := bob.do("DELETE", "/session/"+first.SessionId.String(), "", nil); st != 404 {
		t.Fatalf("bob deletes alice's session: %d", st)
	}

	// Renewal pushes the idle expiry forward.
	before := list.Sessions[0].ExpiresAt
	s.Clock.Advance(time.Hour)
	var renewed client.Session
	if st := alice.do("POST", "/session/"+list.Sessions[0].Id.String()+"/renew", "", &renewed); st != 200 || !renewed.ExpiresAt.After(before) {
		t.Fatalf("renew: %d, expires %v -> %v", st, before, renewed.ExpiresAt)
	}

	if st := alice.do("DELETE", "/session/"+first.SessionId.String(), "", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := alice.do("GET", "/session", "", &list); st != 200 || len(list.Sessions) != 1 || list.Sessions[0].Id != second.SessionId {
		t.Fatalf("after delete: %d %+v", st, list.Sessions)
	}
	if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(first.AccessToken)); me.StatusCode() != 401 {
		t.Fatalf("the deleted session's token still works: %d", me.StatusCode())
	}
	if st := alice.do("DELETE", "/session/not-a-uuid", "", nil); st != 404 {
		t.Fatalf("delete a malformed id: %d", st)
	}

	t.Run("CORS", func(t *testing.T) {
		for origin, allowed := range map[string]bool{"https://app.example.com": true, "https://evil.example.com": false} {
			req, _ := http.NewRequest("OPTIONS", base+"/session", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get("Access-Control-Allow-Origin") == origin && strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization")
			if got != allowed {
				t.Errorf("%s: allowed %v, want %v (status %d)", origin, got, allowed, res.StatusCode)
			}
		}
	})
}

func TestConfigErrors(t *testing.T) {
	err := run(context.Background(), nil, func(string) string { return "" }, io.Discard, hooks{
		ready: func(string) { t.Error("listened without configuration") },
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"LATCH_API_KEY", "LATCH_ORG_ID", "IDP_JWKS_URL", "IDP_ISSUER"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
}
