package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/testutil"
)

// TestPgDBAnalyzesItsOwnDatabase: the database a run creates is the one
// that analyze brings statistics to (what the measured part of each
// scenario plans with), and drop removes it.
func TestPgDBAnalyzesItsOwnDatabase(t *testing.T) {
	testutil.DatabaseURL(t, "postgres") // PostgreSQL is there (or the test says loudly why not)
	ctx := context.Background()
	b := &bench{stderr: io.Discard}
	name := fmt.Sprintf("latchbench_pgdb_test_%d", time.Now().UnixNano())
	pg, err := b.createPostgres(ctx, testutil.PostgresURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	dropped := false
	t.Cleanup(func() {
		if !dropped {
			pg.drop()
		}
	})
	db, err := sql.Open("postgres", pg.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE grown (id int PRIMARY KEY); INSERT INTO grown SELECT generate_series(1, 5000)`); err != nil {
		t.Fatal(err)
	}
	var reltuples float64
	if err := db.QueryRow(`SELECT reltuples FROM pg_class WHERE relname = 'grown'`).Scan(&reltuples); err != nil {
		t.Fatal(err)
	}
	if reltuples >= 0 {
		t.Fatalf("the new table already has statistics (reltuples %v): the test proves nothing", reltuples)
	}
	pg.analyze(ctx)
	if err := db.QueryRow(`SELECT reltuples FROM pg_class WHERE relname = 'grown'`).Scan(&reltuples); err != nil {
		t.Fatal(err)
	}
	if reltuples != 5000 {
		t.Fatalf("after analyze, reltuples %v, want 5000", reltuples)
	}
	db.Close()
	pg.drop()
	dropped = true
	admin, err := sql.Open("postgres", testutil.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	if err := admin.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still there after drop", name)
	}
}
