package token

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/latchauth/latch/internal/domain"
)

// The verified-token cache must never accept what a full check refuses.
func TestVerifyCacheKeepsEveryCheck(t *testing.T) {
	clock := &fixedClock{t: time.Now().Truncate(time.Second)}
	is, _ := newIssuer(t, ES256, clock)
	tok, err := is.Sign(claims(clock.t))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second Verify is served from the cache
		if _, err := is.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("expired while cached", func(t *testing.T) {
		saved := clock.t
		clock.t = saved.Add(15*time.Minute + time.Second)
		_, err := is.Verify(tok)
		clock.t = saved
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeTokenExpired {
			t.Fatalf("expired cached token: err = %v", err)
		}
	})

	t.Run("key set replaced", func(t *testing.T) {
		is3, _ := newIssuer(t, ES256, clock)
		tok3, err := is3.Sign(claims(clock.t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := is3.Verify(tok3); err != nil {
			t.Fatal(err)
		}
		// A new key set without the token's key: the cached claims go.
		k, _ := GenerateKey(ES256, clock.t)
		if err := is3.Load([]domain.SigningKey{k}); err != nil {
			t.Fatal(err)
		}
		if _, err := is3.Verify(tok3); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("token of a removed key after Load: err = %v", err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		bad := tok[:len(tok)-2] + "AA"
		if bad == tok {
			bad = tok[:len(tok)-2] + "BB"
		}
		if _, err := is.Verify(bad); err == nil {
			t.Fatal("tampered token accepted")
		}
	})

	t.Run("ttl", func(t *testing.T) {
		h := sha256.Sum256([]byte(tok))
		if _, ok := is.verified.get(h, clock.t); !ok {
			t.Fatal("not cached")
		}
		if _, ok := is.verified.get(h, clock.t.Add(DefaultVerifyCacheTTL)); ok {
			t.Fatal("used past its TTL")
		}
	})

	t.Run("off", func(t *testing.T) {
		off, err := NewIssuer(Config{Alg: ES256, Issuer: "https://latch.test", Audience: "latch", Clock: clock, VerifyCacheTTL: -1})
		if err != nil {
			t.Fatal(err)
		}
		if off.verified != nil {
			t.Fatal("cache not off")
		}
	})
}

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
