package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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
