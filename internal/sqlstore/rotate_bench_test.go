package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// benchStore opens a fresh, migrated store of the dialect. A benchmark is
// never a gate: it skips when PostgreSQL is unreachable, even under CI.
func benchStore(b *testing.B, dialect string) *sqlstore.Store {
	b.Helper()
	if dialect == "postgres" {
		db, err := sql.Open("postgres", testutil.PostgresURL())
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
		}
		if err != nil {
			b.Skipf("PostgreSQL unreachable: %v", err)
		}
	}
	u := testutil.DatabaseURL(b, dialect)
	s, err := sqlstore.Open(context.Background(), u, testutil.StoreOptions(b, dialect, u))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchSession stores a user with one session and returns the session's
// first refresh token.
func benchSession(b *testing.B, s *sqlstore.Store, i int) []byte {
	b.Helper()
	t := time.Now().UTC()
	u := &domain.User{ID: uuid.New(), Email: fmt.Sprintf("bench-%d-%s@example.com", i, uuid.NewString()[:8]),
		PasswordHash: "$argon2id$x", CreatedAt: t, UpdatedAt: t}
	sess := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: t, LastUsedAt: t,
		ExpiresAt: t.Add(time.Hour), AbsoluteExpiresAt: t.Add(24 * time.Hour), IP: "127.0.0.1", UserAgent: "bench"}
	raw := randBytes()
	if err := s.CreateUser(context.Background(), u, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash(raw), CreatedAt: t}); err != nil {
		b.Fatal(err)
	}
	return raw
}

// rotateNext spends raw and returns its successor.
func rotateNext(b *testing.B, s *sqlstore.Store, raw []byte) []byte {
	next := randBytes()
	res, err := s.RotateRefreshToken(context.Background(), domain.RotateRequest{
		PresentedHash: hash(raw), SuccessorHash: hash(next), Now: time.Now().UTC(), IdleTTL: time.Hour, Grace: 10 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Outcome != domain.Rotated {
		b.Fatalf("outcome %v", res.Outcome)
	}
	return next
}

// BenchmarkRotateRefreshToken is one refresh rotation in the store, one
// after another on one session: the latency of a rotation, commit included
// (an fsync on both databases).
func BenchmarkRotateRefreshToken(b *testing.B) {
	for _, d := range testutil.Dialects {
		b.Run(d, func(b *testing.B) {
			s := benchStore(b, d)
			raw := benchSession(b, s, 0)
			b.ReportAllocs()
			for b.Loop() {
				raw = rotateNext(b, s, raw)
			}
		})
	}
}

// BenchmarkRotateRefreshTokenParallel rotates many sessions at once, each
// goroutine its own chain: the throughput of rotations, where SQLite's group
// commit and PostgreSQL's concurrent commits pay off.
func BenchmarkRotateRefreshTokenParallel(b *testing.B) {
	for _, d := range testutil.Dialects {
		b.Run(d, func(b *testing.B) {
			s := benchStore(b, d)
			var n atomic.Int64
			b.SetParallelism(16) // 16 x GOMAXPROCS chains
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				raw := benchSession(b, s, int(n.Add(1)))
				for pb.Next() {
					raw = rotateNext(b, s, raw)
				}
			})
		})
	}
}
