package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

// basic returns a request editor that sends HTTP Basic credentials
// form-URL-encoded, as RFC 6749 2.3.1 says and openid-client does.
func basic(id, secret string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.SetBasicAuth(url.QueryEscape(id), strings.ReplaceAll(url.QueryEscape(secret), "_", "%5F"))
		return nil
	}
}

// editors drops a nil editor: the generated client calls every one.
func editors(e client.RequestEditorFn) []client.RequestEditorFn {
	if e == nil {
		return nil
	}
	return []client.RequestEditorFn{e}
}

func introspect(t *testing.T, s *testutil.Server, tok string, auth client.RequestEditorFn) (*client.IntrospectTokenResponse, int) {
	t.Helper()
	res, err := s.Client.IntrospectTokenWithFormdataBodyWithResponse(context.Background(), client.IntrospectTokenFormdataRequestBody{Token: tok}, editors(auth)...)
	if err != nil {
		t.Fatal(err)
	}
	return res, res.StatusCode()
}

// inactive fails unless the answer is exactly {"active": false}.
func inactive(t *testing.T, what string, s *testutil.Server, tok string, auth client.RequestEditorFn) {
	t.Helper()
	res, st := introspect(t, s, tok, auth)
	if st != 200 || strings.TrimSpace(string(res.Body)) != `{"active":false}` {
		t.Errorf("%s: %d %s, want exactly {\"active\":false}", what, st, res.Body)
	}
}

func active(t *testing.T, what string, s *testutil.Server, tok string, auth client.RequestEditorFn) *client.IntrospectionResponse {
	t.Helper()
	res, st := introspect(t, s, tok, auth)
	if st != 200 || res.JSON200 == nil || !res.JSON200.Active {
		t.Fatalf("%s: %d %s, want active", what, st, res.Body)
	}
	return res.JSON200
}

func TestDiscoveryDocuments(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	ctx := context.Background()
	a, err := s.Client.GetAuthorizationServerMetadataWithResponse(ctx)
	if err != nil || a.StatusCode() != 200 {
		t.Fatalf("oauth-authorization-server: %v %s", err, a.Body)
	}
	o, err := s.Client.GetOpenIDConfigurationWithResponse(ctx)
	if err != nil || o.StatusCode() != 200 {
		t.Fatalf("openid-configuration: %v %s", err, o.Body)
	}
	if string(a.Body) != string(o.Body) {
		t.Fatalf("the two documents differ:\n%s\n%s", a.Body, o.Body)
	}
	m := a.JSON200
	base := s.App.Config.Recovery.PublicURL
	if m.Issuer != s.App.Config.Issuer || m.JwksUri != base+"/.well-known/jwks.json" || m.TokenEndpoint != base+"/auth/token" ||
		m.IntrospectionEndpoint != base+"/oauth/introspect" || m.RevocationEndpoint != base+"/oauth/revoke" || m.UserinfoEndpoint != base+"/userinfo" {
		t.Fatalf("endpoints: %s", a.Body)
	}
	if len(m.ResponseTypesSupported) != 0 || len(m.GrantTypesSupported) != 2 || len(m.TokenEndpointAuthMethodsSupported) != 2 {
		t.Fatalf("capabilities: %s", a.Body)
	}
	for _, sc := range m.ScopesSupported {
		if sc == "tokens:introspect" {
			goto scoped
		}
	}
	t.Fatalf("scopes_supported lacks tokens:introspect: %s", a.Body)
scoped:
	if cc := a.HTTPResponse.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") || strings.Contains(cc, "no-store") {
		t.Fatalf("Cache-Control %q", cc)
	}
}

func TestIntrospection(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "ada@example.com")
		rs := createKey(t, s, testutil.Bearer(ada.AccessToken), "resource server", "tokens:introspect")
		caller := basic("my-resource-server", rs.Key)

		// A session's access token, its refresh token, an API key.
		at := active(t, "access token", s, ada.AccessToken, caller)
		if at.Sub == nil || *at.Sub != ada.User.Id.String() || at.Sid == nil || *at.Sid != ada.SessionId ||
			at.ClientId == nil || *at.ClientId != "latch" || at.TokenType == nil || *at.TokenType != "Bearer" ||
			at.Iss == nil || *at.Iss != s.App.Config.Issuer || at.Exp == nil || at.Iat == nil || at.AuthTime == nil ||
			at.TokenUse == nil || *at.TokenUse != "access_token" {
			t.Fatalf("access token: %+v", at)
		}
		rt := active(t, "refresh token", s, ada.RefreshToken, caller)
		if *rt.TokenUse != "refresh_token" || *rt.Sid != ada.SessionId || *rt.ClientId != "latch" {
			t.Fatalf("refresh token: %+v", rt)
		}
		k := createKey(t, s, testutil.Bearer(ada.AccessToken), "worker", "token:exchange", "billing:read")
		kt := active(t, "api key", s, k.Key, caller)
		if *kt.TokenUse != "api_key" || *kt.ClientId != k.Id.String() || *kt.Scope != "billing:read token:exchange" {
			t.Fatalf("api key: %+v", kt)
		}
		// The other ways to authenticate: client_secret in the form, X-API-Key.
		res, err := s.Client.IntrospectTokenWithFormdataBodyWithResponse(ctx, client.IntrospectTokenFormdataRequestBody{Token: ada.AccessToken, ClientSecret: &rs.Key})
		if err != nil || res.JSON200 == nil || !res.JSON200.Active {
			t.Fatalf("client_secret_post: %v %s", err, res.Body)
		}
		active(t, "X-API-Key", s, ada.AccessToken, testutil.APIKey(rs.Key))

		// An exchanged token, for another audience too.
		ex := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key))
		et := active(t, "exchanged token", s, ex.JSON200.AccessToken, caller)
		if *et.ClientId != k.Id.String() || *et.Scope != "billing:read" {
			t.Fatalf("exchanged: %+v", et)
		}

		// Nothing is revealed about inactive tokens.
		inactive(t, "garbage", s, "not-a-token", caller)
		inactive(t, "refresh-shaped garbage", s, strings.Repeat("A", 43), caller)
		inactive(t, "bad key checksum", s, otherLastChar(k.Key), caller)
		parts := strings.Split(ada.AccessToken, ".")
		sig := []byte(parts[2])
		sig[5] ^= 1
		inactive(t, "tampered", s, parts[0]+"."+parts[1]+"."+string(sig), caller)
		payload := strings.Split(ada.AccessToken, ".")
		claims := jwt.MapClaims{"iss": "https://evil.example", "sub": ada.User.Id.String(), "aud": "latch", "sid": ada.SessionId.String(),
			"jti": "x", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		foreign := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		hdr, _, _ := jwt.NewParser().ParseUnverified(ada.AccessToken, jwt.MapClaims{})
		foreign.Header["kid"], foreign.Header["typ"] = hdr.Header["kid"], "at+jwt"
		evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ft, err := foreign.SignedString(evil)
		if err != nil {
			t.Fatal(err)
		}
		inactive(t, "foreign issuer and key", s, ft, caller)
		_ = payload

		// A token of someone else: a personal key sees only its own user's.
		bob := signup(t, s, "bob@example.com")
		inactive(t, "another user's token", s, bob.AccessToken, caller)
		inactive(t, "another user's refresh token", s, bob.RefreshToken, caller)

		// An organization key sees only its organization's tokens.
		org := createOrg(t, s, ada.AccessToken, "Acme")
		ok := createOrgKey(t, s, testutil.Bearer(ada.AccessToken), org.Id, "token:exchange", "tokens:introspect", "billing:read")
		oex := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(ok.Key))
		ot := active(t, "org token by its org", s, oex.JSON200.AccessToken, basic("acme", ok.Key))
		if ot.OrgId == nil || *ot.OrgId != org.Id {
			t.Fatalf("org token: %+v", ot)
		}
		inactive(t, "org token by a personal key", s, oex.JSON200.AccessToken, caller)
		inactive(t, "personal token by an org key", s, ada.AccessToken, basic("acme", ok.Key))

		// A revoked session is inactive at once; an expired token too.
		lo, err := s.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(bob.AccessToken))
		if err != nil || lo.StatusCode() != 204 {
			t.Fatalf("logout: %v", err)
		}
		carl := signup(t, s, "carl@example.com")
		carlKey := createKey(t, s, testutil.Bearer(carl.AccessToken), "rs", "tokens:introspect")
		if _, err := s.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(carl.AccessToken)); err != nil {
			t.Fatal(err)
		}
		inactive(t, "revoked session's access token", s, carl.AccessToken, basic("c", carlKey.Key))
		inactive(t, "revoked session's refresh token", s, carl.RefreshToken, basic("c", carlKey.Key))
		s.Clock.Advance(16 * time.Minute)
		inactive(t, "expired", s, ada.AccessToken, caller)

		// Callers without tokens:introspect, or without credentials.
		res, _ = introspect(t, s, ada.RefreshToken, basic("w", k.Key))
		checkErr(t, "no tokens:introspect", res.StatusCode(), res.Body, 403, "insufficient_permissions")
		res, _ = introspect(t, s, ada.RefreshToken, nil)
		checkErr(t, "no credentials", res.StatusCode(), res.Body, 401, "invalid_client")
		if !strings.Contains(string(res.Body), "error_description") {
			t.Fatalf("no error_description: %s", res.Body)
		}
	})
}

func TestRevocation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		revoke := func(tok string, auth client.RequestEditorFn) *client.RevokeTokenResponse {
			t.Helper()
			res, err := s.Client.RevokeTokenWithFormdataBodyWithResponse(ctx, client.RevokeTokenFormdataRequestBody{Token: tok}, editors(auth)...)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		ada := signup(t, s, "ada@example.com")
		// A refresh token ends its session; twice is fine.
		for i := range 2 {
			if r := revoke(ada.RefreshToken, nil); r.StatusCode() != 200 {
				t.Fatalf("revoke refresh token (%d): %d %s", i, r.StatusCode(), r.Body)
			}
		}
		if _, st := me(t, s, testutil.Bearer(ada.AccessToken)); st != 401 {
			t.Fatalf("the session outlived its revoked refresh token: %d", st)
		}
		// An access token ends its session.
		l := login(s, "ada@example.com", goodPassword).JSON200
		if r := revoke(l.AccessToken, nil); r.StatusCode() != 200 {
			t.Fatalf("revoke access token: %d %s", r.StatusCode(), r.Body)
		}
		if rr, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: l.RefreshToken}); rr.StatusCode() != 401 {
			t.Fatalf("the session outlived its revoked access token: %d", rr.StatusCode())
		}
		// Unknown tokens answer 200.
		for _, tok := range []string{"garbage", strings.Repeat("A", 43), "latch_u_00000000000000000000000000000000000000"} {
			if r := revoke(tok, nil); r.StatusCode() != 200 {
				t.Fatalf("unknown %q: %d %s", tok, r.StatusCode(), r.Body)
			}
		}
		// An API key: its owner revokes it; nobody else does.
		l = login(s, "ada@example.com", goodPassword).JSON200
		k := createKey(t, s, testutil.Bearer(l.AccessToken), "worker", "token:exchange", "billing:read")
		bob := signup(t, s, "bob@example.com")
		r := revoke(k.Key, testutil.Bearer(bob.AccessToken))
		checkErr(t, "someone else's key", r.StatusCode(), r.Body, 403, "insufficient_permissions")
		r = revoke(k.Key, nil)
		checkErr(t, "a key without its owner", r.StatusCode(), r.Body, 401, "invalid_client")
		ex := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key))
		r = revoke(ex.JSON200.AccessToken, nil)
		checkErr(t, "exchanged token", r.StatusCode(), r.Body, 400, "unsupported_token_type")
		if r := revoke(k.Key, testutil.Bearer(l.AccessToken)); r.StatusCode() != 200 {
			t.Fatalf("owner revokes key: %d %s", r.StatusCode(), r.Body)
		}
		if _, st := me(t, s, testutil.APIKey(k.Key)); st != 401 {
			t.Fatalf("revoked key still works: %d", st)
		}
		if r := revoke(k.Key, testutil.Bearer(l.AccessToken)); r.StatusCode() != 200 {
			t.Fatalf("revoking again: %d %s", r.StatusCode(), r.Body)
		}
		// Wrong client credentials are refused whatever the token.
		r = revoke(l.RefreshToken, basic("x", otherLastChar(k.Key)))
		checkErr(t, "bad client", r.StatusCode(), r.Body, 401, "invalid_client")
	})
}

func TestTokenExchangeRFC8693(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "ada@example.com")
		org := createOrg(t, s, ada.AccessToken, "Acme")
		if r, err := s.Client.SetAudiencesWithResponse(ctx, org.Id, client.SetAudiencesJSONRequestBody{Audiences: []string{"https://api.acme.test"}},
			testutil.Bearer(ada.AccessToken)); err != nil || r.StatusCode() != 200 {
			t.Fatalf("audiences: %v", err)
		}
		k := createOrgKey(t, s, testutil.Bearer(ada.AccessToken), org.Id, "token:exchange", "billing:read", "billing:write")
		te := client.GrantType("urn:ietf:params:oauth:grant-type:token-exchange")
		apiKeyType := client.TokenType("urn:latch:params:oauth:token-type:api_key")
		atType := client.TokenType("urn:ietf:params:oauth:token-type:access_token")
		form := func(b client.TokenRequest) *client.ExchangeTokenResponse {
			t.Helper()
			res, err := s.Client.ExchangeTokenWithFormdataBodyWithResponse(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		// An API key as subject.
		res := form(client.TokenRequest{GrantType: te, SubjectToken: &k.Key, SubjectTokenType: &apiKeyType})
		if res.StatusCode() != 200 || res.JSON200.IssuedTokenType == nil || res.JSON200.Scope != "billing:read billing:write" {
			t.Fatalf("api key subject: %d %s", res.StatusCode(), res.Body)
		}
		wide := res.JSON200.AccessToken
		c := verifyJWT(t, s, wide, "latch")
		var raw map[string]any
		p, _, _ := jwt.NewParser().ParseUnverified(wide, jwt.MapClaims{})
		b, _ := json.Marshal(p.Claims)
		_ = json.Unmarshal(b, &raw)
		if raw["client_id"] != k.Id.String() || raw["auth_time"] == nil || c.OrgID != org.Id.String() {
			t.Fatalf("claims: %v", raw)
		}
		// Narrowing an access token: fewer scopes, a registered audience.
		narrow, aud := "billing:read", "https://api.acme.test"
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &wide, SubjectTokenType: &atType, Scope: &narrow, Resource: &aud})
		if res.StatusCode() != 200 || res.JSON200.Scope != "billing:read" {
			t.Fatalf("narrowing: %d %s", res.StatusCode(), res.Body)
		}
		nc := verifyJWT(t, s, res.JSON200.AccessToken, aud)
		if !nc.ExpiresAt.Time.Before(c.ExpiresAt.Time.Add(time.Second)) {
			t.Fatalf("the narrowed token outlives its subject: %v > %v", nc.ExpiresAt, c.ExpiresAt)
		}
		// Never widen: a narrowed token cannot get its scope back.
		narrowed := ""
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &wide, SubjectTokenType: &atType, Scope: &narrow})
		narrowed = res.JSON200.AccessToken
		both := "billing:read billing:write"
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &narrowed, SubjectTokenType: &atType, Scope: &both})
		checkErr(t, "widening", res.StatusCode(), res.Body, 400, "invalid_scope")
		other := "https://evil.test"
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &wide, SubjectTokenType: &atType, Audience: &other})
		checkErr(t, "unregistered audience", res.StatusCode(), res.Body, 400, "invalid_target")
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &ada.AccessToken, SubjectTokenType: &atType})
		checkErr(t, "session token", res.StatusCode(), res.Body, 400, "invalid_request")
		bad := otherLastChar(k.Key)
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &bad, SubjectTokenType: &apiKeyType})
		checkErr(t, "bad subject key", res.StatusCode(), res.Body, 400, "invalid_request")
		res = form(client.TokenRequest{GrantType: te})
		checkErr(t, "no subject", res.StatusCode(), res.Body, 400, "invalid_request")
		// Once the key is revoked, its tokens exchange to nothing.
		if r, _ := s.Client.RevokeOrgAPIKeyWithResponse(ctx, org.Id, k.Id, testutil.Bearer(ada.AccessToken)); r.StatusCode() != 204 {
			t.Fatalf("revoke key: %d", r.StatusCode())
		}
		res = form(client.TokenRequest{GrantType: te, SubjectToken: &wide, SubjectTokenType: &atType})
		checkErr(t, "revoked key's token", res.StatusCode(), res.Body, 400, "invalid_request")
	})
}

func TestBasicCredentialsAreFormDecoded(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	ada := signup(t, s, "ada@example.com")
	k := createKey(t, s, testutil.Bearer(ada.AccessToken), "worker", "token:exchange", "billing:read")
	cc := client.GrantType("client_credentials")
	res, err := s.Client.ExchangeTokenWithFormdataBodyWithResponse(context.Background(), client.TokenRequest{GrantType: cc}, basic("my backend", k.Key))
	if err != nil || res.StatusCode() != 200 {
		t.Fatalf("encoded Basic: %v %d %s", err, res.StatusCode(), res.Body)
	}
	res, _ = s.Client.ExchangeTokenWithFormdataBodyWithResponse(context.Background(), client.TokenRequest{GrantType: cc}, basic("x", otherLastChar(k.Key)))
	checkErr(t, "bad Basic", res.StatusCode(), res.Body, 401, "invalid_client")
	if h := res.HTTPResponse.Header.Get("WWW-Authenticate"); h != `Basic realm="latch"` {
		t.Fatalf("WWW-Authenticate %q", h)
	}
	if res.JSON401 == nil || res.JSON401.ErrorDescription == nil || *res.JSON401.ErrorDescription != res.JSON401.Message {
		t.Fatalf("error_description: %s", res.Body)
	}
	r, body := do(t, s, "POST", "/auth/token", "application/x-www-form-urlencoded", []byte("grant_type=client_credentials"),
		map[string]string{"Authorization": "Basic " + "eDolWlo="}) // "x:%ZZ"
	checkErr(t, "undecodable Basic", r.StatusCode, body, 401, "invalid_client")
}

func TestUserInfo(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	ada := signup(t, s, "ada@example.com")
	res, err := s.Client.GetUserInfoWithResponse(context.Background(), testutil.Bearer(ada.AccessToken))
	if err != nil || res.JSON200 == nil || res.JSON200.Sub != ada.User.Id || res.JSON200.Email == nil ||
		string(*res.JSON200.Email) != "ada@example.com" || res.JSON200.EmailVerified == nil || !*res.JSON200.EmailVerified {
		t.Fatalf("userinfo: %v %s", err, res.Body)
	}
	k := createKey(t, s, testutil.Bearer(ada.AccessToken), "worker", "token:exchange", "billing:read")
	ex := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key))
	res, _ = s.Client.GetUserInfoWithResponse(context.Background(), testutil.Bearer(ex.JSON200.AccessToken))
	checkErr(t, "exchanged token", res.StatusCode(), res.Body, 401, "invalid_token")
}

func TestPagesAndFavicon(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	for _, p := range []string{"/reset-password", "/verify-email", "/accept-invitation"} {
		res, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("%s: %d %v", p, res.StatusCode, res.Header)
		}
	}
	res, err := http.Get(s.URL + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := make([]byte, 4)
	if _, err := res.Body.Read(b); err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/x-icon" || string(b) != "\x00\x00\x01\x00" {
		t.Fatalf("favicon: %d %v %q", res.StatusCode, res.Header, b)
	}
}
