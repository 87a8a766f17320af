package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// This file holds what makes the store fast without changing what it
// stores: prepared statements for the hot queries, and group commit of
// SQLite write transactions.

// stmts caches prepared statements by query text. database/sql prepares a
// statement lazily on each pooled connection it runs on and keeps it there,
// so a hot query is parsed once per connection instead of once per call
// (SQLite) and costs one round trip less (PostgreSQL). A query not yet
// prepared runs unprepared while a background goroutine prepares it: the
// caller may hold the pool's last connection in a transaction, so it must
// never wait for another.
type stmts struct {
	// disabled is set behind a transaction-mode pooler: nothing is ever
	// prepared (see Options.NoPreparedStatements).
	disabled bool
	mu       sync.RWMutex
	m        map[string]*sqlx.Stmt
	pending  map[string]bool
	closed   bool
}

// lookup returns the prepared statement for query, or nil after starting its
// preparation.
func (c *stmts) lookup(db *sqlx.DB, query string) *sqlx.Stmt {
	if c.disabled {
		return nil
	}
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st = c.m[query]; st != nil || c.pending[query] || c.closed {
		return st
	}
	if c.pending == nil {
		c.pending, c.m = map[string]bool{}, map[string]*sqlx.Stmt{}
	}
	c.pending[query] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := db.PreparexContext(ctx, query)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, query)
		if err != nil {
			return
		}
		if c.closed {
			st.Close()
			return
		}
		c.m[query] = st
	}()
	return nil
}

func (c *stmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m, c.closed = nil, true
}

// get runs a single-row query (written with ? placeholders) through a
// cached prepared statement. Errors are not translated.
func (s *Store) get(ctx context.Context, dest any, query string, args ...any) error {
	query = s.q(query)
	if st := s.stmts.lookup(s.db, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return s.db.GetContext(ctx, dest, query, args...)
}

// txGet is get inside the transaction tx.
func (s *Store) txGet(ctx context.Context, tx *sqlx.Tx, dest any, query string, args ...any) error {
	query = s.q(query)
	if st := s.stmts.lookup(s.db, query); st != nil {
		return tx.StmtxContext(ctx, st).GetContext(ctx, dest, args...)
	}
	return tx.GetContext(ctx, dest, query, args...)
}

// txExec is an Exec through a cached prepared statement inside tx.
func (s *Store) txExec(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (sql.Result, error) {
	query = s.q(query)
	if st := s.stmts.lookup(s.db, query); st != nil {
		return tx.StmtxContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// exec runs one writing statement (with ? placeholders) outside any
// transaction of the caller's: on SQLite through the writer, so it queues
// behind the other writes instead of polling for the database lock.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.writer == nil {
		return s.db.ExecContext(ctx, s.q(query), args...)
	}
	var res sql.Result
	err := s.writer.do(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.q(query), args...)
		return err
	})
	return res, err
}

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
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// maxGroup bounds the transactions of one commit, and so the latency that a
// group adds to its first member.
const maxGroup = 64

type writeReq struct {
	ctx context.Context
	fn  func(tx *sqlx.Tx) error
	res chan error
}

// panicked carries a panic of a transaction's function back to its caller.
type panicked struct{ v any }

func (p *panicked) Error() string { return fmt.Sprint("panic in transaction: ", p.v) }

// errGroupLost is what the members of a group hear when its transaction
// was lost (a statement interrupted by its caller's cancelled context rolls
// back the whole SQLite transaction): none of their writes were kept.
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
func (w *writer) do(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, res: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
	case <-w.quit:
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

func (w *writer) loop() {
	defer close(w.done)
	for {
		var group []*writeReq
		select {
		case r := <-w.reqs:
			group = append(group, r)
		case <-w.quit:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-w.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		w.run(group)
	}
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
			errs[i] = &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: err}
			continue
		}
		if !single {
			if err := w.savepoint(tx, 0); err != nil {
				w.lose(tx, group, errs, i)
				answer()
				return
			}
		}
		errs[i] = call(r.fn, tx)
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
func call(fn func(tx *sqlx.Tx) error, tx *sqlx.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{v: v}
		}
	}()
	return fn(tx)
}
