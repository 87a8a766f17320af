package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// keyStore serves a key set that the test replaces.
type keyStore struct {
	meStore
	keys []domain.SigningKey
}

func (k *keyStore) SigningKeys(context.Context, time.Time) ([]domain.SigningKey, error) {
	return append([]domain.SigningKey(nil), k.keys...), nil // ReloadKeys opens them in place
}

// The verified-token cache must never accept what a full check refuses.
func TestVerifyCacheKeepsEveryCheck(t *testing.T) {
	c := &keyTestClock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	now := c.Now()
	sealer, err := token.NewSealer(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	newKey := func() domain.SigningKey {
		k, err := token.GenerateKey(token.ES256, now)
		if err != nil {
			t.Fatal(err)
		}
		if k.PrivatePEM, err = sealer.Seal(k.PrivatePEM, token.SigningKeyLabel(k.KID)); err != nil {
			t.Fatal(err)
		}
		return k
	}
	iss, err := token.NewIssuer(token.Config{Alg: token.ES256, Issuer: "https://latch.test", Audience: "latch", Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	u := domain.User{ID: uuid.New(), Email: "a@example.com", CreatedAt: now, UpdatedAt: now}
	sess := domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}
	st := &keyStore{meStore: meStore{user: u, sess: sess}, keys: []domain.SigningKey{newKey()}}
	s := New(Config{AccessTTL: 15 * time.Minute}, Deps{Store: st, Issuer: iss, Sealer: sealer, Clock: c})
	ctx := context.Background()
	if err := s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	ts, err := s.sessions.tokenSet(&u, &sess, "", now)
	if err != nil {
		t.Fatal(err)
	}
	tok := ts.AccessToken
	h := sha256.Sum256([]byte(tok))
	for range 2 { // the second check is served from the cache
		if _, err := s.AuthenticateBearer(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.tokens.verified.get(h, c.Now()); !ok {
		t.Fatal("a verified token is not cached")
	}

	t.Run("expired while cached", func(t *testing.T) {
		c.Advance(15*time.Minute + time.Second)
		defer c.Advance(-(15*time.Minute + time.Second))
		if _, err := s.AuthenticateBearer(ctx, tok); !domain.IsCode(err, domain.CodeTokenExpired) {
			t.Fatalf("expired cached token: err = %v", err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		bad := tok[:len(tok)-2] + "AA"
		if bad == tok {
			bad = tok[:len(tok)-2] + "BB"
		}
		if _, err := s.AuthenticateBearer(ctx, bad); err == nil {
			t.Fatal("tampered token accepted")
		}
	})

	t.Run("too long to hash", func(t *testing.T) {
		long := tok + strings.Repeat("A", token.MaxTokenBytes)
		if _, err := s.AuthenticateBearer(ctx, long); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("oversized token: err = %v", err)
		}
	})

	t.Run("ttl", func(t *testing.T) {
		if _, ok := s.tokens.verified.get(h, c.Now().Add(DefaultVerifyCacheTTL)); ok {
			t.Fatal("used past its TTL")
		}
	})

	t.Run("key set replaced", func(t *testing.T) {
		// A new key set without the token's key: the cached claims go.
		st.keys = []domain.SigningKey{newKey()}
		if err := s.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.tokens.verified.get(h, c.Now()); ok {
			t.Fatal("claims checked under the old key set are still cached")
		}
		if _, err := s.AuthenticateBearer(ctx, tok); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("token of a removed key after a reload: err = %v", err)
		}
	})

	t.Run("off", func(t *testing.T) {
		off := New(Config{AccessTTL: 15 * time.Minute, VerifyCacheTTL: -1}, Deps{Store: st, Issuer: iss, Sealer: sealer, Clock: c})
		if off.tokens.verified != nil {
			t.Fatal("cache not off")
		}
	})
}
