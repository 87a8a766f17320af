package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// forEachPostgres runs f on PostgreSQL, directly and through the pooler:
// the shared rate limits (LATCH_RATE_LIMIT_STORE=postgres) and the change
// notifications exist only there.
func forEachPostgres(t *testing.T, f func(t *testing.T, s *sqlstore.Store, pg pgTest)) {
	for _, d := range testutil.Dialects {
		if d == "sqlite" {
			continue
		}
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			u := testutil.DatabaseURL(t, d)
			s, err := sqlstore.Open(context.Background(), u, testutil.StoreOptions(t, d, u))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			pg := pgTest{direct: u, another: func() *sqlstore.Store {
				o, err := sqlstore.Open(context.Background(), u, testutil.StoreOptions(t, d, u))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { o.Close() })
				return o
			}}
			if o := testutil.StoreOptions(t, d, u); o.DirectURL != "" {
				pg.direct = o.DirectURL
			}
			f(t, s, pg)
		})
	}
}

// pgTest is what a PostgreSQL test may need beside its store.
type pgTest struct {
	// another opens one more store on the same database (another
	// instance), closed at the end of the test.
	another func() *sqlstore.Store
	// direct is the database's URL on PostgreSQL itself (not the pooler).
	direct string
}

func countRateLimitRows(t *testing.T, s *sqlstore.Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM rate_limits`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPruneRateLimits: the pruning worker's rate_limits kind deletes the
// rows whose bucket is full again (their arrival time is past), in batches
// no larger than asked, and leaves the rows still limiting a key, whose
// state (a refusal) survives the pruning.
func TestPruneRateLimits(t *testing.T) {
	forEachPostgres(t, func(t *testing.T, s *sqlstore.Store, _ pgTest) {
		ctx := context.Background()
		clock := now
		l := s.RateLimiter(func() time.Time { return clock })
		rule := ratelimit.Rule{Burst: 2, Per: time.Minute} // a token every 30 s
		// Seven keys take one token at now: their buckets are full again
		// at now+30s.
		for i := range 7 {
			if ok, _, err := l.Allow(ctx, "login_ip", rule, fmt.Sprintf("old-%d", i)); err != nil || !ok {
				t.Fatalf("old-%d: %v %v", i, ok, err)
			}
		}
		// Two keys are used up at now+50s: full again only at now+110s.
		clock = now.Add(50 * time.Second)
		for _, k := range []string{"live-a", "live-b"} {
			for range 2 {
				if ok, _, err := l.Allow(ctx, "login_ip", rule, k); err != nil || !ok {
					t.Fatalf("%s: %v %v", k, ok, err)
				}
			}
			if ok, _, _ := l.Allow(ctx, "login_ip", rule, k); ok {
				t.Fatalf("%s: a third token within the minute", k)
			}
		}
		if n := countRateLimitRows(t, s); n != 9 {
			t.Fatalf("%d rows, want 9", n)
		}
		// Nothing is expired before now+30s.
		if n, err := s.Prune(ctx, domain.PruneRateLimits, now.Add(30*time.Second), 100); err != nil || n != 0 {
			t.Fatalf("pruned %d (%v) before any bucket was full", n, err)
		}
		before := now.Add(60 * time.Second)
		deleted := 0
		for {
			n, err := s.Prune(ctx, domain.PruneRateLimits, before, 3)
			if err != nil {
				t.Fatal(err)
			}
			if n > 3 {
				t.Fatalf("%d rows deleted with a batch of 3", n)
			}
			deleted += n
			if n < 3 {
				break
			}
		}
		if deleted != 7 {
			t.Fatalf("pruned %d rows, want the 7 expired", deleted)
		}
		if n := countRateLimitRows(t, s); n != 2 {
			t.Fatalf("%d rows left, want the 2 live ones", n)
		}
		// The live keys are still limited after the pruning...
		clock = before
		for _, k := range []string{"live-a", "live-b"} {
			if ok, _, _ := l.Allow(ctx, "login_ip", rule, k); ok {
				t.Fatalf("%s: allowed after the pruning, its limit was lost", k)
			}
		}
		// ...and a pruned key starts with a full bucket, as it would have.
		for range 2 {
			if ok, _, err := l.Allow(ctx, "login_ip", rule, "old-0"); err != nil || !ok {
				t.Fatalf("old-0 after the pruning: %v %v", ok, err)
			}
		}
	})
}
