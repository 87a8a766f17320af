package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// writer runs a SQLite store's write transactions one after another and
// commits them in groups: while one group commits (an fsync of the WAL with
// synchronous=FULL), the transactions that arrive queue, and the next group
// runs them in one database transaction, each inside its own SAVEPOINT, and
// commits once. A caller hears back only after the commit that holds its
// writes is durable; a transaction that fails is rolled back to its
// savepoint alone. Each caller's function sees the writes of those before
// it, exactly as if the transactions had run one by one (SQLite runs one
// writer at a time anyway). Without it, concurrent writers each start BEGIN
// IMMEDIATE and all but one sleep in SQLite's busy handler, polling.
//
// The writer keeps one pooled connection for itself. SQLite empties a
// connection's page cache when it starts a transaction after another
// connection has written; the writer's connection is the only one that
// writes, so its cache stays warm from group to group (3-6% more rotations
// per second, the more the larger the database).
type writer struct {
	db   *sqlx.DB
	conn *sqlx.Conn    // the writer's own connection; only loop uses it
	sp   [3]*sqlx.Stmt // SAVEPOINT, RELEASE, ROLLBACK TO; prepared once
	reqs chan *writeReq
	// waiting counts the callers of do not yet taken by the loop.
	waiting atomic.Int32
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// maxGroup bounds the transactions of one commit, and so the latency that a
// group adds to its first member.
const maxGroup = 64

type writeReq struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sqlx.Tx) error
	res chan error
}

// panicked carries a panic of a transaction's function back to its caller.
type panicked struct{ v any }

func (p *panicked) Error() string { return fmt.Sprint("panic in transaction: ", p.v) }

// errGroupLost is what the members of a group hear when its transaction
// itself failed (a SAVEPOINT, RELEASE or ROLLBACK TO that the database
// refused): none of their writes were kept. A member's cancellation never
// causes it: members run on contexts without cancellation (see run).
var errGroupLost = &domain.Error{Code: domain.CodeUnavailable, Message: "the database is busy", Err: errors.New("sqlstore: group transaction rolled back")}

var errClosed = &domain.Error{Code: domain.CodeUnavailable, Message: "the database is closed"}

func newWriter(db *sqlx.DB) *writer {
	w := &writer{db: db, reqs: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	for i, q := range []string{"SAVEPOINT w", "RELEASE w", "ROLLBACK TO w"} {
		// Unprepared statements still work when this fails.
		w.sp[i], _ = db.Preparex(q)
	}
	go w.loop()
	return w
}

// savepoint runs statement i of w.sp (0 SAVEPOINT, 1 RELEASE, 2 ROLLBACK
// TO) in tx.
func (w *writer) savepoint(tx *sqlx.Tx, i int) error {
	bg := context.Background()
	if st := w.sp[i]; st != nil {
		_, err := tx.StmtxContext(bg, st).ExecContext(bg)
		return err
	}
	_, err := tx.ExecContext(bg, [...]string{"SAVEPOINT w", "RELEASE w", "ROLLBACK TO w"}[i])
	return err
}

func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	for _, st := range w.sp {
		if st != nil {
			st.Close()
		}
	}
}

// do runs fn in a write transaction and returns its error, or the commit's.
// fn must run its statements on the context it is given, never on ctx: a
// statement interrupted by a cancelled context rolls back the whole SQLite
// transaction, which is every member's of the group. If ctx ends while fn
// runs, fn's writes are undone (its savepoint alone) and do reports the
// cancellation.
func (w *writer) do(ctx context.Context, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, res: make(chan error, 1)}
	w.waiting.Add(1)
	select {
	case w.reqs <- r:
		w.waiting.Add(-1)
	case <-ctx.Done():
		w.waiting.Add(-1)
		return cancelled(ctx.Err())
	case <-w.quit:
		w.waiting.Add(-1)
		return errClosed
	}
	// Once queued, the request runs (or is skipped, if its context has
	// ended by then): wait for its outcome so that a caller never returns
	// while its writes may still commit.
	err := <-r.res
	if p, ok := err.(*panicked); ok {
		panic(p.v)
	}
	return err
}

// loop runs the groups, one at a time, until the writer is closed.
func (w *writer) loop() {
	defer close(w.done)
	collect(w.reqs, w.quit, maxGroup, w.run)
}

// run executes one group and answers each member.
func (w *writer) run(group []*writeReq) {
	errs := make([]error, len(group))
	answer := func() {
		for i, r := range group {
			r.res <- errs[i]
		}
	}
	tx, err := w.begin()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		answer()
		return
	}
	single := len(group) == 1
	ran := false
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			errs[i] = cancelled(err)
			continue
		}
		if !single {
			if err := w.savepoint(tx, 0); err != nil {
				w.lose(tx, group, errs, i)
				answer()
				return
			}
		}
		// The member's statements run to completion whatever its caller
		// does meanwhile (an interrupted statement would roll back the
		// whole group); a caller that left is only undone afterwards.
		errs[i] = call(r.fn, context.WithoutCancel(r.ctx), tx)
		if errs[i] == nil {
			if err := r.ctx.Err(); err != nil {
				errs[i] = cancelled(err)
			}
		}
		ran = true
		if single {
			break
		}
		if errs[i] != nil {
			if err := w.savepoint(tx, 2); err != nil {
				// The transaction itself is gone: nothing of the group holds.
				w.lose(tx, group, errs, i+1)
				answer()
				return
			}
		}
		if err := w.savepoint(tx, 1); err != nil {
			w.lose(tx, group, errs, i+1)
			answer()
			return
		}
	}
	if !ran || (single && errs[0] != nil) {
		_ = tx.Rollback()
		answer()
		return
	}
	if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	answer()
}

// begin starts a write transaction on the writer's connection, taking one
// from the pool first if it has none. A connection that fails to begin goes
// back to the pool (database/sql discards a broken one) and the next group
// takes another.
func (w *writer) begin() (*sqlx.Tx, error) {
	bg := context.Background()
	if w.conn == nil {
		c, err := w.db.Connx(bg)
		if err != nil {
			return nil, err
		}
		w.conn = c
	}
	tx, err := w.conn.BeginTxx(bg, nil)
	if err != nil {
		w.conn.Close()
		w.conn = nil
		return nil, err
	}
	return tx, nil
}

// lose rolls the group's transaction back and fails every member that had
// succeeded before index upto, and every member from upto on.
func (w *writer) lose(tx *sqlx.Tx, group []*writeReq, errs []error, upto int) {
	_ = tx.Rollback()
	for i := range group {
		if i >= upto || errs[i] == nil {
			errs[i] = errGroupLost
		}
	}
}

// call runs fn, turning a panic into a *panicked error.
func call(fn func(ctx context.Context, tx *sqlx.Tx) error, ctx context.Context, tx *sqlx.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{v: v}
		}
	}()
	return fn(ctx, tx)
}

// cancelled is the error of a caller whose context ended.
func cancelled(err error) error {
	return &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: err}
}
