package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// TestDatabaseOfThePreviousReleaseKeepsWorking writes a database as the
// previous release left it (its migrations, rows in its columns), then
// starts this release on it: the user logs in and refreshes, the key
// authenticates, the queued mail keeps its place, and the verified account
// keeps what verification gives it.
func TestDatabaseOfThePreviousReleaseKeepsWorking(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		dbURL := testutil.DatabaseURL(t, d)
		st, err := sqlstore.Open(ctx, dbURL, testutil.StoreOptions(t, d, dbURL))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.MigrateTo(ctx, 20); err != nil { // the previous release's schema
			t.Fatal(err)
		}
		h, err := password.NewHasher(password.Params{MemoryKiB: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		phc, err := h.Hash(ctx, goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		key, err := apikey.Generate(apikey.Personal)
		if err != nil {
			t.Fatal(err)
		}
		kh := key.Hash()
		uid, kid, mid := uuid.New(), uuid.New(), uuid.New()
		then := time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05.000000+00:00")
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (id, email, email_verified, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				[]any{uid, "old@example.com", true, phc, then, then}},
			{`INSERT INTO api_keys (id, key_hash, prefix, user_id, created_by, label, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				[]any{kid, kh[:], key.DisplayPrefix(), uid, uid, "old key", "users:read", then}},
			{`INSERT INTO mail_outbox (id, template, recipient, user_id, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				[]any{mid, "password_reset", "old@example.com", uid, []byte("sealed"), then, then}},
		} {
			if _, err := st.DB().Exec(rebind(d, q.sql), q.args...); err != nil {
				t.Fatalf("write as the previous release: %v", err)
			}
		}
		st.Close()

		s := testutil.StartURL(t, dbURL, func(c *app.Config) { c.APIKeys.OperatorEmails = nil })
		l := login(s, "old@example.com", goodPassword)
		if l.StatusCode() != 200 {
			t.Fatalf("login on the upgraded database: %d %s", l.StatusCode(), l.Body)
		}
		r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: l.JSON200.RefreshToken})
		check(t, "refresh on the upgraded database", r.StatusCode(), r.Body, 200)
		if m, st := me(t, s, testutil.APIKey(key.Reveal())); st != 200 || m.JSON200.Id != uid {
			t.Fatalf("the old key: %d", st)
		}
		var prio int
		var verifiedAt *string
		if err := s.App.Store.DB().QueryRow(rebind(d, `SELECT priority FROM mail_outbox WHERE id = ?`), mid).Scan(&prio); err != nil || prio != 0 {
			t.Fatalf("the queued mail: priority %d %v", prio, err)
		}
		if err := s.App.Store.DB().QueryRow(rebind(d, `SELECT CAST(email_verified_at AS TEXT) FROM users WHERE id = ?`), uid).Scan(&verifiedAt); err != nil || verifiedAt == nil {
			t.Fatalf("the verified account has no verification time after the upgrade: %v", err)
		}
		// A verified account of the previous release may create keys.
		createKey(t, s, testutil.Bearer(r.JSON200.AccessToken), "new key", "users:read")
	})
}
