package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify (token_test.go) presents one token again and again, so
// since the verified-token cache it measures a cache hit; this measures the
// full check of a token seen for the first time.
func BenchmarkVerifyUncached(b *testing.B) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		b.Run(alg, func(b *testing.B) {
			clock := &fixedClock{t: time.Now()}
			is, _ := newIssuer(b, alg, clock)
			is.verified = nil
			tok, _ := is.Sign(claims(clock.t))
			for b.Loop() {
				if _, err := is.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached is a cache hit: hashing the token and a map lookup.
func BenchmarkVerifyCached(b *testing.B) {
	clock := &fixedClock{t: time.Now()}
	is, _ := newIssuer(b, ES256, clock)
	tok, _ := is.Sign(claims(clock.t))
	if _, err := is.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := is.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignLibrary signs as Sign did before it encoded the header once
// per key: through jwt.Token.SignedString. Compare with BenchmarkSign.
func BenchmarkSignLibrary(b *testing.B) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		b.Run(alg, func(b *testing.B) {
			clock := &fixedClock{t: time.Now()}
			is, _ := newIssuer(b, alg, clock)
			k := is.activeKey()
			b.ReportAllocs()
			for b.Loop() {
				c := claims(clock.t)
				c.Issuer = is.cfg.Issuer
				c.Audience = jwt.ClaimStrings{is.cfg.Audience}
				t := jwt.NewWithClaims(k.method, c)
				t.Header["typ"] = TypAccessToken
				t.Header["kid"] = k.kid
				if _, err := t.SignedString(k.priv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
