package contract

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchauth/latch/internal/service"
)

const appRedirect = "https://app.example.test/auth/callback"

// githubStandIn starts a small local server that follows GitHub's
// documented OAuth endpoints and answers (/login/oauth/authorize,
// /login/oauth/access_token, /user, /user/emails), the only stand-in for
// GitHub, which the tests cannot reach, and returns the GitHub preset
// pointed at it. The real OpenID provider runs in server/providers_test.go.
func githubStandIn(t *testing.T) service.ProviderConfig {
	var mu sync.Mutex
	challenges := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login/oauth/authorize":
			q := r.URL.Query()
			code := "gh-" + q.Get("state")[:8]
			mu.Lock()
			challenges[code] = q.Get("code_challenge")
			mu.Unlock()
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		case "/login/oauth/access_token":
			_ = r.ParseForm()
			mu.Lock()
			ch := challenges[r.PostForm.Get("code")]
			delete(challenges, r.PostForm.Get("code"))
			mu.Unlock()
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			w.Header().Set("Content-Type", "application/json")
			if ch == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != ch {
				_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"gho_contract","token_type":"bearer","scope":"read:user,user:email"}`))
		case "/user":
			_, _ = w.Write([]byte(`{"login":"octo","id":4242}`))
		case "/user/emails":
			_ = json.NewEncoder(w).Encode([]map[string]any{{"email": "octo@example.com", "primary": true, "verified": true}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return service.ProviderConfig{ID: "github", Kind: service.ProviderGitHub, ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: srv.URL + "/login/oauth/authorize", TokenURL: srv.URL + "/login/oauth/access_token", APIURL: srv.URL}
}

const contractVerifier = "contract-verifier-0123456789-0123456789-0123"

func contractChallenge() string {
	sum := sha256.Sum256([]byte(contractVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// providerTrip follows a provider sign-in from Latch's authorize URL
// through the stand-in and Latch's callback (each answer validated against
// the spec) and returns the query that reached the application.
func providerTrip(t *testing.T, l *latchd, authorize string) url.Values {
	t.Helper()
	res, _ := l.send(t, call{method: "GET", path: authorize})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("authorize -> %d", res.StatusCode)
	}
	cookie := res.Header.Get("Set-Cookie")
	name, value, _ := strings.Cut(strings.Split(cookie, ";")[0], "=")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	up, err := noRedirect.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	up.Body.Close()
	back, _ := url.Parse(up.Header.Get("Location"))
	res, body := l.send(t, call{method: "GET", path: back.RequestURI(), header: http.Header{"Cookie": {name + "=" + value}}})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("callback -> %d: %s", res.StatusCode, body)
	}
	app, _ := url.Parse(res.Header.Get("Location"))
	return app.Query()
}

// providersFlow: the provider list, a sign-in through the GitHub preset,
// the code's exchange, linking the identity to the flow's user, the
// identities, unlinking, and a form_post callback without a flow.
func providersFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {
	t.Helper()
	l.json(t, "GET", "/auth/providers", nil, nil, 200)
	op("listProviders")
	q := url.Values{"redirect_to": {appRedirect}, "code_challenge": {contractChallenge()}, "code_challenge_method": {"S256"}}
	back := providerTrip(t, l, "/auth/providers/github/authorize?"+q.Encode())
	op("authorizeProvider")
	op("providerCallback")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "code_verifier": {contractVerifier}}
	res, body := l.send(t, call{method: "POST", path: "/auth/token", contentType: "application/x-www-form-urlencoded", body: []byte(form.Encode())})
	if res.StatusCode != 200 {
		t.Fatalf("code exchange -> %d: %s", res.StatusCode, body)
	}
	var tok map[string]any
	_ = json.Unmarshal(body, &tok)
	octo := bearer(tok["access_token"].(string))
	// octo's only identity cannot go.
	ids := l.json(t, "GET", "/auth/identities", nil, octo, 200)
	op("listIdentities")
	only := ids["identities"].([]any)[0].(map[string]any)["id"].(string)
	l.json(t, "DELETE", "/auth/identities/"+only, nil, octo, 409)
	// The flow's user links GitHub: the account is octo's, so the
	// confirmation is a conflict, and the flow's user holds no identity
	// to unlink.
	auth := bearer(f.access)
	link := l.json(t, "POST", "/auth/providers/github/link", map[string]any{"redirect_to": appRedirect, "code_challenge": contractChallenge()}, auth, 200)
	op("linkProvider")
	u, _ := url.Parse(link["url"].(string))
	back = providerTrip(t, l, u.RequestURI())
	if back.Get("flow") != "link" {
		t.Fatalf("link flow: %v", back)
	}
	l.json(t, "POST", "/auth/identities", map[string]any{"code": back.Get("code"), "code_verifier": contractVerifier}, auth, 409)
	op("linkIdentity")
	l.json(t, "DELETE", "/auth/identities/"+only, nil, auth, 404)
	op("deleteIdentity")
	res, body = l.send(t, call{method: "POST", path: "/auth/providers/github/callback", contentType: "application/x-www-form-urlencoded",
		body: []byte("state=unknown&code=x")})
	if res.StatusCode != 400 {
		t.Fatalf("form_post callback without a flow -> %d: %s", res.StatusCode, body)
	}
	op("providerCallbackForm")
}
