package service

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// meStore knows one user and one session.
type meStore struct {
	Store
	user domain.User
	sess domain.Session
}

func (m *meStore) SessionByID(context.Context, uuid.UUID) (*domain.Session, error) {
	s := m.sess
	return &s, nil
}

func (m *meStore) UserByID(context.Context, uuid.UUID) (*domain.User, error) {
	u := m.user
	return &u, nil
}

// BenchmarkAuthenticateMe is the service's part of GET /auth/me with warm
// caches: verifying the bearer token (the verified-token cache), finding
// its session (the session cache) and reading the user (the user cache).
func BenchmarkAuthenticateMe(b *testing.B) {
	c := &keyTestClock{}
	c.now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	now := c.Now()
	iss, err := token.NewIssuer(token.Config{Alg: token.ES256, Issuer: "https://latch.test", Audience: "latch", Clock: c})
	if err != nil {
		b.Fatal(err)
	}
	k, err := token.GenerateKey(token.ES256, now)
	if err != nil {
		b.Fatal(err)
	}
	if err := iss.Load([]domain.SigningKey{k}); err != nil {
		b.Fatal(err)
	}
	u := domain.User{ID: uuid.New(), Email: "a@example.com", CreatedAt: now, UpdatedAt: now}
	sess := domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}
	st := &meStore{user: u, sess: sess}
	s := New(Config{AccessTTL: 15 * time.Minute, SessionCacheTTL: DefaultSessionCacheTTL}, Deps{Store: st, Issuer: iss, Clock: c})
	ts, err := s.sessions.tokenSet(&u, &sess, "", now)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.AuthenticateBearer(ctx, ts.AccessToken)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Me(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
