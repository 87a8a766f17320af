package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// Writes that share a SQLite group commit are still separate transactions:
// one that fails leaves no trace and takes nobody else's writes with it.
func TestGroupedWritesStaySeparate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "group@example.com")
		var wg sync.WaitGroup
		const n = 40
		errs := make([]error, n)
		ids := make([]uuid.UUID, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 1 {
					// Fails inside its transaction: a session of nobody.
					errs[i] = s.RevokeSession(ctx, uuid.New(), uuid.New(), now)
					return
				}
				ids[i] = uuid.New()
				ss := &domain.Session{ID: ids[i], UserID: u.ID, CreatedAt: now, LastUsedAt: now,
					ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}
				errs[i] = s.CreateSession(ctx, ss, &domain.RefreshToken{ID: uuid.New(), SessionID: ids[i], Hash: hash(randBytes()), CreatedAt: now})
			}()
		}
		wg.Wait()
		for i := range n {
			if i%2 == 1 {
				if !domain.IsCode(errs[i], domain.CodeNotFound) {
					t.Fatalf("write %d: err = %v, want not_found", i, errs[i])
				}
				continue
			}
			if errs[i] != nil {
				t.Fatalf("write %d: %v", i, errs[i])
			}
			if _, err := s.SessionByID(ctx, ids[i]); err != nil {
				t.Fatalf("session of write %d: %v", i, err)
			}
		}
		list, err := s.ListSessions(ctx, u.ID, now, nil, 1000)
		if err != nil || len(list) != n/2+1 {
			t.Fatalf("%d sessions (%v), want %d", len(list), err, n/2+1)
		}
	})
}

// A cancelled caller gets an error and its writes are not kept; the writes
// of others go on.
func TestCancelledWriteIsNotKept(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		u, _, _ := newUser(t, s, "cancel@example.com")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		id := uuid.New()
		ss := &domain.Session{ID: id, UserID: u.ID, CreatedAt: now, LastUsedAt: now,
			ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}
		if err := s.CreateSession(ctx, ss, &domain.RefreshToken{ID: uuid.New(), SessionID: id, Hash: hash(randBytes()), CreatedAt: now}); err == nil {
			t.Fatal("cancelled write succeeded")
		}
		if _, err := s.SessionByID(context.Background(), id); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("cancelled write kept: %v", err)
		}
		newUser(t, s, "after-cancel@example.com")
	})
}

// The SQLite writer keeps a connection for itself, so a pool of one would
// leave reads nothing: Open makes it two, and reads and writes interleave.
func TestSQLitePoolOfOneStillReadsWhileWriting(t *testing.T) {
	s, err := sqlstore.Open(context.Background(), testutil.DatabaseURL(t, "sqlite"), sqlstore.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, _, raw := newUser(t, s, "pool@example.com")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := s.UserByID(ctx, u.ID); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			// One rotates; the others are replays within the grace window,
			// each still a write transaction (the session's use) that commits.
			if _, err := s.RotateRefreshToken(ctx, domain.RotateRequest{
				PresentedHash: hash(raw), SuccessorHash: hash([]byte("pool-next")),
				Now: now.Add(time.Duration(i) * time.Millisecond), IdleTTL: time.Hour, Grace: time.Minute,
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("reads and writes on a pool of one did not finish")
	}
	if n := countTokens(t, s, mustSession(t, s, u.ID)); n != 2 {
		t.Fatalf("%d refresh tokens after one rotation, want 2", n)
	}
}

func mustSession(t *testing.T, s *sqlstore.Store, userID uuid.UUID) uuid.UUID {
	t.Helper()
	list, err := s.ListSessions(context.Background(), userID, now, nil, 1000)
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions = %+v, %v", list, err)
	}
	return list[0].ID
}
