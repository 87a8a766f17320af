package sqlstore

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// A member of a SQLite group whose caller goes away while one of its
// statements runs undoes its own writes only: the statement is not
// interrupted (which would roll back the whole group transaction), the
// member's savepoint is, and the others in its group commit.
func TestWriterCancelledMemberUndoesOnlyItself(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "w.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.db.Exec(`CREATE TABLE marks (name TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	mark := func(name string) func(ctx context.Context, tx *sqlx.Tx) error {
		return func(ctx context.Context, tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO marks (name) VALUES (?)`, name)
			return err
		}
	}

	// Hold the writer so that the next three requests queue into one group.
	hold, release := make(chan struct{}), make(chan struct{})
	holdDone := make(chan error, 1)
	go func() {
		holdDone <- s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
			close(hold)
			<-release
			return nil
		})
	}()
	<-hold

	leaveCtx, leave := context.WithCancel(ctx)
	started := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(map[string]error)
	var mu sync.Mutex
	run := func(name string, c context.Context, fn func(ctx context.Context, tx *sqlx.Tx) error) {
		defer wg.Done()
		err := s.tx(c, fn)
		mu.Lock()
		errs[name] = err
		mu.Unlock()
	}
	wg.Add(3)
	go run("before", ctx, mark("before"))
	go run("leaver", leaveCtx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := mark("leaver")(ctx, tx); err != nil {
			return err
		}
		close(started)
		// A statement long enough for the caller to leave while it runs.
		var n int
		if err := tx.GetContext(ctx, &n, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c`); err != nil {
			return err
		}
		<-leaveCtx.Done() // whenever the caller left, it has left by now
		return nil
	})
	go run("after", ctx, mark("after"))
	go func() {
		<-started
		leave()
	}()
	// Let the three reach the writer's queue, then let the writer go.
	for s.writerQueued() < 3 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := <-holdDone; err != nil {
		t.Fatal(err)
	}

	if !domain.IsCode(errs["leaver"], domain.CodeUnavailable) {
		t.Fatalf("the member whose caller left: err = %v, want unavailable (cancelled)", errs["leaver"])
	}
	for _, name := range []string{"before", "after"} {
		if errs[name] != nil {
			t.Fatalf("member %q of the same group: %v", name, errs[name])
		}
	}
	var got []string
	if err := s.db.Select(&got, `SELECT name FROM marks ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "after" || got[1] != "before" {
		t.Fatalf("kept writes = %v, want [after before]", got)
	}
}
