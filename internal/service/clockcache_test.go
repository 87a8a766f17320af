package service

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// TestKeyCacheExpiresOnTheServiceClock: a key revoked on another instance
// is accepted from the cache until APIKeyConfig.CacheTTL has passed on the
// injected clock, and refused after it; no wall-clock time passes.
func TestKeyCacheExpiresOnTheServiceClock(t *testing.T) {
	s, st, c, secret := newKeyService(t)
	ctx := context.Background()
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); err != nil {
		t.Fatal(err)
	}
	ttl := s.keys.cfg.CacheTTL
	if ttl != DefaultAPIKeyConfig().CacheTTL {
		t.Fatalf("CacheTTL %v, want the default", ttl)
	}
	st.mu.Lock()
	now := c.Now()
	st.keys[secret.Hash()].RevokedAt = &now // revoked elsewhere
	st.mu.Unlock()
	c.Advance(ttl - time.Millisecond)
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); err != nil {
		t.Fatalf("within CacheTTL: %v", err)
	}
	if n := st.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups within CacheTTL, want 1", n)
	}
	c.Advance(time.Millisecond)
	if _, err := s.AuthenticateAPIKey(ctx, secret.Reveal()); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("after CacheTTL: %v, want the revocation seen", err)
	}
	if n := st.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}
}

// TestSessionCacheExpiresOnTheServiceClock: a session revoked on another
// instance is trusted from the cache until SessionCacheTTL has passed on
// the injected clock, and refused after it.
func TestSessionCacheExpiresOnTheServiceClock(t *testing.T) {
	c := &keyTestClock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	now := c.Now()
	sid := uuid.New()
	st := &slowSessionStore{sess: domain.Session{ID: sid, UserID: uuid.New(), ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)},
		during: func() {}}
	s := New(Config{SessionCacheTTL: 2 * time.Second}, Deps{Store: st, Clock: c})
	if _, err := s.sessions.entry(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	st.sess.RevokedAt = &now // revoked elsewhere
	c.Advance(2*time.Second - time.Microsecond)
	if _, err := s.sessions.entry(context.Background(), sid); err != nil {
		t.Fatalf("within SessionCacheTTL: %v", err)
	}
	c.Advance(time.Microsecond)
	if _, err := s.sessions.entry(context.Background(), sid); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("after SessionCacheTTL: %v, want the revocation seen", err)
	}
}

// TestSessionCacheTTLZeroCachesNothing: LATCH_SESSION_CACHE_TTL=0 is taken
// as it is (it once became 2 s): a session revoked elsewhere is refused on
// the next request, with no time passing.
func TestSessionCacheTTLZeroCachesNothing(t *testing.T) {
	c := &keyTestClock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	now := c.Now()
	sid := uuid.New()
	st := &slowSessionStore{sess: domain.Session{ID: sid, UserID: uuid.New(), ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)},
		during: func() {}}
	s := New(Config{SessionCacheTTL: 0}, Deps{Store: st, Clock: c})
	if _, err := s.sessions.entry(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	st.sess.RevokedAt = &now // revoked elsewhere
	if _, err := s.sessions.entry(context.Background(), sid); domain.ErrorCode(err) != domain.CodeInvalidToken {
		t.Fatalf("with no cache: %v, want the revocation seen at once", err)
	}
}
