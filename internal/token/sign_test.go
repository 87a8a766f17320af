package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The hand-rolled signer makes exactly what the jwt library would.
func TestSignMatchesLibrary(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	for _, alg := range []string{EdDSA, RS256} { // deterministic signatures
		is, _ := newIssuer(t, alg, clock)
		c := claims(clock.t)
		got, err := is.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		k := is.activeKey()
		lib := jwt.NewWithClaims(k.method, c)
		lib.Header["typ"] = TypAccessToken
		lib.Header["kid"] = k.kid
		want, err := lib.SignedString(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s:\n got %s\nwant %s", alg, got, want)
		}
	}
}
