package service

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func testKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// The presets fill what the operator leaves out, and Microsoft's email is
// verified only by xms_edov.
func TestProviderPresets(t *testing.T) {
	_, key := testKey(t)
	for _, tc := range []struct {
		in           ProviderConfig
		issuer, name string
		scopes       []string
		verified     string
	}{
		{ProviderConfig{ID: "g", Kind: ProviderGoogle, ClientID: "c", ClientSecret: "s"}, "https://accounts.google.com", "Google", []string{"openid", "email", "profile"}, "email_verified"},
		{ProviderConfig{ID: "m", Kind: ProviderMicrosoft, Tenant: "contoso.onmicrosoft.com", ClientID: "c", ClientSecret: "s"}, "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", "Microsoft", []string{"openid", "email", "profile"}, "xms_edov"},
		{ProviderConfig{ID: "a", Kind: ProviderApple, ClientID: "c", PrivateKey: key, KeyID: "k", TeamID: "T"}, "https://appleid.apple.com", "Apple", []string{"openid", "email", "name"}, "email_verified"},
		{ProviderConfig{ID: "gh", Kind: ProviderGitHub, ClientID: "c", ClientSecret: "s"}, "", "GitHub", []string{"read:user", "user:email"}, "email_verified"},
		{ProviderConfig{ID: "o", Kind: ProviderOIDC, Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "s", Scopes: []string{"email"}}, "https://idp.example.com", "o", []string{"openid", "email"}, "email_verified"},
	} {
		got, err := tc.in.withPreset()
		if err != nil || got.Issuer != tc.issuer || got.Name != tc.name || !slices.Equal(got.Scopes, tc.scopes) || got.Claims.EmailVerified != tc.verified {
			t.Errorf("%s: %+v %v", tc.in.Kind, got, err)
		}
	}
	if c, _ := (ProviderConfig{ID: "a", Kind: ProviderApple, ClientID: "c", PrivateKey: key, KeyID: "k", TeamID: "T"}).withPreset(); c.ResponseMode != "form_post" {
		t.Errorf("apple answers by form_post: %q", c.ResponseMode)
	}
}

// Apple's client secret and private_key_jwt's assertion: signed by the
// key, with the claims each asks for, short-lived.
func TestClientSecretJWTs(t *testing.T) {
	k, key := testKey(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	parse := func(raw string) (*jwt.Token, jwt.RegisteredClaims) {
		t.Helper()
		var c jwt.RegisteredClaims
		tok, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return &k.PublicKey, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		return tok, c
	}
	apple, _ := (ProviderConfig{ID: "a", Kind: ProviderApple, ClientID: "com.example.web", PrivateKey: key, KeyID: "KEY123", TeamID: "TEAM456"}).withPreset()
	u := &upstream{cfg: apple, clock: fixedClock{now}}
	raw, err := u.appleSecret()
	if err != nil {
		t.Fatal(err)
	}
	tok, c := parse(raw)
	if tok.Header["kid"] != "KEY123" || c.Issuer != "TEAM456" || c.Subject != "com.example.web" || !slices.Equal(c.Audience, jwt.ClaimStrings{"https://appleid.apple.com"}) ||
		c.ExpiresAt.Sub(now) != 5*time.Minute {
		t.Fatalf("apple secret: %v %+v", tok.Header, c)
	}
	oidc, _ := (ProviderConfig{ID: "o", Kind: ProviderOIDC, Issuer: "https://idp.example.com", ClientID: "latch", PrivateKey: key, KeyID: "k1"}).withPreset()
	u = &upstream{cfg: oidc, clock: fixedClock{now}}
	raw, err = u.clientAssertion("https://idp.example.com/token")
	if err != nil {
		t.Fatal(err)
	}
	tok, c = parse(raw)
	if tok.Header["kid"] != "k1" || c.Issuer != "latch" || c.Subject != "latch" || !slices.Equal(c.Audience, jwt.ClaimStrings{"https://idp.example.com/token"}) ||
		c.ID == "" || c.ExpiresAt.Sub(now) != time.Minute {
		t.Fatalf("client assertion: %v %+v", tok.Header, c)
	}
}

// The redirect allow-list: exact entries, and /* prefixes that cannot be
// stretched to another host, a fragment, user information or a ../ step.
func TestAllowedRedirect(t *testing.T) {
	f := &Federation{redirects: []string{"https://app.example.com/cb", "https://app.example.com/auth/*"}}
	for u, want := range map[string]bool{
		"https://app.example.com/cb":                 true,
		"https://app.example.com/cb?next=1":          false,
		"https://app.example.com/auth/done?x=1":      true,
		"https://app.example.com/auth/../admin":      false,
		"https://app.example.com/auth/x#frag":        false,
		"https://app.example.com.evil.test/auth/x":   false,
		"https://user@app.example.com/cb":            false,
		"http://app.example.com/cb":                  false,
		"javascript:alert(1)//app.example.com/auth/": false,
	} {
		if got := f.allowedRedirect(u); got != want {
			t.Errorf("%s: %v, want %v", u, got, want)
		}
	}
	if CheckRedirectURL("https://app.example.com*") == nil || CheckRedirectURL("https://app.example.com/auth*") == nil || CheckRedirectURL("https://app.example.com/auth/*") != nil {
		t.Error("a prefix entry must end its path with /*")
	}
}

// Claims as providers send them: Apple's email_verified is a string.
func TestClaimValues(t *testing.T) {
	if !claimBool(true) || !claimBool("true") || claimBool("false") || claimBool(nil) || claimBool(1.0) {
		t.Error("claimBool")
	}
	if claimString(float64(4242)) != "4242" || claimString("s") != "s" || claimString(nil) != "" {
		t.Error("claimString")
	}
}
