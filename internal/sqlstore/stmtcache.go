package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// This file holds the statement cache: prepared statements for the hot
// queries, and the helpers that run a query through it.

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
	err := s.writer.do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.q(query), args...)
		return err
	})
	return res, err
}
