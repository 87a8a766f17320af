package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

// exchanged are the claims of an exchanged token, read by golang-jwt alone.
type exchanged struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
	KeyID string `json:"key_id"`
	OrgID string `json:"org_id"`
	SID   string `json:"sid"`
}

// verifyJWT verifies a token against the server's JWKS with golang-jwt and
// a keyfunc built from /.well-known/jwks.json, as any resource server would.
func verifyJWT(t *testing.T, s *testutil.Server, tok string, aud string) *exchanged {
	t.Helper()
	j, err := s.Client.GetJWKSWithResponse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := &exchanged{}
	p, err := jwt.ParseWithClaims(tok, c, jwksKeyfunc(t, j.Body),
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(aud), jwt.WithIssuer(s.App.Config.Issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.Clock.Now))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if p.Header["typ"] != "at+jwt" {
		t.Fatalf("typ %v", p.Header["typ"])
	}
	return c
}

// about reports whether expires_in is the lifetime want, which loses up to
// a second to exp's whole-second precision.
func about(got, want int) bool { return got == want || got == want-1 }

func exchange(t *testing.T, s *testutil.Server, body client.ExchangeTokenJSONRequestBody, auth client.RequestEditorFn) *client.ExchangeTokenResponse {
	t.Helper()
	res, err := s.Client.ExchangeTokenWithResponse(context.Background(), body, auth)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestExchangeToken(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.ExchangeMaxTTL = time.Hour })
		ctx := context.Background()
		ada := signup(t, s, "exchange@example.com")
		k := createKey(t, s, testutil.Bearer(ada.AccessToken), "svc", "token:exchange", "keys:read", "billing:read", "billing:write")

		res := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key))
		check(t, "exchange", res.StatusCode(), res.Body, 200)
		tok := res.JSON200
		// By default only the application scopes: a built-in scope lets a
		// token act on Latch, so it must be asked for by name.
		if tok.TokenType != client.ExchangeResponseTokenTypeBearer || !about(tok.ExpiresIn, 15*60) || tok.Scope != "billing:read billing:write" {
			t.Fatalf("response: %s", res.Body)
		}
		c := verifyJWT(t, s, tok.AccessToken, "latch")
		if c.Subject != ada.User.Id.String() || c.KeyID != k.Id.String() || c.Scope != tok.Scope || c.OrgID != "" || c.SID != "" || c.ID == "" {
			t.Fatalf("claims: %+v", c)
		}
		if !c.ExpiresAt.Time.Equal(tok.ExpiresAt) {
			t.Fatalf("exp %v, expires_at %v", c.ExpiresAt, tok.ExpiresAt)
		}

		// The default token holds no built-in scope, though its key does...
		lk, _ := s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
		checkErr(t, "default token on a built-in operation", lk.StatusCode(), lk.Body, 403, "insufficient_permissions")
		// ...one that asks for keys:read by name calls Latch where API keys
		// may, with its own scopes.
		named := exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &[]string{"keys:read"}}, testutil.APIKey(k.Key))
		check(t, "exchange naming keys:read", named.StatusCode(), named.Body, 200)
		lk, _ = s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.Bearer(named.JSON200.AccessToken))
		check(t, "list keys with the exchanged token", lk.StatusCode(), lk.Body, 200)
		ls, _ := s.Client.ListSessionsWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
		checkErr(t, "session-only operation", ls.StatusCode(), ls.Body, 401, "invalid_token")
		og, _ := s.Client.ListOrganizationsWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
		checkErr(t, "session-only operation", og.StatusCode(), og.Body, 401, "invalid_token")

		// A personal key cannot choose its tokens' audience: any user could
		// otherwise mint a Latch-signed token for any resource server.
		scopes := []string{"billing:read"}
		aud := "https://api.example.com"
		in := 300
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &scopes, Audience: &aud, ExpiresIn: &in}, testutil.APIKey(k.Key))
		checkErr(t, "personal key naming an audience", res.StatusCode(), res.Body, 403, "insufficient_permissions")
		// Narrowed: fewer scopes, a shorter life.
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &scopes, ExpiresIn: &in}, testutil.APIKey(k.Key))
		check(t, "narrowed exchange", res.StatusCode(), res.Body, 200)
		if res.JSON200.Scope != "billing:read" || !about(res.JSON200.ExpiresIn, 300) {
			t.Fatalf("narrowed: %s", res.Body)
		}
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &scopes}, testutil.APIKey(k.Key))
		lk, _ = s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.Bearer(res.JSON200.AccessToken))
		if msg := checkErr(t, "narrowed token without keys:read", lk.StatusCode(), lk.Body, 403, "insufficient_permissions"); !strings.Contains(msg, "keys:read") {
			t.Fatalf("message %q", msg)
		}

		// More than the key holds: refused, naming the scope.
		more := []string{"billing:read", "billing:admin"}
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &more}, testutil.APIKey(k.Key))
		if msg := checkErr(t, "escalating exchange", res.StatusCode(), res.Body, 403, "insufficient_permissions"); !strings.Contains(msg, "billing:admin") {
			t.Fatalf("message %q", msg)
		}

		// The lifetime is capped by the maximum...
		long := 7200
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{ExpiresIn: &long}, testutil.APIKey(k.Key))
		if check(t, "long exchange", res.StatusCode(), res.Body, 200); !about(res.JSON200.ExpiresIn, 3600) {
			t.Fatalf("expires_in %d, want the 1h cap", res.JSON200.ExpiresIn)
		}
		// ...and by the key's expiry.
		exp := s.Clock.Now().Add(10 * time.Minute).Truncate(time.Second)
		short, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "short", Scopes: []string{"token:exchange"}, ExpiresAt: &exp},
			testutil.Bearer(ada.AccessToken))
		check(t, "create short key", short.StatusCode(), short.Body, 201)
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(short.JSON201.Key))
		if check(t, "exchange short key", res.StatusCode(), res.Body, 200); !res.JSON200.ExpiresAt.Equal(exp) {
			t.Fatalf("expires_at %v, want the key's %v", res.JSON200.ExpiresAt, exp)
		}

		// Credentials.
		noEx := createKey(t, s, testutil.Bearer(ada.AccessToken), "no exchange", "keys:read")
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(noEx.Key))
		if msg := checkErr(t, "key without token:exchange", res.StatusCode(), res.Body, 403, "insufficient_permissions"); !strings.Contains(msg, "token:exchange") {
			t.Fatalf("message %q", msg)
		}
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{}, func(context.Context, *http.Request) error { return nil })
		checkErr(t, "no credentials", res.StatusCode(), res.Body, 401, "invalid_client")
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.Bearer(ada.AccessToken))
		checkErr(t, "a session token", res.StatusCode(), res.Body, 401, "invalid_client")
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key[:45]+"!"))
		check(t, "a malformed key", res.StatusCode(), res.Body, 401)

		// Revoking the key ends its exchanged tokens at once.
		rv, _ := s.Client.RevokeAPIKeyWithResponse(ctx, k.Id, testutil.Bearer(ada.AccessToken))
		check(t, "revoke", rv.StatusCode(), rv.Body, 204)
		lk, _ = s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
		checkErr(t, "exchanged token of a revoked key", lk.StatusCode(), lk.Body, 401, "invalid_token")
	})
}

func TestExchangeOrganizationKey(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "token:exchange", "keys:read", "sessions:write")
		res := exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &[]client.Scope{"keys:read", "sessions:write"}}, testutil.APIKey(k.Key))
		check(t, "exchange", res.StatusCode(), res.Body, 200)
		c := verifyJWT(t, s, res.JSON200.AccessToken, "latch")
		if c.Subject != org.Id.String() || c.OrgID != org.Id.String() || c.KeyID != k.Id.String() {
			t.Fatalf("claims: %+v", c)
		}
		lk, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, org.Id, nil, testutil.Bearer(res.JSON200.AccessToken))
		check(t, "org keys with the exchanged token", lk.StatusCode(), lk.Body, 200)
		// The SDK's exchange mode: delegated sessions through the token.
		ds, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "u-1"}, testutil.Bearer(res.JSON200.AccessToken))
		if check(t, "delegated session with the exchanged token", ds.StatusCode(), ds.Body, 201); ds.JSON201.User.OrgId == nil || *ds.JSON201.User.OrgId != org.Id {
			t.Fatalf("delegated: %s", ds.Body)
		}
		ds, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "u-1"}, testutil.Bearer(alice.AccessToken))
		checkErr(t, "delegated session with a user session", ds.StatusCode(), ds.Body, 403, "insufficient_permissions")
		other := createOrg(t, s, alice.AccessToken, "Other")
		lk, _ = s.Client.ListOrgAPIKeysWithResponse(ctx, other.Id, nil, testutil.Bearer(res.JSON200.AccessToken))
		checkErr(t, "another org with the exchanged token", lk.StatusCode(), lk.Body, 404, "not_found")
	})
}

// TestExchangeClientCredentials drives the endpoint with the unmodified
// golang.org/x/oauth2/clientcredentials package.
func TestExchangeClientCredentials(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ada := signup(t, s, "oauth@example.com")
		k := createKey(t, s, testutil.Bearer(ada.AccessToken), "oauth", "token:exchange", "keys:read", "billing:read")
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.Doer)
		for name, style := range map[string]oauth2.AuthStyle{"basic": oauth2.AuthStyleInHeader, "form": oauth2.AuthStyleInParams, "auto": oauth2.AuthStyleAutoDetect} {
			cfg := clientcredentials.Config{
				ClientID: "my-backend", ClientSecret: k.Key, TokenURL: s.URL + "/auth/token",
				Scopes: []string{"keys:read", "billing:read"}, AuthStyle: style,
				EndpointParams: url.Values{"audience": {"latch"}},
			}
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if tok.TokenType != "Bearer" || tok.Expiry.IsZero() || tok.Extra("scope") != "billing:read keys:read" {
				t.Fatalf("%s: token %+v scope %v", name, tok, tok.Extra("scope"))
			}
			c := verifyJWT(t, s, tok.AccessToken, "latch")
			if c.Subject != ada.User.Id.String() || c.KeyID != k.Id.String() {
				t.Fatalf("%s: claims %+v", name, c)
			}
			// The package's own client calls Latch with the token.
			hc := cfg.Client(ctx)
			res, err := hc.Get(s.URL + "/api-keys")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("%s: GET /api-keys with the token: %d", name, res.StatusCode)
			}
		}

		// RFC 6749 errors.
		var re *oauth2.RetrieveError
		bad := clientcredentials.Config{ClientID: "x", ClientSecret: "latch_u_wrong", TokenURL: s.URL + "/auth/token", AuthStyle: oauth2.AuthStyleInParams}
		if _, err := bad.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 || re.ErrorDescription == "" {
			t.Fatalf("bad secret: %v", err)
		}
		bad = clientcredentials.Config{ClientID: "x", ClientSecret: otherLastChar(k.Key), TokenURL: s.URL + "/auth/token", AuthStyle: oauth2.AuthStyleInHeader}
		if _, err := bad.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("bad basic secret: %v", err)
		}
		greedy := clientcredentials.Config{ClientID: "x", ClientSecret: k.Key, TokenURL: s.URL + "/auth/token", Scopes: []string{"billing:write"}}
		if _, err := greedy.Token(ctx); !errors.As(err, &re) || re.ErrorCode != "invalid_scope" || re.Response.StatusCode != 400 {
			t.Fatalf("scope escalation: %v", err)
		}
		res, body := do(t, s, "POST", "/auth/token", "application/x-www-form-urlencoded",
			[]byte("grant_type=password&client_secret="+k.Key), nil)
		checkErr(t, "password grant", res.StatusCode, body, 400, "unsupported_grant_type")
		res, body = do(t, s, "POST", "/auth/token", "application/x-www-form-urlencoded", []byte("grant_type=client_credentials"), nil)
		checkErr(t, "no client credentials", res.StatusCode, body, 401, "invalid_client")
		if !strings.Contains(string(body), "error_description") {
			t.Fatalf("no error_description: %s", body)
		}
	})
}

// otherLastChar returns key with its last character changed, so the
// checksum no longer matches (whatever the last character was).
func otherLastChar(key string) string {
	last := byte('0')
	if key[len(key)-1] == '0' {
		last = '1'
	}
	return key[:len(key)-1] + string(last)
}
