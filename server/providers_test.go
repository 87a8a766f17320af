package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/latchauth/latch/client"
	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/testutil"
)

// appRedirect is the test application's page that provider sign-ins
// return to (never opened: the tests read the Location that points at it).
const appRedirect = "https://app.example.test/auth/callback"

const opClientID, opClientSecret = "latch-test", "latch-test-secret-0123456789"

// startOIDCProvider starts interop/oidc-provider.mjs (the oidc-provider
// package, a real OpenID provider) and returns its issuer and a function
// that registers Latch's client with the redirect URIs and waits until it
// serves. It stops with the test.
func startOIDCProvider(t *testing.T) (string, func(redirectURIs ...string)) {
	t.Helper()
	script, err := filepath.Abs("../interop/oidc-provider.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("../interop/node_modules/oidc-provider/package.json"); err != nil {
		t.Fatalf("oidc-provider is not installed: run (cd interop && npm ci), which make test does: %v", err)
	}
	cmd := exec.Command("node", script)
	cmd.Dir = filepath.Dir(script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := bufio.NewScanner(stdout)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("oidc-provider stopped: %v %s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("oidc-provider said %q: %v", lines.Text(), err)
		}
	}
	var hello struct{ Issuer string }
	next(&hello)
	return hello.Issuer, func(redirectURIs ...string) {
		t.Helper()
		// A second client authenticates with private_key_jwt (opPKJWT).
		pkjwt := map[string]any{"client_id": opPKJWTClientID, "redirect_uris": redirectURIs, "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256", "jwks": map[string]any{"keys": []any{opPKJWTKey.jwk}}}
		b, _ := json.Marshal(map[string]any{"client_id": opClientID, "client_secret": opClientSecret, "redirect_uris": redirectURIs,
			"extra_clients": []any{pkjwt}})
		if _, err := stdin.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		var ready struct{ Ready bool }
		next(&ready)
		if !ready.Ready {
			t.Fatal("oidc-provider is not ready")
		}
	}
}

const opPKJWTClientID = "latch-test-pkjwt"

// opPKJWTKey is the EC P-256 key with which Latch authenticates as
// opPKJWTClientID (private_key_jwt); oidc-provider holds its public JWK.
var opPKJWTKey = func() struct {
	pem string
	jwk map[string]string
} {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		panic(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	return struct {
		pem string
		jwk map[string]string
	}{string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), map[string]string{"kty": "EC", "crv": "P-256", "kid": "latch-test-key",
		"alg": "ES256", "use": "sig", "x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])}}
}()

// withProviders configures providers and the test application's redirect
// URL, with Latch's public URL its own (the callbacks come back to it).
func withProviders(ps ...service.ProviderConfig) testutil.Option {
	return func(c *app.Config) {
		testutil.OwnPublicURL(c)
		c.Providers = ps
		c.RedirectURLs = []string{appRedirect}
	}
}

// startWithOP starts Latch with the oidc-provider as provider "op" (and
// "op-mfa", the same provider trusted for MFA) plus extra providers.
func startWithOP(t *testing.T, d string, extra ...service.ProviderConfig) *testutil.Server {
	t.Helper()
	issuer, register := startOIDCProvider(t)
	ps := append([]service.ProviderConfig{
		{ID: "op", Kind: service.ProviderOIDC, Issuer: issuer, ClientID: opClientID, ClientSecret: opClientSecret},
		{ID: "op-mfa", Kind: service.ProviderOIDC, Issuer: issuer, ClientID: opClientID, ClientSecret: opClientSecret, TrustMFA: true},
		{ID: "op-pkjwt", Kind: service.ProviderOIDC, Issuer: issuer, ClientID: opPKJWTClientID, PrivateKey: opPKJWTKey.pem, KeyID: "latch-test-key"},
	}, extra...)
	s := testutil.Start(t, d, withProviders(ps...))
	register(s.URL+"/auth/providers/op/callback", s.URL+"/auth/providers/op-mfa/callback", s.URL+"/auth/providers/op-pkjwt/callback")
	return s
}

// browser is an HTTP client with a cookie jar that follows no redirect
// by itself: the tests read each step.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

var (
	formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
	formPrompt = regexp.MustCompile(`name="prompt" value="([a-z]+)"`)
)

// challenge is PKCE S256 of the verifier.
func challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

const appVerifier = "app-verifier-0123456789-0123456789-0123456789"

// authorizeURL is Latch's authorize URL for the provider.
func authorizeURL(s *testutil.Server, provider string) string {
	q := url.Values{"redirect_to": {appRedirect}, "code_challenge": {challenge(appVerifier)}, "code_challenge_method": {"S256"}}
	return s.URL + "/auth/providers/" + provider + "/authorize?" + q.Encode()
}

// toProvider starts a sign-in at Latch's authorize URL u and signs in at
// the provider as login (its development pages: login, then consent), and
// returns the provider's redirect back to Latch's callback, not followed.
func (b *browser) toProvider(u, login string) string {
	b.t.Helper()
	res, body := b.get(u)
	if res.StatusCode != http.StatusFound {
		b.t.Fatalf("authorize: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	latch := u[:strings.Index(u, "/auth/")]
	for range 20 {
		if strings.HasPrefix(loc, latch) {
			return loc
		}
		res, body = b.get(loc)
		switch {
		case res.StatusCode >= 300 && res.StatusCode < 400:
			next, err := res.Request.URL.Parse(res.Header.Get("Location"))
			if err != nil {
				b.t.Fatal(err)
			}
			loc = next.String()
		case res.StatusCode == http.StatusOK:
			m, p := formAction.FindStringSubmatch(body), formPrompt.FindStringSubmatch(body)
			if m == nil || p == nil {
				b.t.Fatalf("the provider's page has no form: %s", body)
			}
			action, _ := res.Request.URL.Parse(html.UnescapeString(m[1]))
			form := url.Values{"prompt": {p[1]}}
			if p[1] == "login" {
				form.Set("login", login)
				form.Set("password", "any password")
			}
			req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, body = b.do(req)
			if res.StatusCode < 300 || res.StatusCode >= 400 {
				b.t.Fatalf("the provider's %s form: %d %s", p[1], res.StatusCode, body)
			}
			next, _ := res.Request.URL.Parse(res.Header.Get("Location"))
			loc = next.String()
		default:
			b.t.Fatalf("the provider answered %d: %s", res.StatusCode, body)
		}
	}
	b.t.Fatal("the provider never sent the browser back to Latch")
	return ""
}

// callback opens Latch's callback URL and returns the query of the
// application URL it redirects to.
func (b *browser) callback(u string) url.Values {
	b.t.Helper()
	res, body := b.get(u)
	if res.StatusCode != http.StatusFound {
		b.t.Fatalf("callback: %d %s", res.StatusCode, body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), appRedirect+"?") {
		b.t.Fatalf("callback went to %q", res.Header.Get("Location"))
	}
	return loc.Query()
}

// signIn runs a whole provider sign-in and returns the application's
// query (code, or error).
func signInWith(t *testing.T, s *testutil.Server, provider, login string) url.Values {
	t.Helper()
	b := newBrowser(t)
	return b.callback(b.toProvider(authorizeURL(s, provider), login))
}

type codeTokens struct {
	status int
	body   []byte
	resp   client.ExchangeResponse
}

// exchangeCode redeems a Latch code at /auth/token.
func exchangeCode(t *testing.T, s *testutil.Server, code, verifier string) codeTokens {
	t.Helper()
	res, err := s.Doer.PostForm(s.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := codeTokens{status: res.StatusCode}
	out.body, _ = io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(out.body, &out.resp); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func wantCodeTokens(t *testing.T, got codeTokens) client.ExchangeResponse {
	t.Helper()
	if got.status != http.StatusOK || got.resp.RefreshToken == nil || got.resp.User == nil || got.resp.SessionId == nil {
		t.Fatalf("code exchange: %d %s", got.status, got.body)
	}
	return got.resp
}

// The whole flow against a real OpenID provider: a new account is made
// with the provider's verified email, the code opens an aal1 session with
// amr fed, and a second sign-in finds the same user.
func TestProviderSignIn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)
		ctx := context.Background()
		list, err := s.Client.ListProvidersWithResponse(ctx)
		if err != nil || list.JSON200 == nil || len(list.JSON200.Providers) != 3 || list.JSON200.Providers[0].Id != "op" {
			t.Fatalf("providers: %v %s", err, list.Body)
		}
		q := signInWith(t, s, "op", "ada@example.com")
		tok := wantCodeTokens(t, exchangeCode(t, s, q.Get("code"), appVerifier))
		if string(*tok.User.Email) != "ada@example.com" || !tok.User.EmailVerified || *tok.Aal != client.Aal1 || tok.Mfa != nil {
			t.Fatalf("tokens: %s", mustJSON(tok))
		}
		wantAssurance(t, tok.AccessToken, "aal1", "fed")
		me, err := s.Client.GetMeWithResponse(ctx, testutil.Bearer(tok.AccessToken))
		if err != nil || me.JSON200 == nil || me.JSON200.Id != tok.User.Id {
			t.Fatalf("me: %v %s", err, me.Body)
		}
		// The refresh token works like a login's.
		ref, err := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: *tok.RefreshToken})
		if err != nil || ref.JSON200 == nil {
			t.Fatalf("refresh: %v %s", err, ref.Body)
		}
		again := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "ada@example.com").Get("code"), appVerifier))
		if again.User.Id != tok.User.Id {
			t.Fatalf("a second sign-in made another user: %s", again.User.Id)
		}
		// Latch authenticates to the provider with private_key_jwt for
		// "op-pkjwt" (a client of its own: another identity, the same
		// verified email, so the same user).
		pk := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op-pkjwt", "ada@example.com").Get("code"), appVerifier))
		if pk.User.Id != tok.User.Id {
			t.Fatalf("the private_key_jwt sign-in made another user: %s", pk.User.Id)
		}
		ids, err := s.Client.ListIdentitiesWithResponse(ctx, testutil.Bearer(tok.AccessToken))
		if err != nil || ids.JSON200 == nil || len(ids.JSON200.Identities) != 2 || ids.JSON200.Identities[0].Kind != client.IdentityKindProvider {
			t.Fatalf("identities: %v %s", err, ids.Body)
		}
		// One of two identities goes; the only way left to sign in stays.
		del, err := s.Client.DeleteIdentityWithResponse(ctx, ids.JSON200.Identities[0].Id, testutil.Bearer(tok.AccessToken))
		if err != nil || del.StatusCode() != http.StatusNoContent {
			t.Fatalf("unlink one of two: %v %s", err, del.Body)
		}
		del, err = s.Client.DeleteIdentityWithResponse(ctx, ids.JSON200.Identities[1].Id, testutil.Bearer(tok.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "unlink the last identity", del.StatusCode(), del.Body, client.ErrorCodeLastIdentity)
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The one-time code: single use (a replay is refused), bound to the
// application's PKCE verifier (a wrong one spends it), 60 seconds.
func TestProviderCodeAttacks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)
		code := signInWith(t, s, "op", "ada@example.com").Get("code")
		wantCodeTokens(t, exchangeCode(t, s, code, appVerifier))
		replay := exchangeCode(t, s, code, appVerifier)
		wantError(t, "replayed code", replay.status, replay.body, client.ErrorCodeInvalidGrant)

		code = signInWith(t, s, "op", "ada@example.com").Get("code")
		wrong := exchangeCode(t, s, code, "another-verifier-0123456789-0123456789-0123")
		wantError(t, "wrong verifier", wrong.status, wrong.body, client.ErrorCodeInvalidGrant)
		spent := exchangeCode(t, s, code, appVerifier)
		wantError(t, "the right verifier after a wrong one", spent.status, spent.body, client.ErrorCodeInvalidGrant)

		code = signInWith(t, s, "op", "ada@example.com").Get("code")
		s.Clock.Advance(61 * time.Second)
		late := exchangeCode(t, s, code, appVerifier)
		wantError(t, "expired code", late.status, late.body, client.ErrorCodeInvalidGrant)
	})
}

// The callback's checks: the state must be this flow's (and is good once),
// the browser must be the one that started it (a sign-in cannot be forced
// on someone else), and RFC 9207's iss must be the provider's issuer.
func TestProviderCallbackAttacks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)

		// A wrong state: no flow, so no redirect_to: a JSON error.
		b := newBrowser(t)
		back, _ := url.Parse(b.toProvider(authorizeURL(s, "op"), "ada@example.com"))
		q := back.Query()
		q.Set("state", "tampered-state-0123456789-0123456789-012345")
		tampered := *back
		tampered.RawQuery = q.Encode()
		res, body := b.get(tampered.String())
		wantError(t, "wrong state", res.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)
		// The real answer still works once, and a replay of it does not.
		if got := b.callback(back.String()); got.Get("code") == "" {
			t.Fatalf("the real answer: %v", got)
		}
		res, body = b.get(back.String())
		wantError(t, "replayed state", res.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)

		// Another browser (the attacker's answer opened by a victim): the
		// flow is spent with an error, and no code is issued.
		attacker := newBrowser(t)
		answer := attacker.toProvider(authorizeURL(s, "op"), "mallory@example.com")
		victim := newBrowser(t)
		if got := victim.callback(answer); got.Get("error") != "invalid_request" || got.Get("code") != "" {
			t.Fatalf("another browser: %v", got)
		}
		res, body = attacker.get(answer)
		wantError(t, "the attacker's own answer after the victim opened it", res.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)

		// A wrong iss (a mix-up: another provider's answer).
		b = newBrowser(t)
		back, _ = url.Parse(b.toProvider(authorizeURL(s, "op"), "ada@example.com"))
		q = back.Query()
		if q.Get("iss") == "" {
			t.Fatal("oidc-provider sent no iss (RFC 9207)")
		}
		q.Set("iss", "https://evil.example.test")
		back.RawQuery = q.Encode()
		if got := b.callback(back.String()); got.Get("error") != "invalid_request" || got.Get("code") != "" {
			t.Fatalf("wrong iss: %v", got)
		}
		// And a missing iss from a provider that promises it.
		b = newBrowser(t)
		back, _ = url.Parse(b.toProvider(authorizeURL(s, "op"), "ada@example.com"))
		q = back.Query()
		q.Del("iss")
		back.RawQuery = q.Encode()
		if got := b.callback(back.String()); got.Get("error") != "invalid_request" {
			t.Fatalf("missing iss: %v", got)
		}

		// A redirect_to off the allow-list is refused before anything.
		u := strings.Replace(authorizeURL(s, "op"), url.QueryEscape(appRedirect), url.QueryEscape("https://evil.example.test/cb"), 1)
		res, body = newBrowser(t).get(u)
		wantError(t, "redirect_to off the list", res.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)
		u = strings.Replace(authorizeURL(s, "op"), url.QueryEscape(appRedirect), url.QueryEscape(appRedirect+"/../x"), 1)
		res, body = newBrowser(t).get(u)
		wantError(t, "redirect_to beside the listed one", res.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)
	})
}

// Linking by email: automatic only when both the provider and the account
// verified the address; otherwise identity_not_linked, and a signed-in
// user links explicitly.
func TestProviderLinking(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)
		ada := signup(t, s, "ada@example.com") // verified

		// The provider does not vouch for the email: no takeover.
		if q := signInWith(t, s, "op", "unverified:ada@example.com"); q.Get("error") != "identity_not_linked" || q.Get("code") != "" {
			t.Fatalf("unverified provider email: %v", q)
		}
		// Both verified: the provider's identity joins the account.
		tok := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "ada@example.com").Get("code"), appVerifier))
		if tok.User.Id != ada.User.Id {
			t.Fatalf("verified emails on both sides made a new user %s", tok.User.Id)
		}

		// The account did not verify its email: no link either (an
		// attacker may have signed up with the victim's address first).
		signupUnverified(t, s, "bob@example.com")
		if q := signInWith(t, s, "op", "bob@example.com"); q.Get("error") != "identity_not_linked" || q.Get("code") != "" {
			t.Fatalf("unverified account: %v", q)
		}
		// No account with the email: a new one, unverified when the
		// provider does not vouch for it.
		tok = wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "unverified:carol@example.com").Get("code"), appVerifier))
		if tok.User.EmailVerified || string(*tok.User.Email) != "carol@example.com" {
			t.Fatalf("new unverified user: %s", mustJSON(tok.User))
		}
	})
}

// Linking while signed in: POST .../link gives the authorize URL with a
// link token; the flow returns a code that only the user's own session
// with the PKCE verifier redeems (POST /auth/identities), so a leaked link
// URL attaches nothing; then the identity signs in to the user whatever its
// email, and can be unlinked while a password remains.
func TestProviderLinkWhileSignedIn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)
		ctx := context.Background()
		ada := signup(t, s, "ada@example.com")
		startLink := func(tok string) string {
			t.Helper()
			link, err := s.Client.LinkProviderWithResponse(ctx, "op", client.LinkProviderJSONRequestBody{RedirectTo: appRedirect,
				CodeChallenge: challenge(appVerifier)}, testutil.Bearer(tok))
			if err != nil || link.JSON200 == nil {
				t.Fatalf("link: %v %s", err, link.Body)
			}
			return link.JSON200.Url
		}
		confirm := func(tok, code, verifier string) *client.LinkIdentityResponse {
			t.Helper()
			res, err := s.Client.LinkIdentityWithResponse(ctx, client.LinkIdentityJSONRequestBody{Code: code, CodeVerifier: verifier}, testutil.Bearer(tok))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		linkURL := startLink(ada.AccessToken)
		b := newBrowser(t)
		q := b.callback(b.toProvider(linkURL, "unverified:ada-at-work@example.org"))
		if q.Get("flow") != "link" || q.Get("code") == "" {
			t.Fatalf("link flow: %v", q)
		}
		// The link code is no sign-in code.
		signInTry := exchangeCode(t, s, q.Get("code"), appVerifier)
		wantError(t, "a link code at /auth/token", signInTry.status, signInTry.body, client.ErrorCodeInvalidGrant)
		linkURL = startLink(ada.AccessToken)
		b = newBrowser(t)
		q = b.callback(b.toProvider(linkURL, "unverified:ada-at-work@example.org"))
		res := confirm(ada.AccessToken, q.Get("code"), appVerifier)
		if res.JSON201 == nil || *res.JSON201.Provider != "op" {
			t.Fatalf("confirm: %d %s", res.StatusCode(), res.Body)
		}
		// The link token was single use.
		r, body := newBrowser(t).get(linkURL)
		wantError(t, "a used link token", r.StatusCode, []byte(body), client.ErrorCodeInvalidRequest)
		// The identity now signs in to ada.
		tok := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "unverified:ada-at-work@example.org").Get("code"), appVerifier))
		if tok.User.Id != ada.User.Id {
			t.Fatalf("the linked identity signed in %s", tok.User.Id)
		}

		// A leaked link URL: mallory opens it and signs in at the provider
		// as herself; the code comes back to her, and neither her session
		// nor a wrong verifier redeems it.
		leaked := startLink(ada.AccessToken)
		mallory := signup(t, s, "mallory@example.com")
		b = newBrowser(t)
		q = b.callback(b.toProvider(leaked, "mallory@example.com"))
		res = confirm(mallory.AccessToken, q.Get("code"), appVerifier)
		wantError(t, "another user's link code", res.StatusCode(), res.Body, client.ErrorCodeInvalidGrant)
		b = newBrowser(t)
		q = b.callback(b.toProvider(startLink(ada.AccessToken), "mallory@example.com"))
		res = confirm(ada.AccessToken, q.Get("code"), "wrong-verifier-0123456789-0123456789-012345")
		wantError(t, "a wrong verifier", res.StatusCode(), res.Body, client.ErrorCodeInvalidGrant)
		res = confirm(ada.AccessToken, q.Get("code"), appVerifier)
		wantError(t, "the code after a wrong verifier", res.StatusCode(), res.Body, client.ErrorCodeInvalidGrant)
		if got := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "mallory@example.com").Get("code"), appVerifier)); got.User.Id != mallory.User.Id {
			t.Fatalf("mallory's identity signs in %s, not mallory", got.User.Id)
		}

		ids, err := s.Client.ListIdentitiesWithResponse(ctx, testutil.Bearer(ada.AccessToken))
		if err != nil || ids.JSON200 == nil || len(ids.JSON200.Identities) != 2 {
			t.Fatalf("identities: %v %s", err, ids.Body)
		}
		var provider client.Identity
		for _, i := range ids.JSON200.Identities {
			if i.Kind == client.IdentityKindProvider {
				provider = i
			}
		}
		del, err := s.Client.DeleteIdentityWithResponse(ctx, provider.Id, testutil.Bearer(ada.AccessToken))
		if err != nil || del.StatusCode() != http.StatusNoContent {
			t.Fatalf("unlink: %v %d %s", err, del.StatusCode(), del.Body)
		}
		// Another user cannot take an identity someone holds.
		bob := signup(t, s, "bob@example.com")
		wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "carol@example.com").Get("code"), appVerifier))
		b = newBrowser(t)
		q = b.callback(b.toProvider(startLink(bob.AccessToken), "carol@example.com"))
		res = confirm(bob.AccessToken, q.Get("code"), appVerifier)
		wantError(t, "linking carol's identity to bob", res.StatusCode(), res.Body, client.ErrorCodeConflict)
	})
}

// A user with a second factor still needs it after a provider sign-in,
// unless the provider is trusted for MFA and its ID token's amr says mfa.
func TestProviderSignInAndMFA(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := startWithOP(t, d)
		ada := signup(t, s, "ada@example.com")
		enrollTOTP(t, s, ada.AccessToken)
		tok := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "ada@example.com").Get("code"), appVerifier))
		if *tok.Aal != client.Aal1 || tok.Mfa == nil || len(tok.Mfa.Factors) != 1 {
			t.Fatalf("a provider sign-in skipped the second factor: %s", mustJSON(tok))
		}
		// The provider proved MFA, but Latch does not trust "op" for it.
		tok = wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op", "mfa:ada@example.com").Get("code"), appVerifier))
		if *tok.Aal != client.Aal1 || tok.Mfa == nil {
			t.Fatalf("an untrusted provider's amr raised the session: %s", mustJSON(tok))
		}
		// "op-mfa" is trusted, and its ID token's amr holds mfa.
		tok = wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op-mfa", "mfa:ada@example.com").Get("code"), appVerifier))
		if *tok.Aal != client.Aal2 || tok.Mfa != nil || tok.User.Id != ada.User.Id {
			t.Fatalf("a trusted provider's MFA: %s", mustJSON(tok))
		}
		wantAssurance(t, tok.AccessToken, "aal2", "fed", "mfa")
		// Trusted, but this sign-in was one factor: still aal1.
		tok = wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "op-mfa", "ada@example.com").Get("code"), appVerifier))
		if *tok.Aal != client.Aal1 || tok.Mfa == nil {
			t.Fatalf("a trusted provider without mfa: %s", mustJSON(tok))
		}
	})
}

// The Go SDK's half of a provider sign-in (a server-side application):
// ProviderAuthorizeURL, the browser's trip, ExchangeCode; the session is the
// SDK client's, and a second exchange of the code is ErrInvalidGrant.
func TestProviderSignInGoSDK(t *testing.T) {
	s := startWithOP(t, "sqlite")
	ctx := context.Background()
	c, err := sdk.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	start, err := c.ProviderAuthorizeURL("op", appRedirect)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(start.URL); u.Query().Get("code_challenge") != challenge(start.Verifier) {
		t.Fatalf("the authorize URL's challenge is not the verifier's: %s", start.URL)
	}
	b := newBrowser(t)
	code := b.callback(b.toProvider(start.URL, "gopher@example.com")).Get("code")
	res, err := c.ExchangeCode(ctx, code, start.Verifier)
	if err != nil || res.MFA != nil || res.Tokens.Aal != client.Aal1 {
		t.Fatalf("exchange: %+v %v", res, err)
	}
	me, err := c.Me(ctx)
	if err != nil || string(*me.Email) != "gopher@example.com" {
		t.Fatalf("me: %+v %v", me, err)
	}
	if _, err := c.ExchangeCode(ctx, code, start.Verifier); !errors.Is(err, sdk.ErrInvalidGrant) {
		t.Fatalf("a replayed code: %v", err)
	}
}

// Two instances behind one public URL share the flow through the database:
// the sign-in starts on one, the provider's answer reaches the other, and
// the code is exchanged on the first.
func TestProviderSignInAcrossInstances(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	issuer, register := startOIDCProvider(t)
	ps := []service.ProviderConfig{{ID: "op", Kind: service.ProviderOIDC, Issuer: issuer, ClientID: opClientID, ClientSecret: opClientSecret}}
	a := testutil.StartURL(t, dbURL, withProviders(ps...))
	b := testutil.StartURL(t, dbURL, withProviders(ps...), func(c *app.Config) { c.Recovery.PublicURL = a.URL })
	register(a.URL + "/auth/providers/op/callback")
	br := newBrowser(t)
	back := br.toProvider(authorizeURL(a, "op"), "ada@example.com")
	q := br.callback(strings.Replace(back, a.URL, b.URL, 1))
	tok := wantCodeTokens(t, exchangeCode(t, a, q.Get("code"), appVerifier))
	if string(*tok.User.Email) != "ada@example.com" {
		t.Fatalf("tokens: %s", mustJSON(tok))
	}
}
