package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/internal/domain"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func newIssuer(t testing.TB, alg string, clock domain.Clock) (*Issuer, domain.SigningKey) {
	t.Helper()
	is, err := NewIssuer(Config{Alg: alg, Issuer: "https://latch.test", Audience: "latch", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	k, err := GenerateKey(alg, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Load([]domain.SigningKey{k}); err != nil {
		t.Fatal(err)
	}
	return is, k
}

func claims(now time.Time) *Claims {
	return &Claims{
		Subject: "7d3c1c7e-3f5e-4d7a-9a39-0a8f4c1b2d3e", ID: "jti-1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute)),
		SID: "sid-1",
	}
}

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	for _, alg := range []string{ES256, EdDSA, RS256} {
		t.Run(alg, func(t *testing.T) {
			is, k := newIssuer(t, alg, clock)
			tok, err := is.Sign(claims(clock.t))
			if err != nil {
				t.Fatal(err)
			}
			parsed, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != k.KID || parsed.Header["alg"] != alg {
				t.Fatalf("header = %v", parsed.Header)
			}
			c, err := is.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Issuer != "https://latch.test" || c.Audience[0] != "latch" || c.SID != "sid-1" {
				t.Fatalf("claims = %+v", c)
			}
			jwks := is.JWKS()
			if len(jwks) != 1 || jwks[0].KID != k.KID || jwks[0].Use != "sig" || jwks[0].Alg != alg {
				t.Fatalf("jwks = %+v", jwks)
			}
		})
	}
}

func TestRSAKeysAreAtLeast2048Bits(t *testing.T) {
	k, _ := GenerateKey(RS256, time.Now())
	pk, err := parseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if n := pk.jwk().N; len(n) < 340 { // 256 bytes in base64url
		t.Fatalf("RSA modulus too short: %d chars", len(n))
	}
}

func TestVerifyRejects(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, k := newIssuer(t, ES256, clock)
	pk, _ := parseKey(k)
	sign := func(method jwt.SigningMethod, key any, hdr map[string]any, c jwt.Claims) string {
		tk := jwt.NewWithClaims(method, c)
		tk.Header["typ"] = "at+jwt"
		tk.Header["kid"] = k.KID
		for h, v := range hdr {
			if v == nil {
				delete(tk.Header, h)
			} else {
				tk.Header[h] = v
			}
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() *Claims {
		c := claims(clock.t)
		c.Issuer, c.Audience = "https://latch.test", jwt.ClaimStrings{"latch"}
		return c
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noExp := good()
	noExp.ExpiresAt = nil
	wrongIss := good()
	wrongIss.Issuer = "https://evil.test"
	wrongAud := good()
	wrongAud.Audience = jwt.ClaimStrings{"other"}
	future := good()
	future.NotBefore = jwt.NewNumericDate(clock.t.Add(time.Hour))
	cases := map[string]string{
		"none alg":          sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, good()),
		"HS256 with pubkey": sign(jwt.SigningMethodHS256, []byte("secret"), nil, good()),
		"other key":         sign(jwt.SigningMethodES256, otherKey, nil, good()),
		"unknown kid":       sign(jwt.SigningMethodES256, pk.priv, map[string]any{"kid": "nope"}, good()),
		"no typ":            sign(jwt.SigningMethodES256, pk.priv, map[string]any{"typ": nil}, good()),
		"typ JWT":           sign(jwt.SigningMethodES256, pk.priv, map[string]any{"typ": "JWT"}, good()),
		"no exp":            sign(jwt.SigningMethodES256, pk.priv, nil, noExp),
		"wrong iss":         sign(jwt.SigningMethodES256, pk.priv, nil, wrongIss),
		"wrong aud":         sign(jwt.SigningMethodES256, pk.priv, nil, wrongAud),
		"not yet valid":     sign(jwt.SigningMethodES256, pk.priv, nil, future),
		"jku to other key":  sign(jwt.SigningMethodES256, otherKey, map[string]any{"jku": "https://evil.test/jwks", "kid": "evil"}, good()),
		"oversized":         sign(jwt.SigningMethodES256, pk.priv, map[string]any{"pad": strings.Repeat("x", MaxTokenBytes)}, good()),
		"garbage":           "not.a.jwt",
		"empty":             "",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := is.Verify(tok); domain.ErrorCode(err) != domain.CodeInvalidToken {
				t.Fatalf("Verify = %v, want invalid_token", err)
			}
		})
	}
	t.Run("good token passes", func(t *testing.T) {
		if _, err := is.Verify(sign(jwt.SigningMethodES256, pk.priv, nil, good())); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExpiredTokenSaysWhen(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, _ := newIssuer(t, ES256, clock)
	tok, _ := is.Sign(claims(clock.t))
	clock.t = clock.t.Add(16 * time.Minute)
	_, err := is.Verify(tok)
	var de *domain.Error
	if domain.ErrorCode(err) != domain.CodeTokenExpired {
		t.Fatalf("Verify = %v, want token_expired", err)
	}
	de = err.(*domain.Error)
	if !de.ExpiresAt.Equal(clock.t.Add(-time.Minute)) {
		t.Fatalf("ExpiresAt = %v", de.ExpiresAt)
	}
}

func TestOtherAlgorithmRefusedEvenWithKnownKey(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	ed, _ := newIssuer(t, EdDSA, clock)
	tok, _ := ed.Sign(claims(clock.t))
	es, _ := newIssuer(t, ES256, clock)
	if _, err := es.Verify(tok); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("an EdDSA token passed an ES256 verifier: %v", err)
	}
}

func TestRetiredKeysStillVerify(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, old := newIssuer(t, ES256, clock)
	tok, _ := is.Sign(claims(clock.t))
	newer, _ := GenerateKey(ES256, clock.t.Add(time.Second))
	retired := clock.t.Add(time.Second)
	old.RetiredAt = &retired
	if err := is.Load([]domain.SigningKey{newer, old}); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Verify(tok); err != nil {
		t.Fatalf("token of a retired key refused: %v", err)
	}
	tok2, _ := is.Sign(claims(clock.t))
	p, _, _ := jwt.NewParser().ParseUnverified(tok2, &Claims{})
	if p.Header["kid"] != newer.KID {
		t.Fatal("did not sign with the newest key")
	}
	if len(is.JWKS()) != 2 {
		t.Fatal("retired key left the JWKS")
	}
}

func TestSealer(t *testing.T) {
	s, err := NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := s.Seal([]byte("-----BEGIN PRIVATE KEY-----"), "k1")
	if strings.Contains(string(sealed), "PRIVATE") {
		t.Fatal("sealed value is plain")
	}
	if got, err := s.Open(sealed, "k1"); err != nil || string(got) != "-----BEGIN PRIVATE KEY-----" {
		t.Fatalf("Open = %q %v", got, err)
	}
	if _, err := s.Open(sealed, "k2"); err == nil {
		t.Fatal("opened under another label")
	}
	other, _ := NewSealer("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	if _, err := other.Open(sealed, "k1"); err == nil {
		t.Fatal("opened with another master key")
	}
	plain, _ := NewSealer("")
	if _, err := plain.Open(sealed, "k1"); err == nil {
		t.Fatal("opened a sealed value without a master key")
	}
	if _, err := NewSealer("too-short"); err == nil {
		t.Fatal("accepted a short master key")
	}
}

func FuzzVerify(f *testing.F) {
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	is, _ := newIssuer(f, ES256, clock)
	good, _ := is.Sign(claims(clock.t))
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := is.Verify(tok)
		if err == nil && tok != good && c.Subject == "" {
			t.Fatalf("accepted a token without subject: %q", tok)
		}
		if err != nil {
			if code := domain.ErrorCode(err); code != domain.CodeInvalidToken && code != domain.CodeTokenExpired {
				t.Fatalf("unexpected error code %q", code)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		b.Run(alg, func(b *testing.B) {
			clock := &fixedClock{t: time.Now()}
			is, _ := newIssuer(b, alg, clock)
			for b.Loop() {
				if _, err := is.Sign(claims(clock.t)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		b.Run(alg, func(b *testing.B) {
			clock := &fixedClock{t: time.Now()}
			is, _ := newIssuer(b, alg, clock)
			tok, _ := is.Sign(claims(clock.t))
			for b.Loop() {
				if _, err := is.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIssuedAtToleratesInstanceSkew: a token signed by an instance whose
// clock runs a few seconds ahead verifies here; one issued far in the
// future does not.
func TestIssuedAtToleratesInstanceSkew(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, _ := newIssuer(t, ES256, clock)
	ahead, _ := is.Sign(claims(clock.t.Add(5 * time.Second)))
	if _, err := is.Verify(ahead); err != nil {
		t.Fatalf("a token from a clock 5 s ahead: %v", err)
	}
	far, _ := is.Sign(claims(clock.t.Add(2 * time.Minute)))
	if _, err := is.Verify(far); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("a token issued 2 minutes ahead: %v", err)
	}
}

// kidOf returns the kid in a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

// A staged key (published now, activating at T) signs from T on, on the
// issuer's clock, without another Load; before T the old key signs. Both
// keep verifying throughout.
func TestStagedKeySignsFromItsActivation(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, old := newIssuer(t, ES256, clock)
	staged, err := GenerateKey(ES256, clock.t)
	if err != nil {
		t.Fatal(err)
	}
	at := clock.t.Add(3 * time.Second)
	staged.ActivatesAt = &at
	old.RetiredAt = &at // as the store retires it
	if err := is.Load([]domain.SigningKey{staged, old}); err != nil {
		t.Fatal(err)
	}
	sign := func() string {
		t.Helper()
		tok, err := is.Sign(claims(clock.t))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := sign()
	if kid := kidOf(t, before); kid != old.KID {
		t.Fatalf("before activation signed with %s, want the old key %s", kid, old.KID)
	}
	clock.t = at.Add(-time.Nanosecond)
	if kid := kidOf(t, sign()); kid != old.KID {
		t.Fatalf("a nanosecond before activation signed with %s, want the old key", kid)
	}
	clock.t = at
	if kid := kidOf(t, sign()); kid != staged.KID {
		t.Fatalf("at activation signed with %s, want the staged key %s", kid, staged.KID)
	}
	clock.t = at.Add(time.Minute)
	after := sign()
	if kid := kidOf(t, after); kid != staged.KID {
		t.Fatalf("after activation signed with %s, want the staged key %s", kid, staged.KID)
	}
	for _, tok := range []string{before, after} {
		if _, err := is.Verify(tok); err != nil {
			t.Fatalf("kid %s refused: %v", kidOf(t, tok), err)
		}
	}
}

// Two rotations staged one after the other take over in turn; a staged key
// of another algorithm (a migration) never signs, and the key before it
// keeps signing past its retirement until the instance restarts with the
// new algorithm.
func TestStagedKeysInTurnAndOtherAlgorithm(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, k0 := newIssuer(t, ES256, clock)
	t1, t2 := clock.t.Add(time.Minute), clock.t.Add(2*time.Minute)
	k1, _ := GenerateKey(ES256, clock.t)
	k2, _ := GenerateKey(ES256, clock.t)
	k0.RetiredAt, k1.ActivatesAt, k1.RetiredAt, k2.ActivatesAt = &t1, &t1, &t2, &t2
	if err := is.Load([]domain.SigningKey{k2, k1, k0}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at  time.Time
		kid string
	}{{clock.t, k0.KID}, {t1, k1.KID}, {t2.Add(-time.Second), k1.KID}, {t2, k2.KID}} {
		clock.t = c.at
		tok, err := is.Sign(claims(clock.t))
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(t, tok); kid != c.kid {
			t.Fatalf("at %v signed with %s, want %s", c.at, kid, c.kid)
		}
	}

	is, e0 := newIssuer(t, ES256, clock)
	t3 := clock.t.Add(time.Minute)
	ed, _ := GenerateKey(EdDSA, clock.t)
	e0.RetiredAt, ed.ActivatesAt = &t3, &t3
	if err := is.Load([]domain.SigningKey{ed, e0}); err != nil {
		t.Fatal(err)
	}
	clock.t = t3.Add(time.Hour)
	tok, err := is.Sign(claims(clock.t))
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, tok); kid != e0.KID {
		t.Fatalf("signed with %s after an EdDSA key activated, want the ES256 key %s", kid, e0.KID)
	}
}
