package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/internal/service"
)

// standInOP is a tiny OpenID provider made for the attacks oidc-provider
// will not commit: an ID token with another nonce, for another audience,
// or expired. It is used for THOSE cases only (issue 25 allows it); every
// other test runs against the real oidc-provider. Each mode is its own
// issuer, {URL}/{mode}: good, bad-nonce, bad-aud, expired. Its keys are
// served from a local JWKS; the authorization endpoint answers at once.
type standInOP struct {
	*httptest.Server
	key *rsa.PrivateKey
	mu  sync.Mutex
	// codes maps a code to the nonce and PKCE challenge of its request.
	codes map[string][2]string
}

func newStandInOP(t *testing.T) *standInOP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &standInOP{key: key, codes: map[string][2]string{}}
	op.Server = httptest.NewServer(http.HandlerFunc(op.serve))
	t.Cleanup(op.Close)
	return op
}

func (op *standInOP) serve(w http.ResponseWriter, r *http.Request) {
	mode, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	issuer := op.URL + "/" + mode
	w.Header().Set("Content-Type", "application/json")
	switch rest {
	case ".well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
			"token_endpoint": issuer + "/token", "jwks_uri": issuer + "/jwks", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	case "jwks":
		pub := op.key.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]string{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}}})
	case "authorize":
		q := r.URL.Query()
		code := base64.RawURLEncoding.EncodeToString([]byte(q.Get("state")))[:16]
		op.mu.Lock()
		op.codes[code] = [2]string{q.Get("nonce"), q.Get("code_challenge")}
		op.mu.Unlock()
		if q.Get("response_mode") == "form_post" {
			// As Apple answers: a page that posts the answer cross-site.
			w.Header().Set("Content-Type", "text/html")
			_, _ = fmt.Fprintf(w, `<form method="post" action="%s"><input type="hidden" name="code" value="%s"><input type="hidden" name="state" value="%s"></form>`,
				html.EscapeString(q.Get("redirect_uri")), code, html.EscapeString(q.Get("state")))
			return
		}
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	case "token":
		_ = r.ParseForm()
		op.mu.Lock()
		req, ok := op.codes[r.PostForm.Get("code")]
		delete(op.codes, r.PostForm.Get("code"))
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != req[1] {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		claims := jwt.MapClaims{"iss": issuer, "sub": "stand-in-subject", "aud": opClientID, "nonce": req[0],
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": "stan@example.com", "email_verified": true}
		switch mode {
		case "bad-nonce":
			claims["nonce"] = "another-nonce"
		case "bad-aud":
			claims["aud"] = "another-client"
		case "expired":
			claims["iat"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		signed, _ := tok.SignedString(op.key)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + mode, "token_type": "Bearer", "expires_in": 300, "id_token": signed})
	default:
		http.NotFound(w, r)
	}
}

func (op *standInOP) provider(mode string) service.ProviderConfig {
	return service.ProviderConfig{ID: "standin-" + mode, Kind: service.ProviderOIDC, Issuer: op.URL + "/" + mode,
		ClientID: opClientID, ClientSecret: opClientSecret}
}

// The ID token's own checks: a token with another nonce (an injected
// token), for another audience (a token issued to another client), or
// expired is refused; the same stand-in's good token signs in.
func TestProviderIDTokenAttacks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		op := newStandInOP(t)
		s := startWithOP(t, d, op.provider("good"), op.provider("bad-nonce"), op.provider("bad-aud"), op.provider("expired"))
		ok := signInWith(t, s, "standin-good", "")
		if ok.Get("code") == "" {
			t.Fatalf("the stand-in's good token: %v", ok)
		}
		wantCodeTokens(t, exchangeCode(t, s, ok.Get("code"), appVerifier))
		for mode, why := range map[string]string{"bad-nonce": "nonce", "bad-aud": "does not verify", "expired": "does not verify"} {
			if q := signInWith(t, s, "standin-"+mode, ""); q.Get("error") != "invalid_request" || q.Get("code") != "" ||
				!strings.Contains(q.Get("error_description"), why) {
				t.Fatalf("%s: %v", mode, q)
			}
		}
	})
}

// A form_post provider (as Apple) answers with a cross-site POST to the
// callback: the same checks and the same code.
func TestProviderFormPost(t *testing.T) {
	op := newStandInOP(t)
	fp := op.provider("good")
	fp.ID, fp.ResponseMode = "formpost", "form_post"
	s := startWithOP(t, "sqlite", fp)
	b := newBrowser(t)
	res, body := b.get(authorizeURL(s, "formpost"))
	if res.StatusCode != http.StatusFound || !strings.Contains(res.Header.Get("Location"), "response_mode=form_post") {
		t.Fatalf("authorize: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
	}
	res, body = b.get(res.Header.Get("Location"))
	fields := regexp.MustCompile(`name="([a-z]+)" value="([^"]*)"`).FindAllStringSubmatch(body, -1)
	action := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || len(fields) != 2 || action == nil {
		t.Fatalf("the provider's form: %d %s", res.StatusCode, body)
	}
	form := url.Values{}
	for _, f := range fields {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	post := func(b *browser) url.Values {
		req, _ := http.NewRequest(http.MethodPost, html.UnescapeString(action[1]), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, body := b.do(req)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc == nil {
			t.Fatalf("form_post callback: %d %s", res.StatusCode, body)
		}
		return loc.Query()
	}
	// Another browser is refused; the flow is then spent.
	if q := post(newBrowser(t)); q.Get("error") != "invalid_request" {
		t.Fatalf("form_post from another browser: %v", q)
	}
	b = newBrowser(t)
	res, _ = b.get(authorizeURL(s, "formpost"))
	res, body = b.get(res.Header.Get("Location"))
	for _, f := range regexp.MustCompile(`name="([a-z]+)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		form.Set(f[1], html.UnescapeString(f[2]))
	}
	q := post(b)
	wantCodeTokens(t, exchangeCode(t, s, q.Get("code"), appVerifier))
}

// githubStandIn is a small local server that follows GitHub's documented
// OAuth endpoints and answers (/login/oauth/authorize,
// /login/oauth/access_token, /user, /user/emails): GitHub cannot be
// reached from the tests, and this is the only stand-in for it. Its one
// user is 4242 with a verified primary email and an unverified other.
func githubStandIn(t *testing.T, primaryVerified bool) *httptest.Server {
	var mu sync.Mutex
	challenges := map[string]string{} // code -> PKCE challenge
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login/oauth/authorize":
			q := r.URL.Query()
			if q.Get("client_id") != "gh-client" || q.Get("code_challenge_method") != "S256" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			code := "gh-" + q.Get("state")[:8]
			mu.Lock()
			challenges[code] = q.Get("code_challenge")
			mu.Unlock()
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/login/oauth/access_token":
			_ = r.ParseForm()
			user, pass, _ := r.BasicAuth()
			if user == "" {
				user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
			}
			mu.Lock()
			ch, ok := challenges[r.PostForm.Get("code")]
			delete(challenges, r.PostForm.Get("code"))
			mu.Unlock()
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			w.Header().Set("Content-Type", "application/json")
			if user != "gh-client" || pass != "gh-secret" || !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != ch {
				// GitHub answers 200 with an error member.
				_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"gho_standin","token_type":"bearer","scope":"read:user,user:email"}`))
		case "/user", "/user/emails":
			if r.Header.Get("Authorization") != "Bearer gho_standin" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/user" {
				_, _ = w.Write([]byte(`{"login":"octo","id":4242,"email":null}`))
				return
			}
			_ = json.NewEncoder(w).Encode([]map[string]any{
				{"email": "octo@example.com", "primary": true, "verified": primaryVerified, "visibility": "private"},
				{"email": "octo@old.example.com", "primary": false, "verified": false, "visibility": nil}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func githubProvider(id, base string) service.ProviderConfig {
	return service.ProviderConfig{ID: id, Kind: service.ProviderGitHub, ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: base + "/login/oauth/authorize", TokenURL: base + "/login/oauth/access_token", APIURL: base}
}

// The GitHub preset: OAuth 2.0 with PKCE, the user's id as the subject and
// its primary email, verified only as /user/emails says.
func TestProviderGitHub(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		gh, ghUnverified := githubStandIn(t, true), githubStandIn(t, false)
		s := startWithOP(t, d, githubProvider("github", gh.URL), githubProvider("github-unverified", ghUnverified.URL))
		tok := wantCodeTokens(t, exchangeCode(t, s, signInWith(t, s, "github", "").Get("code"), appVerifier))
		if string(*tok.User.Email) != "octo@example.com" || !tok.User.EmailVerified {
			t.Fatalf("github user: %s", mustJSON(tok.User))
		}
		wantAssurance(t, tok.AccessToken, "aal1", "fed")
		// The same address unverified at GitHub does not join the account.
		if q := signInWith(t, s, "github-unverified", ""); q.Get("error") != "identity_not_linked" {
			t.Fatalf("github unverified email: %v", q)
		}
	})
}
