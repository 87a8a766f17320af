package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// do sends a raw request through the validating client and returns the
// response with its body read.
func do(t *testing.T, s *testutil.Server, method, path, contentType string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := s.Doer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func errCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error     string `json:"error"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.RequestID == "" || e.Message == "" {
		t.Fatalf("not an Error body: %s", body)
	}
	return e.Error
}

func TestSignupRules(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		cases := map[string]struct {
			email, pw string
			status    int
			code      client.ErrorCode
		}{
			// The schema says minLength 8 (characters): anything shorter never
			// reaches the policy and is invalid_request, like any other schema
			// violation. What the schema allows and the policy refuses is
			// weak_password.
			"short password":  {"a@example.com", "short", 400, client.ErrorCodeInvalidRequest},
			"seven chars":     {"a@example.com", "abcdefg", 400, client.ErrorCodeInvalidRequest},
			"common password": {"a@example.com", "password123", 400, client.ErrorCodeWeakPassword},
			"long password":   {"a@example.com", strings.Repeat("p", 1025), 400, client.ErrorCodeInvalidRequest},
			// 1000 characters the schema allows, 2000 bytes the policy refuses.
			"long in bytes": {"a@example.com", strings.Repeat("é", 1000), 400, client.ErrorCodeWeakPassword},
		}
		for name, c := range cases {
			res, err := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: client.Email(c.email), Password: c.pw})
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode() != c.status || res.JSON400 == nil || res.JSON400.Error != c.code {
				t.Errorf("%s: %d %s", name, res.StatusCode(), res.Body)
			}
		}
		signup(t, s, "dup@example.com")
		res, _ := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "DUP@example.com", Password: goodPassword})
		if res.StatusCode() != 409 || res.JSON409.Error != client.ErrorCodeEmailTaken {
			t.Fatalf("duplicate (other case): %d %s", res.StatusCode(), res.Body)
		}
		if got := res.HTTPResponse.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("Cache-Control = %q", got)
		}
	})
}

func TestConcurrentSignupsOneWinner(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		var wg sync.WaitGroup
		codes := make(chan int, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: "same@example.com", Password: goodPassword})
				if err != nil {
					t.Error(err)
					return
				}
				codes <- res.StatusCode()
			}()
		}
		wg.Wait()
		close(codes)
		n := map[int]int{}
		for c := range codes {
			n[c]++
		}
		if n[201] != 1 || n[409] != 19 {
			t.Fatalf("statuses = %v, want one 201 and nineteen 409", n)
		}
	})
}

func TestLoginDoesNotRevealWhetherTheEmailExists(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	signup(t, s, "known@example.com")
	login := func(email, pw string) (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
		return do(t, s, "POST", "/auth/login", "application/json", b, nil)
	}
	r1, b1 := login("known@example.com", "wrong password here")
	r2, b2 := login("unknown@example.com", "wrong password here")
	if r1.StatusCode != 401 || r2.StatusCode != 401 {
		t.Fatalf("statuses %d %d", r1.StatusCode, r2.StatusCode)
	}
	strip := func(b []byte) map[string]any {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "request_id")
		return m
	}
	j1, _ := json.Marshal(strip(b1))
	j2, _ := json.Marshal(strip(b2))
	if string(j1) != string(j2) || errCode(t, b1) != "invalid_credentials" {
		t.Fatalf("bodies differ: %s vs %s", j1, j2)
	}
	for _, h := range []string{"Content-Type", "WWW-Authenticate", "Cache-Control"} {
		if r1.Header.Get(h) != r2.Header.Get(h) {
			t.Fatalf("header %s differs", h)
		}
	}
	r, b := login("KNOWN@example.com", goodPassword)
	if r.StatusCode != 200 {
		t.Fatalf("login with other case: %d %s", r.StatusCode, b)
	}
}

func TestLoginRateLimitedPerAccount(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.LoginAccount = ratelimit.Rule{Burst: 3, Per: time.Minute}
		c.Limits.LoginIP = ratelimit.Rule{Burst: 100, Per: time.Minute}
	})
	signup(t, s, "victim@example.com")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		res, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "victim@example.com", Password: "guess number " + string(rune('a'+i))})
		if res.StatusCode() != 401 {
			t.Fatalf("guess %d: %d", i, res.StatusCode())
		}
	}
	res, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "victim@example.com", Password: goodPassword})
	if res.StatusCode() != 429 || res.JSON429.Error != client.ErrorCodeRateLimited {
		t.Fatalf("after 3 failures: %d %s", res.StatusCode(), res.Body)
	}
	if ra := res.HTTPResponse.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	// Another account from the same IP is not locked.
	signup(t, s, "bystander@example.com")
	res, _ = s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "bystander@example.com", Password: goodPassword})
	if res.StatusCode() != 200 {
		t.Fatalf("bystander: %d", res.StatusCode())
	}
	// Successful logins do not use up the account's budget.
	for i := 0; i < 5; i++ {
		res, _ = s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "bystander@example.com", Password: goodPassword})
		if res.StatusCode() != 200 {
			t.Fatalf("successful login %d: %d", i, res.StatusCode())
		}
	}
}

func TestSignupRateLimitedPerIP(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.SignupIP = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	signup(t, s, "one@example.com")
	signup(t, s, "two@example.com")
	res, _ := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: "three@example.com", Password: goodPassword})
	if res.StatusCode() != 429 {
		t.Fatalf("third signup: %d", res.StatusCode())
	}
}

func TestRefreshRotationGraceAndReuse(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		tok := signup(t, s, "rot@example.com")
		refresh := func(rt string) *client.RefreshResponse {
			res, err := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: rt})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		r1 := refresh(tok.RefreshToken)
		if r1.StatusCode() != 200 || r1.JSON200.SessionId != tok.SessionId {
			t.Fatalf("refresh: %d %s", r1.StatusCode(), r1.Body)
		}
		// A retry within the grace window answers the same successor.
		s.Clock.Advance(5 * time.Second)
		r2 := refresh(tok.RefreshToken)
		if r2.StatusCode() != 200 || r2.JSON200.RefreshToken != r1.JSON200.RefreshToken {
			t.Fatalf("grace replay: %d, same token %v", r2.StatusCode(), r2.JSON200 != nil && r2.JSON200.RefreshToken == r1.JSON200.RefreshToken)
		}
		r3 := refresh(r1.JSON200.RefreshToken)
		if r3.StatusCode() != 200 {
			t.Fatalf("refresh successor: %d", r3.StatusCode())
		}
		// The first token again: reuse. The whole session is revoked.
		s.Clock.Advance(20 * time.Second)
		r4 := refresh(tok.RefreshToken)
		if r4.StatusCode() != 401 || r4.JSON401.Error != client.ErrorCodeInvalidGrant {
			t.Fatalf("reuse: %d %s", r4.StatusCode(), r4.Body)
		}
		if r := refresh(r3.JSON200.RefreshToken); r.StatusCode() != 401 {
			t.Fatalf("latest token after reuse: %d", r.StatusCode())
		}
		me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(r3.JSON200.AccessToken))
		if me.StatusCode() != 401 || me.JSON401.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("access token after reuse: %d %s", me.StatusCode(), me.Body)
		}
		// The reuse is a security event.
		evs, err := s.App.Store.ListEvents(ctx, tok.User.Id, domain.EventCursor{}, 50)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range evs {
			if e.Type == domain.EventRefreshReuseDetected && e.SessionID != nil && *e.SessionID == tok.SessionId {
				found = true
			}
		}
		if !found {
			t.Fatalf("no refresh_reuse_detected event: %+v", evs)
		}
		for _, bad := range []string{"short", strings.Repeat("A", 43), strings.Repeat("!", 43)} {
			if r := refresh(bad); r.StatusCode() != 401 || r.JSON401.Error != client.ErrorCodeInvalidGrant {
				t.Fatalf("refresh(%q): %d %s", bad, r.StatusCode(), r.Body)
			}
		}
	})
}

func TestRefreshRaceOverHTTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		tok := signup(t, s, "race@example.com")
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if res.StatusCode() != 200 {
					t.Errorf("status %d: %s", res.StatusCode(), res.Body)
					return
				}
				got[res.JSON200.RefreshToken]++
			}()
		}
		wg.Wait()
		if len(got) != 1 {
			t.Fatalf("%d distinct successors, want exactly 1", len(got))
		}
		n, err := s.App.Store.CountRefreshTokens(context.Background(), tok.SessionId)
		if err != nil || n != 2 {
			t.Fatalf("family has %d tokens (%v), want 2", n, err)
		}
	})
}

func TestRefreshRacingLogout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		for i := 0; i < 5; i++ {
			tok := signup(t, s, "rl"+string(rune('a'+i))+"@example.com")
			var wg sync.WaitGroup
			var minted *client.TokenResponse
			wg.Add(2)
			go func() {
				defer wg.Done()
				res, err := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
				if err == nil && res.StatusCode() == 200 {
					minted = res.JSON200
				} else if err == nil && res.StatusCode() >= 500 {
					t.Errorf("refresh: %d", res.StatusCode())
				}
			}()
			go func() {
				defer wg.Done()
				scope := client.Global
				res, err := s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &scope}, testutil.Bearer(tok.AccessToken))
				if err != nil || res.StatusCode() != 204 {
					t.Errorf("logout: %v %d", err, res.StatusCode())
				}
			}()
			wg.Wait()
			if minted != nil {
				if r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: minted.RefreshToken}); r.StatusCode() != 401 {
					t.Fatalf("refresh token minted in the race survived: %d", r.StatusCode())
				}
				if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(minted.AccessToken)); r.StatusCode() != 401 {
					t.Fatalf("access token minted in the race survived: %d", r.StatusCode())
				}
			}
		}
	})
}

func TestAccessTokenExpiry(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	tok := signup(t, s, "exp@example.com")
	s.Clock.Advance(16 * time.Minute)
	me, _ := s.Client.GetMeWithResponse(context.Background(), testutil.Bearer(tok.AccessToken))
	if me.StatusCode() != 401 || me.JSON401.Error != client.ErrorCodeTokenExpired || me.JSON401.ExpiresAt == nil {
		t.Fatalf("expired token: %d %s", me.StatusCode(), me.Body)
	}
	if !me.JSON401.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("expires_at %v, token said %v", me.JSON401.ExpiresAt, tok.ExpiresAt)
	}
	if h := me.HTTPResponse.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", h)
	}
	// Refresh still works and gives a fresh access token.
	r, _ := s.Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
	if r.StatusCode() != 200 {
		t.Fatalf("refresh: %d", r.StatusCode())
	}
	if me, _ := s.Client.GetMeWithResponse(context.Background(), testutil.Bearer(r.JSON200.AccessToken)); me.StatusCode() != 200 {
		t.Fatalf("fresh token: %d", me.StatusCode())
	}
}

func TestSessionEndpoints(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		a := signup(t, s, "a@example.com")
		a2, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "a@example.com", Password: goodPassword})
		a3, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "a@example.com", Password: goodPassword})
		b := signup(t, s, "b@example.com")
		list, _ := s.Client.ListSessionsWithResponse(ctx, nil, testutil.Bearer(a.AccessToken))
		if list.StatusCode() != 200 || len(list.JSON200.Sessions) != 3 {
			t.Fatalf("list: %d %s", list.StatusCode(), list.Body)
		}
		current := 0
		for _, ss := range list.JSON200.Sessions {
			if ss.UserId != a.User.Id {
				t.Fatal("another user's session listed")
			}
			if ss.Current {
				current++
				if ss.Id != a.SessionId {
					t.Fatal("wrong current session")
				}
			}
		}
		if current != 1 {
			t.Fatalf("%d current sessions", current)
		}
		if r, _ := s.Client.GetSessionWithResponse(ctx, b.SessionId, testutil.Bearer(a.AccessToken)); r.StatusCode() != 404 {
			t.Fatalf("get other's session: %d", r.StatusCode())
		}
		if r, _ := s.Client.RevokeSessionWithResponse(ctx, b.SessionId, testutil.Bearer(a.AccessToken)); r.StatusCode() != 404 {
			t.Fatalf("revoke other's session: %d", r.StatusCode())
		}
		if r, _ := s.Client.RenewSessionWithResponse(ctx, b.SessionId, testutil.Bearer(a.AccessToken)); r.StatusCode() != 404 {
			t.Fatalf("renew other's session: %d", r.StatusCode())
		}
		g, _ := s.Client.GetSessionWithResponse(ctx, a2.JSON200.SessionId, testutil.Bearer(a.AccessToken))
		if g.StatusCode() != 200 || g.JSON200.Current {
			t.Fatalf("get own session: %d %s", g.StatusCode(), g.Body)
		}
		s.Clock.Advance(10 * time.Minute)
		rn, _ := s.Client.RenewSessionWithResponse(ctx, a2.JSON200.SessionId, testutil.Bearer(a2.JSON200.AccessToken))
		if rn.StatusCode() != 200 || !rn.JSON200.ExpiresAt.After(g.JSON200.ExpiresAt) || rn.JSON200.ExpiresAt.After(rn.JSON200.AbsoluteExpiresAt) {
			t.Fatalf("renew: %d %s", rn.StatusCode(), rn.Body)
		}
		if r, _ := s.Client.RevokeSessionWithResponse(ctx, a2.JSON200.SessionId, testutil.Bearer(a.AccessToken)); r.StatusCode() != 204 {
			t.Fatalf("revoke own: %d", r.StatusCode())
		}
		if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(a2.JSON200.AccessToken)); r.StatusCode() != 401 {
			t.Fatalf("revoked session's token still works: %d", r.StatusCode())
		}
		// logout others keeps this one, global ends all.
		others := client.Others
		if r, _ := s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &others}, testutil.Bearer(a.AccessToken)); r.StatusCode() != 204 {
			t.Fatalf("logout others: %d", r.StatusCode())
		}
		if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(a3.JSON200.AccessToken)); r.StatusCode() != 401 {
			t.Fatal("logout others left another session alive")
		}
		if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(a.AccessToken)); r.StatusCode() != 200 {
			t.Fatal("logout others ended the current session")
		}
		if r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: a3.JSON200.RefreshToken}); r.StatusCode() != 401 {
			t.Fatal("refresh token of a logged-out session still works")
		}
		global := client.Global
		if r, _ := s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &global}, testutil.Bearer(a.AccessToken)); r.StatusCode() != 204 {
			t.Fatalf("logout global: %d", r.StatusCode())
		}
		if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(a.AccessToken)); r.StatusCode() != 401 {
			t.Fatal("global logout left the current session")
		}
		if r, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(b.AccessToken)); r.StatusCode() != 200 {
			t.Fatal("global logout touched another user")
		}
	})
}

func TestBadInputGetsClear4xx(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	tok := signup(t, s, "input@example.com")
	auth := map[string]string{"Authorization": "Bearer " + tok.AccessToken}
	big := []byte(`{"email":"a@example.com","password":"` + strings.Repeat("x", 70<<10) + `"}`)
	cases := []struct {
		name, method, path, ct string
		body                   []byte
		hdr                    map[string]string
		status                 int
		code                   string
	}{
		{"invalid json", "POST", "/auth/login", "application/json", []byte(`{"email":`), nil, 400, "invalid_request"},
		{"not an object", "POST", "/auth/login", "application/json", []byte(`[1,2]`), nil, 400, "invalid_request"},
		{"missing field", "POST", "/auth/login", "application/json", []byte(`{"email":"a@example.com"}`), nil, 400, "invalid_request"},
		{"wrong type", "POST", "/auth/login", "application/json", []byte(`{"email":"a@example.com","password":12345678}`), nil, 400, "invalid_request"},
		{"unknown field", "POST", "/auth/signup", "application/json", []byte(`{"email":"a@example.com","password":"abcdefghij","admin":true}`), nil, 400, "invalid_request"},
		{"case-variant key", "POST", "/auth/signup", "application/json", []byte(`{"Email":"a@example.com","email":"b@example.com","password":"abcdefghij"}`), nil, 400, "invalid_request"},
		{"bad email format", "POST", "/auth/signup", "application/json", []byte(`{"email":"nope","password":"abcdefghij"}`), nil, 400, "invalid_request"},
		{"wrong content type", "POST", "/auth/login", "text/plain", []byte(`hello`), nil, 415, "unsupported_media_type"},
		{"no content type", "POST", "/auth/login", "", []byte(`{}`), nil, 415, "unsupported_media_type"},
		{"oversized body", "POST", "/auth/signup", "application/json", big, nil, 413, "payload_too_large"},
		{"bad uuid", "GET", "/sessions/not-a-uuid", "", nil, auth, 400, "invalid_request"},
		{"bad logout scope", "POST", "/auth/logout?scope=everything", "", nil, auth, 400, "invalid_request"},
		{"no credentials", "GET", "/auth/me", "", nil, nil, 401, "unauthorized"},
		{"wrong scheme", "GET", "/auth/me", "", nil, map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, 401, "unauthorized"},
		{"garbage token", "GET", "/auth/me", "", nil, map[string]string{"Authorization": "Bearer x.y.z"}, 401, "invalid_token"},
		{"bad api key", "GET", "/auth/me", "", nil, map[string]string{"X-API-Key": "nope"}, 401, "invalid_token"},
		{"unknown path", "GET", "/nope", "", nil, nil, 404, "not_found"},
		{"wrong method", "DELETE", "/auth/login", "", nil, nil, 405, "method_not_allowed"},
		{"null bytes", "POST", "/auth/login", "application/json", []byte("{\"email\":\"a\x00@example.com\",\"password\":\"abcdefghij\"}"), nil, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := do(t, s, c.method, c.path, c.ct, c.body, c.hdr)
			if res.StatusCode != c.status || errCode(t, body) != c.code {
				t.Fatalf("%d %s, want %d %s", res.StatusCode, body, c.status, c.code)
			}
			if res.StatusCode == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if strings.Contains(string(body), "abcdefghij") {
				t.Fatal("the error echoes the password")
			}
		})
	}
}

func TestHealthAndJWKS(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		h, _ := s.Client.GetHealthWithResponse(ctx)
		if h.StatusCode() != 200 || h.JSON200.Status != "ok" {
			t.Fatalf("health: %d %s", h.StatusCode(), h.Body)
		}
		tok := signup(t, s, "jwks@example.com")
		j, _ := s.Client.GetJWKSWithResponse(ctx)
		if j.StatusCode() != 200 || len(j.JSON200.Keys) != 1 {
			t.Fatalf("jwks: %d %s", j.StatusCode(), j.Body)
		}
		for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`} {
			if strings.Contains(string(j.Body), private) {
				t.Fatalf("JWKS leaks private member %s", private)
			}
		}
		// A standard library verifies the token with the published key.
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok.AccessToken, claims, jwksKeyfunc(t, j.Body),
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("http://127.0.0.1:8080"), jwt.WithAudience("latch"))
		if err != nil {
			t.Fatalf("standard verification failed: %v", err)
		}
		for _, c := range []string{"iss", "aud", "sub", "sid", "iat", "exp", "jti"} {
			if _, ok := claims[c]; !ok {
				t.Fatalf("claim %s missing: %v", c, claims)
			}
		}
		if claims["sub"] != tok.User.Id.String() || claims["sid"] != tok.SessionId.String() {
			t.Fatalf("claims = %v", claims)
		}
		s.App.Store.Close()
		h, _ = s.Client.GetHealthWithResponse(ctx)
		if h.StatusCode() != 503 || h.JSON503.Error != client.ErrorCodeUnavailable {
			t.Fatalf("health with the database down: %d %s", h.StatusCode(), h.Body)
		}
		if strings.Contains(string(h.Body), "closed") || strings.Contains(string(h.Body), "sql") {
			t.Fatalf("health leaks an internal message: %s", h.Body)
		}
	})
}

func TestSecretsAreNotLogged(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	tok := signup(t, s, "logs@example.com")
	r, _ := s.Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
	_, _ = s.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: "logs@example.com", Password: "a wrong password"})
	_, _ = s.Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken + "x"})
	logs := s.Log.String()
	for _, secret := range []string{goodPassword, "a wrong password", tok.RefreshToken, tok.AccessToken, r.JSON200.RefreshToken, r.JSON200.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the log")
		}
	}
}

func TestSecretsAreStoredHashed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		tok := signup(t, s, "hashed@example.com")
		db := s.App.Store.DB()
		var hash []byte
		if err := db.QueryRow(`SELECT token_hash FROM refresh_tokens`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(tok.RefreshToken)
		want := sha256.Sum256(raw)
		if !bytes.Equal(hash, want[:]) {
			t.Fatal("refresh token not stored as its SHA-256")
		}
		var phc string
		if err := db.QueryRow(`SELECT password_hash FROM users`).Scan(&phc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(phc, "$argon2id$v=19$") || strings.Contains(phc, goodPassword) {
			t.Fatalf("password stored as %q", phc)
		}
		if _, _, _, err := password.Decode(phc); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCORS(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) { c.CORSOrigins = []string{"https://app.example.com"} })
	req, _ := http.NewRequest("OPTIONS", s.URL+"/auth/login", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	r2, _ := do(t, s, "GET", "/health", "", nil, map[string]string{"Origin": "https://evil.example.com"})
	if r2.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an unlisted origin")
	}
}

func TestRequestIDs(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	r, _ := do(t, s, "GET", "/health", "", nil, map[string]string{"X-Request-Id": "abc-123"})
	if r.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatal("caller's request id not kept")
	}
	r, body := do(t, s, "GET", "/nope", "", nil, map[string]string{"X-Request-Id": "bad id with spaces"})
	var e struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &e)
	if id := r.Header.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, " \n") || id != e.RequestID {
		t.Fatalf("request id %q / body %q", id, e.RequestID)
	}
}
