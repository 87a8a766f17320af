package service

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// slowSessionStore answers SessionByID with a session read before a
// revocation, after letting the revocation happen: the race of the review.
type slowSessionStore struct {
	Store
	sess   domain.Session
	during func()
}

func (s *slowSessionStore) SessionByID(ctx context.Context, id uuid.UUID) (*domain.Session, error) {
	read := s.sess // read while the session is still active...
	s.during()     // ...then it is revoked here before the read returns
	return &read, nil
}

func TestSessionCacheDoesNotResurrectARevokedSession(t *testing.T) {
	now := time.Now()
	sid := uuid.New()
	st := &slowSessionStore{sess: domain.Session{ID: sid, UserID: uuid.New(), ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}}
	s := New(Config{SessionCacheTTL: time.Minute}, Deps{Store: st})
	st.during = func() { s.sessions.forget(sid) }
	if _, err := s.sessions.entry(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sessions.cache.Get(sid); ok {
		t.Fatal("a read that raced with the revocation put the revoked session back into the cache")
	}
	// Without a race the read is cached, as before.
	st.during = func() {}
	if _, err := s.sessions.entry(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sessions.cache.Get(sid); !ok {
		t.Fatal("an undisturbed read is not cached")
	}
}
