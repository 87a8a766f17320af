package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

func keyRows(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT kid, alg, COALESCE(retired_at, '') FROM signing_keys ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var kid, alg, retired string
		if err := rows.Scan(&kid, &alg, &retired); err != nil {
			t.Fatal(err)
		}
		b.WriteString(kid + " " + alg + " " + retired + "\n")
	}
	return b.String()
}

func main(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := app.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestKeysListIsReadOnlyAndTheAlgorithmIsChecked replays the review: keys
// list with another LATCH_SIGNING_ALG retired every live key. Now it only
// reads, an instance with another algorithm refuses to start naming both
// and the command that migrates, and keys rotate --alg migrates.
func TestKeysListIsReadOnlyAndTheAlgorithmIsChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	dbURL := "sqlite://" + path
	c := testutil.Config(t, dbURL)
	a, err := app.New(context.Background(), c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	before := keyRows(t, path)
	if !strings.Contains(before, " ES256 \n") {
		t.Fatalf("first start: %q", before)
	}

	code, out, errs := main(t, "keys", "list", "-database-url", dbURL, "-signing-alg", "EdDSA")
	if code != 0 || !strings.Contains(out, "ES256\tactive") {
		t.Fatalf("keys list: %d %q %q", code, out, errs)
	}
	if after := keyRows(t, path); after != before {
		t.Fatalf("keys list wrote keys:\nbefore %q\nafter  %q", before, after)
	}

	c.SigningAlg = "EdDSA"
	if _, err := app.New(context.Background(), c, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "ES256") || !strings.Contains(err.Error(), "keys rotate --alg EdDSA") {
		t.Fatalf("start with another algorithm: %v", err)
	}
	if after := keyRows(t, path); after != before {
		t.Fatalf("a refused start wrote keys:\nbefore %q\nafter  %q", before, after)
	}

	code, out, errs = main(t, "keys", "rotate", "--alg", "EdDSA", "-key-publish-delay", "0", "-database-url", dbURL,
		"-argon2-memory-kib", "256", "-argon2-time", "1", "-allow-weak-hashing")
	if code != 0 || !strings.Contains(out, "EdDSA") {
		t.Fatalf("keys rotate --alg EdDSA: %d %q %q", code, out, errs)
	}
	a, err = app.New(context.Background(), c, nil, nil)
	if err != nil {
		t.Fatalf("start after the migration: %v", err)
	}
	a.Close()
}
