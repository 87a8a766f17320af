package service

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/domain"
)

// keyTestStore is a store that knows API keys only and counts its calls; any
// other store call panics on the nil Store.
type keyTestStore struct {
	Store
	mu      sync.Mutex
	keys    map[apikey.Hash]*domain.APIKey
	lookups atomic.Int64
	touches atomic.Int64
}

func (f *keyTestStore) APIKeyByHash(_ context.Context, hash []byte) (*domain.APIKey, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.keys[apikey.Hash(hash)]; ok {
		c := *k
		return &c, nil
	}
	return nil, domain.Errorf(domain.CodeNotFound, "not found")
}

func (f *keyTestStore) APIKeyByID(_ context.Context, id uuid.UUID) (*domain.APIKey, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id {
			c := *k
			return &c, nil
		}
	}
	return nil, domain.Errorf(domain.CodeNotFound, "not found")
}

// TouchAPIKey records the use as the stores do: only when the last one
// is at least every old.
func (f *keyTestStore) TouchAPIKey(_ context.Context, id uuid.UUID, now time.Time, every time.Duration) (bool, error) {
	f.touches.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id && (k.LastUsedAt == nil || !k.LastUsedAt.After(now.Add(-every))) {
			at := now
			k.LastUsedAt = &at
			return true, nil
		}
	}
	return false, nil
}

type keyTestClock struct{ now atomic.Int64 }

func (c *keyTestClock) Now() time.Time          { return time.UnixMicro(c.now.Load()).UTC() }
func (c *keyTestClock) Advance(d time.Duration) { c.now.Add(d.Microseconds()) }

func newKeyService(t testing.TB) (*APIKeys, *keyTestStore, *keyTestClock, apikey.Secret) {
	t.Helper()
	st := &keyTestStore{keys: map[apikey.Hash]*domain.APIKey{}}
	c := &keyTestClock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	svc := New(Config{}, Deps{Store: st, Clock: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := NewAPIKeys(svc.Shared(), nil, nil)
	secret, err := apikey.Generate(apikey.Personal)
	if err != nil {
		t.Fatal(err)
	}
	h := secret.Hash()
	uid := uuid.New()
	st.keys[h] = &domain.APIKey{ID: uuid.New(), UserID: &uid, Scopes: []string{"users:read"}, Hash: h[:], Prefix: secret.DisplayPrefix(), CreatedAt: c.Now()}
	return s, st, c, secret
}

// TestAuthenticateAPIKeyChecksBeforeStore counts store calls: a malformed
// key costs none, a good key one until its cache entry expires, an unknown
// well-formed key one per cache lifetime.
func TestAuthenticateAPIKeyChecksBeforeStore(t *testing.T) {
	s, st, _, secret := newKeyService(t)
	ctx := context.Background()
	key := secret.Reveal()
	// The altered last character must differ from the real one, or the
	// "bad" key is the good key once in 62 runs.
	last := "x"
	if key[apikey.Len-1] == 'x' {
		last = "y"
	}
	for _, bad := range []string{"", "latch_u_", key[:apikey.Len-1] + last, "latch_o" + key[7:], key + "0", "Bearer " + key} {
		if _, err := s.AuthenticateAPIKey(ctx, bad); domain.ErrorCode(err) != domain.CodeInvalidToken {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if n := st.lookups.Load(); n != 0 {
		t.Fatalf("malformed keys reached the store %d times", n)
	}
	for range 5 {
		p, err := s.AuthenticateAPIKey(ctx, key)
		if err != nil || p.Kind != domain.PrincipalAPIKey || !p.HasScope("users:read") || p.HasScope("keys:read") {
			t.Fatalf("good key: %+v %v", p, err)
		}
	}
	if n := st.lookups.Load(); n != 1 {
		t.Fatalf("a cached key was looked up %d times", n)
	}
	unknown, _ := apikey.Generate(apikey.Personal)
	for range 3 {
		if _, err := s.AuthenticateAPIKey(ctx, unknown.Reveal()); domain.ErrorCode(err) != domain.CodeInvalidToken {
			t.Fatal(err)
		}
	}
	if n := st.lookups.Load(); n != 2 {
		t.Fatalf("an unknown key was looked up %d times, want once", n)
	}
}

func TestAuthenticateAPIKeyRevokedHereAtOnce(t *testing.T) {
	s, st, c, secret := newKeyService(t)
	ctx := context.Background()
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); err != nil {
		t.Fatal(err)
	}
	k := st.keys[secret.Hash()]
	now := c.Now()
	k.RevokedAt = &now
	// Still cached: another instance's revocation waits for CacheTTL.
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); err != nil {
		t.Fatalf("cache entry dropped early: %v", err)
	}
	// This instance's revocation forgets the key.
	s.keys.forgetKey(k)
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestTouchKeyThrottled(t *testing.T) {
	s, st, c, secret := newKeyService(t)
	ctx := context.Background()
	use := func() {
		t.Helper()
		if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); err != nil {
			t.Fatal(err)
		}
	}
	use()
	use()
	c.Advance(59 * time.Second)
	use()
	if n := st.touches.Load(); n != 1 {
		t.Fatalf("%d writes within a minute", n)
	}
	c.Advance(time.Second)
	use()
	use()
	if n := st.touches.Load(); n != 2 {
		t.Fatalf("%d writes after a minute, want 2", n)
	}
}

// BenchmarkVerifyAPIKey is the hot path: a cached, valid key.
func BenchmarkVerifyAPIKey(b *testing.B) {
	s, _, _, secret := newKeyService(b)
	ctx := context.Background()
	key := secret.Reveal()
	if _, err := s.AuthenticateAPIKey(ctx, key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AuthenticateAPIKey(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyAPIKeyBadChecksum is what a flood of garbage keys costs.
func BenchmarkVerifyAPIKeyBadChecksum(b *testing.B) {
	s, _, _, secret := newKeyService(b)
	ctx := context.Background()
	key := secret.Reveal()
	key = key[:apikey.Len-1] + map[bool]string{true: "1", false: "0"}[key[apikey.Len-1] == '0']
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AuthenticateAPIKey(ctx, key); err == nil {
			b.Fatal("accepted")
		}
	}
}
