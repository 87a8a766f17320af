// Package sqlstore implements the domain's storage interfaces over sqlx, for
// an embedded SQLite database (modernc.org/sqlite, pure Go) and for
// PostgreSQL (lib/pq). Every public method opens its own transaction when it
// writes; sqlx appears nowhere outside this package.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchauth/latch/internal/domain"
)

//go:embed migrations
var migrations embed.FS

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Store is the sqlx store. It is safe for concurrent use.
type Store struct {
	db      *sqlx.DB
	dialect string
	// writer group-commits SQLite write transactions (nil on PostgreSQL).
	writer *writer
	// rotator group-commits refresh-token rotations on PostgreSQL (nil on
	// SQLite, whose writer does that for every write transaction).
	rotator *rotateBatcher
	stmts   stmts
	// direct is a connection that bypasses a pooler, for migrations (nil:
	// db is direct).
	direct *sqlx.DB
	// listenURL is the direct URL that Listen connects to.
	listenURL string
	// origin tells this store's change notifications from other instances'.
	origin string
	// feedWait bounds a PostgreSQL read of the events feed's wait for the
	// transactions still writing events (Options.FeedWait).
	feedWait time.Duration
}

// Options tune the connection pool.
type Options struct {
	// MaxOpenConns caps open connections (0: a default per dialect). On
	// SQLite it is at least 2: the writer keeps one for itself.
	MaxOpenConns int
	// NoPreparedStatements makes every PostgreSQL query safe for a
	// transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy): no named
	// prepared statement is ever created, and lib/pq sends each
	// parameterized query as an unnamed statement in one round trip
	// (binary_parameters=yes), so no step of it can reach another server
	// connection. Prepared statements stay on for SQLite.
	NoPreparedStatements bool
	// DirectURL, when set, is a PostgreSQL URL that bypasses the pooler:
	// migrations run on it (they need one session throughout).
	DirectURL string
	// NoRotateBatch makes every refresh-token rotation on PostgreSQL run
	// alone in its own transaction, as the rotations a batch did not rotate
	// do (for tests of that path; batching is the default).
	NoRotateBatch bool
	// Logger receives what the store cannot return to a caller (a failed
	// rotation batch); nil discards it.
	Logger *slog.Logger
	// FeedWait bounds how long a read of the outbound events feed on
	// PostgreSQL waits for the transactions that may still commit events
	// below its page (see ListOutboundEvents); 0 is 2s, a negative value
	// does not wait (tests).
	FeedWait time.Duration
}

// Open connects to the database that url names: sqlite://relative/path.db,
// sqlite:///absolute/path.db, or postgres://... (sslmode defaults to
// disable when the URL does not set it). It does not migrate.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		path := strings.TrimPrefix(rawURL, "sqlite://")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return nil, errors.New("sqlite URL has no file path")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		// WAL with synchronous=FULL is durable on crash; BEGIN IMMEDIATE takes
		// the write lock up front, so two write transactions never deadlock
		// upgrading from a read lock; busy_timeout makes writers queue.
		dsn := "file:" + path + "?_txlock=immediate" +
			"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
			"&_pragma=foreign_keys(1)&_pragma=busy_timeout(15000)"
		db, err := sqlx.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		n := opt.MaxOpenConns
		if n == 0 {
			n = 8
		}
		if n < 2 {
			n = 2 // the writer keeps one connection; reads need another
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		s := &Store{db: db, dialect: SQLite}
		if err := s.Ping(ctx); err != nil {
			db.Close()
			return nil, err
		}
		s.writer = newWriter(db)
		return s, nil
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, errors.New("invalid postgres URL")
		}
		q := u.Query()
		if q.Get("sslmode") == "" {
			q.Set("sslmode", "disable")
		}
		if opt.NoPreparedStatements {
			q.Set("binary_parameters", "yes")
		}
		u.RawQuery = q.Encode()
		db, err := sqlx.Open("postgres", u.String())
		if err != nil {
			return nil, err
		}
		n := opt.MaxOpenConns
		if n == 0 {
			n = 32
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
		log := opt.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		s := &Store{db: db, dialect: Postgres, listenURL: u.String(), origin: newOrigin(), feedWait: opt.FeedWait}
		if s.feedWait == 0 {
			s.feedWait = defaultFeedWait
		}
		s.stmts.disabled = opt.NoPreparedStatements
		if err := s.Ping(ctx); err != nil {
			db.Close()
			return nil, err
		}
		if opt.DirectURL != "" && opt.DirectURL != rawURL {
			if s.direct, err = openDirect(ctx, opt.DirectURL); err != nil {
				db.Close()
				return nil, err
			}
			s.listenURL = withSSLMode(opt.DirectURL)
		}
		if !opt.NoRotateBatch {
			s.rotator = newRotateBatcher(s, log)
		}
		return s, nil
	default:
		return nil, errors.New("database URL must start with sqlite:// or postgres://")
	}
}

// Dialect returns SQLite or Postgres.
func (s *Store) Dialect() string { return s.dialect }

// Close closes the connection pool.
func (s *Store) Close() error {
	if s.writer != nil {
		s.writer.close()
	}
	if s.rotator != nil {
		s.rotator.close()
	}
	s.stmts.close()
	if s.direct != nil {
		s.direct.Close()
	}
	return s.db.Close()
}

// Ping reports whether the database answers. Returns CodeUnavailable if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "the database is unreachable", Err: err}
	}
	return nil
}

// Migrate applies every pending migration of the dialect.
func (s *Store) Migrate(ctx context.Context) error { return s.MigrateTo(ctx, 0) }

// MigrateTo applies the pending migrations up to version (0: all), for
// upgrade tests that write a database as an earlier release left it.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.dialect)
	if err != nil {
		return err
	}
	d := goose.DialectPostgres
	if s.dialect == SQLite {
		d = goose.DialectSQLite3
	}
	db := s.db
	if s.direct != nil {
		db = s.direct
	}
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	if s.dialect == Postgres {
		// Instances that start together migrate one at a time: a session
		// advisory lock on the direct connection (a transaction-mode pooler
		// keeps no session), which also serialises the migrations that run
		// outside a transaction (CREATE INDEX CONCURRENTLY).
		l, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d, db.DB, sub, opts...)
	if err != nil {
		return err
	}
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	if s.writer != nil {
		return translate(s.writer.do(ctx, fn))
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return translate(err)
	}
	return translate(tx.Commit())
}

// writerQueued is how many write transactions wait for the SQLite writer
// (0 on PostgreSQL).
func (s *Store) writerQueued() int {
	if s.writer == nil {
		return 0
	}
	return int(s.writer.waiting.Load())
}

// q rebinds a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if s.dialect == Postgres {
		return sqlx.Rebind(sqlx.DOLLAR, query)
	}
	return query
}

// rowLock returns clause (" FOR UPDATE", " FOR UPDATE SKIP LOCKED") on
// PostgreSQL and nothing on SQLite, whose one writer at a time already
// serialises a read-modify-write transaction.
func (s *Store) rowLock(clause string) string {
	if s.dialect == Postgres {
		return clause
	}
	return ""
}

// translate is the one place that turns driver errors into domain errors.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &domain.Error{Code: domain.CodeNotFound, Message: "not found", Err: err}
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return &domain.Error{Code: domain.CodeConflict, Message: "already exists", Err: err}
		// Class 08 (connection exceptions), 53 (insufficient resources:
		// too many connections, out of memory or disk), 57P0x (admin or
		// crash shutdown, cannot connect now), 57014 (statement timeout),
		// 25006 (a read-only replica after a failover), 40001/40P01
		// (serialization failure, deadlock: safe to retry).
		case strings.HasPrefix(string(pe.Code), "08"), strings.HasPrefix(string(pe.Code), "53"),
			strings.HasPrefix(string(pe.Code), "57P0"), pe.Code == "57014", pe.Code == "25006",
			pe.Code == "40001", pe.Code == "40P01":
			return unavailable(err)
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &domain.Error{Code: domain.CodeConflict, Message: "already exists", Err: err}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &domain.Error{Code: domain.CodeUnavailable, Message: "the database is busy", Err: err}
		}
	}
	// database/sql reports a closed pool with an unexported error value.
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || err.Error() == "sql: database is closed" {
		return unavailable(err)
	}
	// The network: refused, reset, timed out, closed mid-query.
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return unavailable(err)
	}
	// A deadline that ran out waiting for the database is the database's
	// slowness; a cancelled request is the client's leaving, which the HTTP
	// layer recognises (errors.Is(err, context.Canceled)) and does not log
	// as a failure.
	if errors.Is(err, context.DeadlineExceeded) {
		return unavailable(err)
	}
	return err
}

// dbRetryAfter is what a 503 for an unavailable database tells the client
// to wait: a restart or a failover takes seconds.
const dbRetryAfter = 2 * time.Second

func unavailable(err error) error {
	return &domain.Error{Code: domain.CodeUnavailable, Message: "the database is unavailable; try again shortly", RetryAfter: dbRetryAfter, Err: err}
}

// timeLayout is fixed-width so that SQLite compares stored times as text in
// time order; PostgreSQL parses it as a timestamptz.
const timeLayout = "2006-01-02 15:04:05.000000+00:00"

// ts is a time stored in either database.
type ts time.Time

func (t ts) Value() (driver.Value, error) { return time.Time(t).UTC().Format(timeLayout), nil }

func (t *ts) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = ts(v.UTC())
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("sqlstore: cannot scan %T as a time", src)
}

func (t *ts) parse(s string) error {
	p, err := time.Parse(timeLayout, s)
	if err != nil {
		if p, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return err
		}
	}
	*t = ts(p.UTC())
	return nil
}

// nts is a nullable ts.
type nts struct {
	T     time.Time
	Valid bool
}

func ntsOf(t *time.Time) nts {
	if t == nil {
		return nts{}
	}
	return nts{T: *t, Valid: true}
}

func (n nts) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.T
	return &t
}

func (n nts) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return ts(n.T).Value()
}

func (n *nts) Scan(src any) error {
	if src == nil {
		*n = nts{}
		return nil
	}
	var t ts
	if err := t.Scan(src); err != nil {
		return err
	}
	*n = nts{T: time.Time(t), Valid: true}
	return nil
}

// DB returns the underlying database handle, for tests and diagnostics that
// must look at what is stored. Application code uses the store's methods.
func (s *Store) DB() *sql.DB { return s.db.DB }

// pageCond is the keyset condition (with a leading AND) that continues a
// list ordered by (created_at, id), descending when desc, after the cursor;
// "" for the first page. Every list of the API pages this way.
func pageCond(after *domain.Cursor, desc bool) (string, []any) {
	return pageCondOn("created_at", "id", after, desc)
}

// pageCondOn is pageCond on other column names.
func pageCondOn(createdCol, idCol string, after *domain.Cursor, desc bool) (string, []any) {
	if after == nil {
		return "", nil
	}
	op := ">"
	if desc {
		op = "<"
	}
	return ` AND (` + createdCol + ` ` + op + ` ? OR (` + createdCol + ` = ? AND ` + idCol + ` ` + op + ` ?))`,
		[]any{ts(after.CreatedAt), ts(after.CreatedAt), after.ID}
}

// openDirect opens a small pool on a PostgreSQL URL that bypasses the
// pooler, for what needs one session throughout (migrations).
func openDirect(ctx context.Context, rawURL string) (*sqlx.DB, error) {
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		return nil, errors.New("the direct database URL must be a postgres:// URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("invalid direct postgres URL")
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	db, err := sqlx.Open("postgres", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, translate(err)
	}
	return db, nil
}

// withSSLMode sets sslmode=disable on a postgres URL that does not say.
func withSSLMode(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
