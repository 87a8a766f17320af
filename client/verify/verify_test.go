package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/client/verify"
)

const (
	issuer   = "https://auth.example.com"
	audience = "latch"
)

// keySet is a JWKS served by a local server; keys may be added while it runs.
type keySet struct {
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int32
	srv     *httptest.Server
}

func newKeySet(t *testing.T) *keySet {
	ks := &keySet{}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keySet) url() string { return ks.srv.URL + "/.well-known/jwks.json" }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// publish adds the public half of priv under kid.
func (ks *keySet) publish(kid, alg string, priv crypto.Signer) {
	j := map[string]string{"kid": kid, "alg": alg, "use": "sig"}
	switch p := priv.Public().(type) {
	case *ecdsa.PublicKey:
		x, y := make([]byte, 32), make([]byte, 32)
		p.X.FillBytes(x)
		p.Y.FillBytes(y)
		j["kty"], j["crv"], j["x"], j["y"] = "EC", "P-256", b64(x), b64(y)
	case ed25519.PublicKey:
		j["kty"], j["crv"], j["x"] = "OKP", "Ed25519", b64(p)
	case *rsa.PublicKey:
		j["kty"], j["n"], j["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	}
	ks.mu.Lock()
	ks.keys = append(ks.keys, j)
	ks.mu.Unlock()
}

type keys struct {
	ec, ec2 *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsa     *rsa.PrivateKey
}

func newKeys(t *testing.T) keys {
	t.Helper()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return keys{ec: ec, ec2: ec2, ed: ed, rsa: rk}
}

// token signs claims; header entries override typ and kid ("" deletes).
func token(t *testing.T, method jwt.SigningMethod, key any, header map[string]string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = "ec1"
	for k, v := range header {
		if v == "" {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(now time.Time, extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": issuer, "aud": []string{audience}, "sub": "0b8f2f3e-1d2c-4b5a-9e8f-7a6b5c4d3e2f",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "j1",
		"sid": "6f1c1a62-6d1e-4f7e-8d43-2f1a3c1d2b10",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func newVerifier(t *testing.T, cfg verify.Config) *verify.Verifier {
	t.Helper()
	v, err := verify.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func TestVerify(t *testing.T) {
	k := newKeys(t)
	ks := newKeySet(t)
	ks.publish("ec1", "ES256", k.ec)
	ks.publish("rsa1", "RS256", k.rsa)
	ks.publish("ed1", "EdDSA", k.ed)
	now := time.Now().Truncate(time.Second)
	v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer, Now: func() time.Time { return now }})
	es := jwt.SigningMethodES256

	hmacWithPublicKey := func() string {
		// The classic confusion: HS256 keyed with the public key's bytes.
		x := make([]byte, 32)
		k.ec.PublicKey.X.FillBytes(x)
		return token(t, jwt.SigningMethodHS256, x, nil, claims(now, nil))
	}
	none := func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(now, nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}

	tests := map[string]struct {
		token string
		want  error // nil: accepted
	}{
		"good ES256":                  {token(t, es, k.ec, nil, claims(now, nil)), nil},
		"typ application/at+jwt":      {token(t, es, k.ec, map[string]string{"typ": "application/at+jwt"}, claims(now, nil)), nil},
		"expired within leeway":       {token(t, es, k.ec, nil, claims(now, map[string]any{"exp": now.Add(-2 * time.Second).Unix()})), nil},
		"alg not allowed (RS256)":     {token(t, jwt.SigningMethodRS256, k.rsa, map[string]string{"kid": "rsa1"}, claims(now, nil)), verify.ErrInvalidToken},
		"alg not allowed (EdDSA)":     {token(t, jwt.SigningMethodEdDSA, k.ed, map[string]string{"kid": "ed1"}, claims(now, nil)), verify.ErrInvalidToken},
		"alg none":                    {none(), verify.ErrInvalidToken},
		"HS256 with the public key":   {hmacWithPublicKey(), verify.ErrInvalidToken},
		"typ JWT":                     {token(t, es, k.ec, map[string]string{"typ": "JWT"}, claims(now, nil)), verify.ErrInvalidToken},
		"no typ":                      {token(t, es, k.ec, map[string]string{"typ": ""}, claims(now, nil)), verify.ErrInvalidToken},
		"no kid":                      {token(t, es, k.ec, map[string]string{"kid": ""}, claims(now, nil)), verify.ErrInvalidToken},
		"signed by another key":       {token(t, es, k.ec2, nil, claims(now, nil)), verify.ErrInvalidToken},
		"kid of a key of another alg": {token(t, es, k.ec, map[string]string{"kid": "rsa1"}, claims(now, nil)), verify.ErrInvalidToken},
		"wrong iss":                   {token(t, es, k.ec, nil, claims(now, map[string]any{"iss": "https://evil.example.com"})), verify.ErrInvalidToken},
		"wrong aud":                   {token(t, es, k.ec, nil, claims(now, map[string]any{"aud": "billing"})), verify.ErrInvalidToken},
		"no exp":                      {token(t, es, k.ec, nil, claims(now, map[string]any{"exp": nil})), verify.ErrInvalidToken},
		"expired":                     {token(t, es, k.ec, nil, claims(now, map[string]any{"exp": now.Add(-time.Minute).Unix()})), verify.ErrTokenExpired},
		"not yet valid":               {token(t, es, k.ec, nil, claims(now, map[string]any{"nbf": now.Add(time.Minute).Unix()})), verify.ErrInvalidToken},
		"issued in the future":        {token(t, es, k.ec, nil, claims(now, map[string]any{"iat": now.Add(time.Hour).Unix()})), verify.ErrInvalidToken},
		"no sub":                      {token(t, es, k.ec, nil, claims(now, map[string]any{"sub": nil})), verify.ErrInvalidToken},
		"no jti":                      {token(t, es, k.ec, nil, claims(now, map[string]any{"jti": nil})), verify.ErrInvalidToken},
		"tampered payload":            {tamper(token(t, es, k.ec, nil, claims(now, nil))), verify.ErrInvalidToken},
		"garbage":                     {"not.a.jwt", verify.ErrInvalidToken},
		"too large":                   {strings.Repeat("a", 9000) + ".b.c", verify.ErrInvalidToken},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Subject == "" || !c.IsSession() {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ve *verify.Error
			if !errors.As(err, &ve) || ve.Status != 401 {
				t.Fatalf("err = %#v, want a 401 *verify.Error", err)
			}
		})
	}

	t.Run("other algorithms when allowed", func(t *testing.T) {
		v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer, Algorithms: []string{"RS256", "EdDSA"}, Now: func() time.Time { return now }})
		for kid, tok := range map[string]string{
			"rsa1": token(t, jwt.SigningMethodRS256, k.rsa, map[string]string{"kid": "rsa1"}, claims(now, nil)),
			"ed1":  token(t, jwt.SigningMethodEdDSA, k.ed, map[string]string{"kid": "ed1"}, claims(now, nil)),
		} {
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("%s: %v", kid, err)
			}
		}
		if _, err := v.Verify(context.Background(), token(t, es, k.ec, nil, claims(now, nil))); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("ES256 accepted when not allowed: %v", err)
		}
	})
}

// tamper changes the payload's subject without re-signing.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(p, &m)
	m["sub"] = "someone-else"
	p, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestUnknownKIDRefetchesRateLimited(t *testing.T) {
	k := newKeys(t)
	ks := newKeySet(t)
	ks.publish("ec1", "ES256", k.ec)
	now := time.Now()
	v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer, UnknownKIDInterval: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	if _, err := v.Verify(ctx, token(t, jwt.SigningMethodES256, k.ec, nil, claims(now, nil))); err != nil {
		t.Fatal(err)
	}
	initial := ks.fetches.Load()

	// A rotated key: unknown at first, found by one refetch.
	ks.publish("ec2", "ES256", k.ec2)
	if _, err := v.Verify(ctx, token(t, jwt.SigningMethodES256, k.ec2, map[string]string{"kid": "ec2"}, claims(now, nil))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := ks.fetches.Load() - initial; n != 1 {
		t.Fatalf("%d fetches for a new kid, want 1", n)
	}
	// Forged kids do not cause more fetches within the interval, and fail
	// at once instead of waiting for the limiter.
	began := time.Now()
	for i := range 20 {
		kid := "forged-" + string(rune('a'+i))
		if _, err := v.Verify(ctx, token(t, jwt.SigningMethodES256, k.ec, map[string]string{"kid": kid}, claims(now, nil))); !errors.Is(err, verify.ErrInvalidToken) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := ks.fetches.Load() - initial; n != 1 {
		t.Fatalf("%d fetches after forged kids, want still 1", n)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("forged kids took %v", d)
	}
}

func TestMiddleware(t *testing.T) {
	k := newKeys(t)
	ks := newKeySet(t)
	ks.publish("ec1", "ES256", k.ec)
	now := time.Now()
	es := jwt.SigningMethodES256
	session := token(t, es, k.ec, nil, claims(now, nil))
	exchanged := token(t, es, k.ec, nil, claims(now, map[string]any{"sid": nil, "key_id": "k1", "org_id": "o1", "scope": "billing:read reports:write"}))
	expired := token(t, es, k.ec, nil, claims(now, map[string]any{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()}))

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, found := verify.ClaimsFrom(r.Context())
		if !found {
			http.Error(w, "no claims", 500)
			return
		}
		_, _ = w.Write([]byte(c.Subject))
	})

	type want struct {
		status int
		code   string
	}
	tests := map[string]struct {
		sessionScopes []string
		scopes        []string
		auth          string
		want          want
	}{
		"no token":                      {auth: "", want: want{401, "unauthorized"}},
		"not bearer":                    {auth: "Basic Zm9vOmJhcg==", want: want{401, "unauthorized"}},
		"bad token":                     {auth: "Bearer x.y.z", want: want{401, "invalid_token"}},
		"expired":                       {auth: "Bearer " + expired, want: want{401, "token_expired"}},
		"session, no scope needed":      {auth: "Bearer " + session, want: want{200, ""}},
		"lower-case scheme":             {auth: "bearer " + session, want: want{200, ""}},
		"exchanged with the scope":      {scopes: []string{"billing:read"}, auth: "Bearer " + exchanged, want: want{200, ""}},
		"exchanged with both scopes":    {scopes: []string{"billing:read", "reports:write"}, auth: "Bearer " + exchanged, want: want{200, ""}},
		"exchanged without the scope":   {scopes: []string{"billing:write"}, auth: "Bearer " + exchanged, want: want{403, "insufficient_permissions"}},
		"session needs a scope":         {scopes: []string{"billing:read"}, auth: "Bearer " + session, want: want{403, "insufficient_permissions"}},
		"session granted the scope":     {sessionScopes: []string{"billing:read"}, scopes: []string{"billing:read"}, auth: "Bearer " + session, want: want{200, ""}},
		"session granted every scope":   {sessionScopes: []string{"*"}, scopes: []string{"billing:read"}, auth: "Bearer " + session, want: want{200, ""}},
		"session scopes do not leak to": {sessionScopes: []string{"*"}, scopes: []string{"billing:write"}, auth: "Bearer " + exchanged, want: want{403, "insufficient_permissions"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer, SessionScopes: tc.sessionScopes})
			h := v.RequireScopes(tc.scopes...)(ok)
			if len(tc.scopes) == 0 {
				h = v.Middleware(ok)
			}
			req := httptest.NewRequest("GET", "/things", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("X-Request-Id", "req-42")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want.status, rec.Body)
			}
			if tc.want.status == 200 {
				if rec.Body.String() != "0b8f2f3e-1d2c-4b5a-9e8f-7a6b5c4d3e2f" {
					t.Fatalf("handler saw %q", rec.Body)
				}
				return
			}
			var body struct{ Error, Message, RequestID string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &raw)
			if body.Error != tc.want.code || body.Message == "" || raw["request_id"] != "req-42" {
				t.Fatalf("body %s", rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			wa := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(wa, "Bearer ") {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
			if tc.want.code == "invalid_token" || tc.want.code == "token_expired" {
				if !strings.Contains(wa, `error="invalid_token"`) {
					t.Fatalf("WWW-Authenticate %q", wa)
				}
			}
			if tc.want.status == 403 && !strings.Contains(wa, `error="insufficient_scope"`) {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
		})
	}
}

// TestOrgIDPinning: with Config.OrgID only tokens of that organization
// pass; RFC 9068's client_id and auth_time are read (security review item 7).
func TestOrgIDPinning(t *testing.T) {
	k := newKeys(t)
	ks := newKeySet(t)
	ks.publish("ec1", "ES256", k.ec)
	now := time.Now().Truncate(time.Second)
	v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer, OrgID: "org-1", Now: func() time.Time { return now }})
	es := jwt.SigningMethodES256
	ctx := context.Background()
	c, err := v.Verify(ctx, token(t, es, k.ec, nil, claims(now, map[string]any{"org_id": "org-1", "client_id": "key-1", "auth_time": now.Unix()})))
	if err != nil || c.ClientID != "key-1" || c.AuthTime == nil || !c.AuthTime.Time.Equal(now) {
		t.Fatalf("the pinned organization's token: %v %+v", err, c)
	}
	for name, extra := range map[string]map[string]any{"another organization": {"org_id": "org-2"}, "no organization": nil} {
		if _, err := v.Verify(ctx, token(t, es, k.ec, nil, claims(now, extra))); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("%s: %v, want invalid_token", name, err)
		}
	}
}

// RequireAAL2 lets through only session tokens at aal2 and answers the rest
// with 403 mfa_required and RFC 9470's step-up challenge.
func TestRequireAAL2(t *testing.T) {
	k := newKeys(t)
	ks := newKeySet(t)
	ks.publish("ec1", "ES256", k.ec)
	now := time.Now()
	es := jwt.SigningMethodES256
	aal1 := token(t, es, k.ec, nil, claims(now, map[string]any{"aal": "aal1", "amr": []string{"pwd"}}))
	aal2 := token(t, es, k.ec, nil, claims(now, map[string]any{"aal": "aal2", "amr": []string{"pwd", "otp", "mfa"}}))
	exchanged := token(t, es, k.ec, nil, claims(now, map[string]any{"sid": nil, "key_id": "k1", "scope": "billing:read"}))
	v := newVerifier(t, verify.Config{JWKSURL: ks.url(), Issuer: issuer})
	h := v.RequireAAL2(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.ClaimsFrom(r.Context())
		_, _ = w.Write([]byte(c.AAL + " " + strings.Join(c.AMR, ",")))
	}))
	for name, tc := range map[string]struct {
		tok    string
		status int
		body   string
	}{
		"aal2":      {aal2, 200, "aal2 pwd,otp,mfa"},
		"aal1":      {aal1, 403, "mfa_required"},
		"exchanged": {exchanged, 403, "mfa_required"},
		"none":      {"", 401, "unauthorized"},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/payments", nil)
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tc.status == 403 && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
				t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}
