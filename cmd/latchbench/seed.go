package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	_ "modernc.org/sqlite"

	"github.com/latchauth/latch/internal/password"
)

// timeLayout is the store's time format: fixed-width text that SQLite
// compares in time order and PostgreSQL parses as a timestamptz.
const timeLayout = "2006-01-02 15:04:05.000000+00:00"

// SeedStats says what -seed-large wrote and how long it took.
type SeedStats struct {
	Users         int     `json:"users"`
	Sessions      int     `json:"sessions"`
	RefreshTokens int     `json:"refresh_tokens"`
	Seconds       float64 `json:"seconds"`
}

func (s *SeedStats) String() string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%d users, %d sessions, %d refresh tokens added in %.0f s", s.Users, s.Sessions, s.RefreshTokens, s.Seconds)
}

// table is one bulk-insert target.
type table struct {
	name string
	cols []string
}

var (
	usersTable    = table{"users", []string{"id", "email", "email_verified", "password_hash", "created_at", "updated_at"}}
	sessionsTable = table{"sessions", []string{"id", "user_id", "created_at", "last_used_at", "expires_at", "absolute_expires_at", "user_agent", "ip"}}
	tokensTable   = table{"refresh_tokens", []string{"id", "session_id", "token_hash", "created_at"}}
)

// bulk writes rows in transactions of batch rows: multi-row INSERTs on
// SQLite, COPY on PostgreSQL.
type bulk struct {
	db      *sql.DB
	dialect string
	batch   int
}

func (bk *bulk) insert(ctx context.Context, t table, n int, row func(i int, dst []any)) error {
	for start := 0; start < n; start += bk.batch {
		end := min(n, start+bk.batch)
		var err error
		if bk.dialect == "postgres" {
			err = bk.copyBatch(ctx, t, start, end, row)
		} else {
			err = bk.insertBatch(ctx, t, start, end, row)
		}
		if err != nil {
			return fmt.Errorf("%s rows %d-%d: %w", t.name, start, end, err)
		}
	}
	return nil
}

func (bk *bulk) copyBatch(ctx context.Context, t table, start, end int, row func(int, []any)) error {
	tx, err := bk.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, pq.CopyIn(t.name, t.cols...))
	if err != nil {
		return err
	}
	vals := make([]any, len(t.cols))
	for i := start; i < end; i++ {
		row(i, vals)
		if _, err := st.ExecContext(ctx, vals...); err != nil {
			st.Close()
			return err
		}
	}
	if _, err := st.ExecContext(ctx); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	return tx.Commit()
}

// sqliteRowsPerInsert keeps a statement under SQLite's 32766 variables.
const sqliteRowsPerInsert = 256

func (bk *bulk) insertBatch(ctx context.Context, t table, start, end int, row func(int, []any)) error {
	tx, err := bk.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(t.cols)), ",") + ")"
	head := "INSERT INTO " + t.name + " (" + strings.Join(t.cols, ",") + ") VALUES "
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, s := range stmts {
			s.Close()
		}
	}()
	args := make([]any, 0, sqliteRowsPerInsert*len(t.cols))
	vals := make([]any, len(t.cols))
	for i := start; i < end; i += sqliteRowsPerInsert {
		k := min(sqliteRowsPerInsert, end-i)
		st := stmts[k]
		if st == nil {
			if st, err = tx.PrepareContext(ctx, head+strings.TrimSuffix(strings.Repeat(one+",", k), ",")); err != nil {
				return err
			}
			stmts[k] = st
		}
		args = args[:0]
		for j := i; j < i+k; j++ {
			row(j, vals)
			args = append(args, vals...)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// seedLarge fills the database directly (latchd must be stopped): users
// with a fixed precomputed argon2id hash (of a password nobody uses), and
// sessions spread evenly over them, each with one unused refresh token.
// Ids are UUIDv7, so primary-key inserts append.
func (b *bench) seedLarge(ctx context.Context) (*SeedStats, error) {
	var db *sql.DB
	var err error
	switch b.dialect {
	case "postgres":
		db, err = sql.Open("postgres", b.dbURL)
	default:
		path := strings.TrimPrefix(b.dbURL, "sqlite://")
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=foreign_keys(0)&_pragma=cache_size(-1048576)&_pragma=busy_timeout(15000)")
		if err == nil {
			db.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	h, err := password.NewHasher(b.o.argon, 1, time.Minute)
	if err != nil {
		return nil, err
	}
	phc, err := h.Hash(ctx, "large-seed-"+b.run+"-not-a-password-anyone-uses")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	now := start.UTC()
	created := now.Add(-time.Hour).Format(timeLayout)
	idle := now.Add(7 * 24 * time.Hour).Format(timeLayout)
	abs := now.Add(30 * 24 * time.Hour).Format(timeLayout)
	nu, ns := b.o.largeUsers, b.o.largeSessions
	bk := &bulk{db: db, dialect: b.dialect, batch: b.o.largeBatch}
	v7 := func() string { return uuid.Must(uuid.NewV7()).String() }

	userIDs := make([]string, nu)
	b.logf("seed-large: %d users", nu)
	err = bk.insert(ctx, usersTable, nu, func(i int, d []any) {
		userIDs[i] = v7()
		verified := any(true)
		if b.dialect != "postgres" {
			verified = 1
		}
		d[0], d[1], d[2], d[3], d[4], d[5] = userIDs[i], fmt.Sprintf("large-%s-%d@seed.example.com", b.run, i), verified, phc, created, created
	})
	if err != nil {
		return nil, err
	}
	sessIDs := make([]string, ns)
	b.logf("seed-large: %d sessions", ns)
	err = bk.insert(ctx, sessionsTable, ns, func(i int, d []any) {
		sessIDs[i] = v7()
		// Sessions of one user are adjacent, as a user's logins would be in
		// the user index.
		u := userIDs[int(int64(i)*int64(nu)/int64(ns))]
		d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = sessIDs[i], u, created, created, idle, abs, "latchbench/seed", "127.0.0.1"
	})
	if err != nil {
		return nil, err
	}
	userIDs = nil
	b.logf("seed-large: %d refresh tokens", ns)
	hash := make([]byte, 32)
	err = bk.insert(ctx, tokensTable, ns, func(i int, d []any) {
		_, _ = rand.Read(hash)
		d[0], d[1], d[2], d[3] = v7(), sessIDs[i], append([]byte(nil), hash...), created
	})
	if err != nil {
		return nil, err
	}
	if b.dialect == "postgres" {
		if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
			return nil, err
		}
	} else {
		if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
			return nil, err
		}
	}
	return &SeedStats{Users: nu, Sessions: ns, RefreshTokens: ns, Seconds: time.Since(start).Seconds()}, nil
}

// large measures refresh and me again after filling the database: latchd is
// stopped, the database seeded, and latchd started afresh (with cold
// caches). The accounts' sessions survive, since the master key is the
// same.
func (b *bench) large(ctx context.Context) error {
	small := map[string]Row{}
	for _, s := range []string{"refresh", "me"} {
		r := b.row(s)
		if r == nil || r.Skipped != "" {
			row, err := b.scenario(ctx, s)
			if err != nil {
				return err
			}
			b.add(row)
			r = b.row(s)
		}
		small[s] = *r
	}
	b.latchd.stop()
	b.latchd = nil
	st, err := b.seedLarge(ctx)
	if err != nil {
		return fmt.Errorf("seed-large: %w", err)
	}
	b.report.LargeSeed = st
	b.logf("seed-large: %s", st)
	if err := b.startLatchd(ctx); err != nil {
		return err
	}
	b.phase = "-large"
	for _, s := range []string{"refresh", "me"} {
		row, err := b.scenario(ctx, s)
		if err != nil {
			return err
		}
		row.Scenario = s + "-large"
		row.Target = 0 // its target is the comparison below
		row.Note = "after -seed-large"
		b.add(row)
		l := LargeRow{Scenario: s, SmallRPS: small[s].RPS, LargeRPS: row.RPS, LargeP99: row.P99ms}
		if l.SmallRPS > 0 {
			l.Ratio = l.LargeRPS / l.SmallRPS
		}
		l.Met = yesNo(l.Ratio >= 0.8)
		b.report.Large = append(b.report.Large, l)
	}
	return nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
