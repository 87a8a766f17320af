package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func salt16(t *testing.T) []byte {
	t.Helper()
	s := make([]byte, 16)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The hashes another system would have stored, made with the reference
// libraries.
func bcryptOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func argon2idOf(t *testing.T, pw string) string {
	t.Helper()
	s := salt16(t)
	return fmt.Sprintf("$argon2id$v=19$m=128,t=1,p=1$%s$%s", b64(s), b64(xargon2.IDKey([]byte(pw), s, 1, 128, 1, 32)))
}

func argon2iOf(t *testing.T, pw string) string {
	t.Helper()
	s := salt16(t)
	return fmt.Sprintf("$argon2i$v=19$m=64,t=3,p=1$%s$%s", b64(s), b64(xargon2.Key([]byte(pw), s, 3, 64, 1, 32)))
}

func scryptOf(t *testing.T, pw string) string {
	t.Helper()
	s := salt16(t)
	k, err := scrypt.Key([]byte(pw), s, 1<<10, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("$scrypt$ln=10,r=8,p=1$%s$%s", b64(s), b64(k))
}

func importUsers(t *testing.T, s *testutil.Server, auth client.RequestEditorFn, users ...client.ImportUser) *client.ImportUsersResponse {
	t.Helper()
	r, err := s.Client.ImportUsersWithResponse(context.Background(), client.ImportUsersJSONRequestBody{Users: users}, auth)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func imported(email, hash string) client.ImportUser {
	verified := true
	u := client.ImportUser{Email: client.Email(email), EmailVerified: &verified}
	if hash != "" {
		u.PasswordHash = &hash
	}
	return u
}

// storedHash reads a user's password hash through the store.
func storedHash(t *testing.T, s *testutil.Server, email string) string {
	t.Helper()
	u, err := s.App.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

// TestImportedUsersLogInAndAreRehashed: users imported with bcrypt,
// argon2id, argon2i and scrypt hashes log in with their password
// and not with another; the first success replaces the hash with Latch's
// argon2id at the configured parameters, and the next login still works.
func TestImportedUsersLogInAndAreRehashed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		pws := map[string]string{"bc@example.com": "bcrypt password 1", "a2@example.com": "argon2 password 2", "sc@example.com": "scrypt password 3", "a2i@example.com": "argon2i password 4"}
		r := importUsers(t, s, testutil.Bearer(ops.AccessToken),
			imported("bc@example.com", bcryptOf(t, pws["bc@example.com"])),
			imported("a2@example.com", argon2idOf(t, pws["a2@example.com"])),
			imported("sc@example.com", scryptOf(t, pws["sc@example.com"])),
			imported("a2i@example.com", argon2iOf(t, pws["a2i@example.com"])),
			imported(opsEmail, bcryptOf(t, "whatever password")),
			imported("BC@example.com", bcryptOf(t, "a duplicate")),
			imported("nopw@example.com", ""))
		check(t, "import", r.StatusCode(), r.Body, 200)
		if r.JSON200.Created != 5 || len(r.JSON200.Results) != 7 {
			t.Fatalf("import: %s", r.Body)
		}
		for i, res := range r.JSON200.Results {
			conflict := i == 4 || i == 5
			if res.Index != i || conflict != (res.Error != nil) || conflict == (res.Id != nil) {
				t.Fatalf("result %d: %s", i, r.Body)
			}
			if conflict && *res.Error != client.ErrorCodeConflict {
				t.Fatalf("result %d: %s", i, r.Body)
			}
		}
		var events int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM outbound_events WHERE type = 'user.created' AND REPLACE(CAST(data AS TEXT), ' ', '') LIKE '%"imported":true%'`).Scan(&events); err != nil || events != 5 {
			t.Fatalf("user.created events: %d %v", events, err)
		}
		for email, pw := range pws {
			before := storedHash(t, s, email)
			bad := login(s, email, pw+"!")
			wantError(t, email+" wrong password", bad.StatusCode(), bad.Body, client.ErrorCodeInvalidCredentials)
			if storedHash(t, s, email) != before {
				t.Fatalf("%s: a failed login changed the hash", email)
			}
			if l := login(s, email, pw); l.JSON200 == nil {
				t.Fatalf("%s login: %d %s", email, l.StatusCode(), l.Body)
			}
			after := storedHash(t, s, email)
			if after == before || !strings.HasPrefix(after, "$argon2id$v=19$m=256,t=1,p=1$") {
				t.Fatalf("%s: not rehashed to Latch's argon2id: %s", email, after)
			}
			if l := login(s, email, pw); l.JSON200 == nil {
				t.Fatalf("%s second login: %d %s", email, l.StatusCode(), l.Body)
			}
			if storedHash(t, s, email) != after {
				t.Fatalf("%s: rehashed twice", email)
			}
		}
		// Without a hash there is no password login.
		l := login(s, "nopw@example.com", goodPassword)
		wantError(t, "no password", l.StatusCode(), l.Body, client.ErrorCodeInvalidCredentials)
	})
}

// TestImportRefusesBadHashes: an unknown format or a cost over the bounds
// refuses the whole import with 400 naming the record, never the hash, and
// stores nothing; so do too many users. Non-operators are refused.
func TestImportRefusesBadHashes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		auth := testutil.Bearer(ops.AccessToken)
		fill := strings.Repeat("a", 53)
		for name, hash := range map[string]string{
			"md5":            "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
			"plain":          "hunter2hunter2",
			"bcrypt cost 15": "$2b$15$" + fill,
			"argon2 1 GiB":   "$argon2id$v=19$m=1048576,t=1,p=1$" + b64(make([]byte, 16)) + "$" + b64(make([]byte, 32)),
			"scrypt 2^21":    "$scrypt$ln=21,r=1,p=1$" + b64(make([]byte, 16)) + "$" + b64(make([]byte, 32)),
		} {
			r := importUsers(t, s, auth, imported("first@example.com", bcryptOf(t, goodPassword)), imported("second@example.com", hash))
			msg := checkErr(t, name, r.StatusCode(), r.Body, 400, "invalid_request")
			if !strings.Contains(msg, "users[1]") || strings.Contains(string(r.Body), hash) {
				t.Fatalf("%s: %s", name, r.Body)
			}
		}
		// Metadata has nowhere to go in this release: refused, not dropped.
		withMeta := imported("second@example.com", "")
		withMeta.AppMetadata = &map[string]any{"plan": "pro"}
		r := importUsers(t, s, auth, imported("first@example.com", ""), withMeta)
		if msg := checkErr(t, "metadata", r.StatusCode(), r.Body, 400, "invalid_request"); !strings.Contains(msg, "users[1]") {
			t.Fatalf("metadata: %s", r.Body)
		}
		if l := login(s, "first@example.com", goodPassword); l.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("a refused import stored a user: %d", l.StatusCode())
		}
		many := make([]client.ImportUser, 1001)
		for i := range many {
			many[i] = imported(fmt.Sprintf("u%d@example.com", i), "")
		}
		r = importUsers(t, s, auth, many...)
		checkErr(t, "1001 users", r.StatusCode(), r.Body, 400, "invalid_request")
		// A body over the import's own limit.
		big := bytes.Repeat([]byte(" "), 2<<20)
		res, err := s.Client.ImportUsersWithBodyWithResponse(context.Background(), "application/json", bytes.NewReader(big), auth)
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, "2 MiB body", res.StatusCode(), res.Body, 413, "payload_too_large")
		// 1000 users with hashes fit, whatever LATCH_MAX_BODY_BYTES says.
		hash := bcryptOf(t, goodPassword)
		for i := range 1000 {
			many[i] = imported(fmt.Sprintf("user-number-%04d@example.com", i), hash)
		}
		if r := importUsers(t, s, auth, many[:1000]...); r.JSON200 == nil || r.JSON200.Created != 1000 {
			t.Fatalf("1000 users: %d %.300s", r.StatusCode(), r.Body)
		}
		// Not an operator.
		user := signup(t, s, "user@example.com")
		r = importUsers(t, s, testutil.Bearer(user.AccessToken), imported("x@example.com", ""))
		checkErr(t, "non-operator", r.StatusCode(), r.Body, 403, "insufficient_permissions")
		key := createKey(t, s, testutil.Bearer(user.AccessToken), "k", "keys:read")
		r = importUsers(t, s, testutil.APIKey(key.Key), imported("x@example.com", ""))
		checkErr(t, "non-operator key", r.StatusCode(), r.Body, 403, "insufficient_permissions")
	})
}

// TestExportHasNoSecrets: the export pages through every password account
// and never carries a hash.
func TestExportHasNoSecrets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		auth := testutil.Bearer(ops.AccessToken)
		ext := "legacy-7"
		u := imported("imp@example.com", bcryptOf(t, goodPassword))
		u.ExternalId = &ext
		if r := importUsers(t, s, auth, u, imported("imp2@example.com", scryptOf(t, goodPassword))); r.JSON200 == nil {
			t.Fatalf("import: %s", r.Body)
		}
		signup(t, s, "plain@example.com")
		seen := map[string]bool{}
		var cursor *string
		limit := 2
		for pages := 0; ; pages++ {
			r, err := s.Client.ExportUsersWithResponse(context.Background(), &client.ExportUsersParams{Limit: &limit, Cursor: cursor}, auth)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "export", r.StatusCode(), r.Body, 200)
			for _, bad := range []string{"$2", "$argon2", "$scrypt", "password_hash", "hash\""} {
				if strings.Contains(string(r.Body), bad) {
					t.Fatalf("the export carries %q: %s", bad, r.Body)
				}
			}
			for _, x := range r.JSON200.Users {
				seen[string(x.Email)] = true
				if x.Email == "imp@example.com" && (x.ExternalId == nil || *x.ExternalId != ext || x.HasPassword == nil || !*x.HasPassword) {
					t.Fatalf("imported user: %s", r.Body)
				}
			}
			if cursor = r.JSON200.NextCursor; cursor == nil {
				break
			}
			if pages > 5 {
				t.Fatal("no end of pages")
			}
		}
		for _, e := range []string{opsEmail, "imp@example.com", "imp2@example.com", "plain@example.com"} {
			if !seen[e] {
				t.Fatalf("%s not exported: %v", e, seen)
			}
		}
		user := signup(t, s, "user@example.com")
		r, _ := s.Client.ExportUsersWithResponse(context.Background(), &client.ExportUsersParams{}, testutil.Bearer(user.AccessToken))
		checkErr(t, "non-operator", r.StatusCode(), r.Body, 403, "insufficient_permissions")
	})
}

// TestConcurrentFirstLoginsOfAnImportedUser: logins racing on a user's
// imported hash all succeed; one rehash wins (a conditional update on the
// old hash) and the stored hash is a working argon2id.
func TestConcurrentFirstLoginsOfAnImportedUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		if r := importUsers(t, s, testutil.Bearer(ops.AccessToken), imported("race@example.com", bcryptOf(t, goodPassword))); r.JSON200 == nil || r.JSON200.Created != 1 {
			t.Fatalf("import: %s", r.Body)
		}
		if counts := concurrently(4, func() int { return login(s, "race@example.com", goodPassword).StatusCode() }); counts[200] != 4 {
			t.Fatalf("concurrent first logins: %v", counts)
		}
		if h := storedHash(t, s, "race@example.com"); !strings.HasPrefix(h, "$argon2id$") {
			t.Fatalf("not rehashed: %s", h)
		}
		if l := login(s, "race@example.com", goodPassword); l.JSON200 == nil {
			t.Fatalf("login after the race: %d %s", l.StatusCode(), l.Body)
		}
	})
}
