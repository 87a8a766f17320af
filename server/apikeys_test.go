package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

// check fails the test unless a response has the status; it returns the
// Error body's code and message for error statuses.
func check(t *testing.T, what string, got int, body []byte, want int) (code, msg string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d: %s", what, got, want, body)
	}
	if got >= 400 {
		var e struct{ Error, Message string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: not an Error body: %s", what, body)
		}
		return e.Error, e.Message
	}
	return "", ""
}

// checkErr is check for an error status with the given code.
func checkErr(t *testing.T, what string, got int, body []byte, want int, wantCode string) string {
	t.Helper()
	code, msg := check(t, what, got, body, want)
	if code != wantCode {
		t.Fatalf("%s: error %q, want %q: %s", what, code, wantCode, body)
	}
	return msg
}

func createKey(t *testing.T, s *testutil.Server, auth client.RequestEditorFn, label string, scopes ...string) *client.APIKeyWithSecret {
	t.Helper()
	if scopes == nil {
		scopes = []string{}
	}
	res, err := s.Client.CreateAPIKeyWithResponse(context.Background(), client.CreateAPIKeyJSONRequestBody{Label: label, Scopes: scopes}, auth)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "create API key", res.StatusCode(), res.Body, http.StatusCreated)
	return res.JSON201
}

// me calls GET /auth/me, which an API key may call with users:read.
func me(t *testing.T, s *testutil.Server, auth client.RequestEditorFn) (*client.GetMeResponse, int) {
	t.Helper()
	res, err := s.Client.GetMeWithResponse(context.Background(), auth)
	if err != nil {
		t.Fatal(err)
	}
	return res, res.StatusCode()
}

// header returns a request editor that sets one header.
func header(name, value string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set(name, value)
		return nil
	}
}

// rebind writes a query with ? placeholders for the dialect.
func rebind(d, q string) string {
	if d == "sqlite" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func TestAPIKeyLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "ada@example.com")
		bearer := testutil.Bearer(ada.AccessToken)

		k := createKey(t, s, bearer, "ci worker", "users:read", "keys:read", "billing:read")
		if _, err := apikey.Parse(k.Key); err != nil || !strings.HasPrefix(k.Key, "latch_u_") {
			t.Fatalf("key %q is not a personal key: %v", k.Key, err)
		}
		if k.Prefix != k.Key[:12] || k.OwnerType != client.APIKeyWithSecretOwnerTypeUser || k.UserId == nil || *k.UserId != ada.User.Id || k.OrgId != nil {
			t.Fatalf("key metadata: %+v", k)
		}
		if strings.Join(k.Scopes, " ") != "billing:read keys:read users:read" {
			t.Fatalf("scopes not sorted and unique: %v", k.Scopes)
		}

		// The key authenticates, in X-API-Key and in the apikey alias.
		res, st := me(t, s, testutil.APIKey(k.Key))
		check(t, "me with key", st, res.Body, 200)
		if res.JSON200.Id != ada.User.Id {
			t.Fatal("the key is not its owner's")
		}
		res, st = me(t, s, header("apikey", k.Key))
		check(t, "me with apikey header", st, res.Body, 200)

		// Listing and reading never return the secret.
		list, err := s.Client.ListAPIKeysWithResponse(ctx, nil, bearer)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "list", list.StatusCode(), list.Body, 200)
		if len(list.JSON200.ApiKeys) != 1 || list.JSON200.ApiKeys[0].Id != k.Id || bytes.Contains(list.Body, []byte(k.Key[12:])) {
			t.Fatalf("list: %s", list.Body)
		}
		list, _ = s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.APIKey(k.Key))
		check(t, "list with the key (keys:read)", list.StatusCode(), list.Body, 200)
		got, _ := s.Client.GetAPIKeyWithResponse(ctx, k.Id, bearer)
		check(t, "get", got.StatusCode(), got.Body, 200)
		if got.JSON200.Label != "ci worker" || bytes.Contains(got.Body, []byte(k.Key[12:])) {
			t.Fatalf("get: %s", got.Body)
		}

		// A scope the key lacks: 403 naming the scope.
		cr, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []string{}}, testutil.APIKey(k.Key))
		if msg := checkErr(t, "create without keys:write", cr.StatusCode(), cr.Body, 403, "insufficient_permissions"); !strings.Contains(msg, "keys:write") {
			t.Fatalf("message does not name the scope: %q", msg)
		}
		// An operation for sessions only does not take API keys.
		ls, _ := s.Client.ListSessionsWithResponse(ctx, nil, testutil.APIKey(k.Key))
		checkErr(t, "list sessions with a key", ls.StatusCode(), ls.Body, 401, "unauthorized")

		// Another user sees none of it.
		bob := signup(t, s, "bob@example.com")
		other, _ := s.Client.GetAPIKeyWithResponse(ctx, k.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "get someone else's key", other.StatusCode(), other.Body, 404, "not_found")
		del, _ := s.Client.RevokeAPIKeyWithResponse(ctx, k.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "revoke someone else's key", del.StatusCode(), del.Body, 404, "not_found")
		bl, _ := s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.Bearer(bob.AccessToken))
		if check(t, "bob's list", bl.StatusCode(), bl.Body, 200); len(bl.JSON200.ApiKeys) != 0 {
			t.Fatalf("bob sees keys: %s", bl.Body)
		}

		// Revocation is immediate on this instance, and idempotent.
		del, _ = s.Client.RevokeAPIKeyWithResponse(ctx, k.Id, bearer)
		check(t, "revoke", del.StatusCode(), del.Body, 204)
		res, st = me(t, s, testutil.APIKey(k.Key))
		checkErr(t, "me with a revoked key", st, res.Body, 401, "invalid_token")
		del, _ = s.Client.RevokeAPIKeyWithResponse(ctx, k.Id, bearer)
		check(t, "revoke twice", del.StatusCode(), del.Body, 204)
		got, _ = s.Client.GetAPIKeyWithResponse(ctx, k.Id, bearer)
		if check(t, "get revoked", got.StatusCode(), got.Body, 200); got.JSON200.RevokedAt == nil {
			t.Fatal("revoked_at not set")
		}

		// Garbage and unknown keys.
		for _, bad := range []string{"nonsense", k.Key[:45] + "x", strings.Replace(k.Key, "latch_u_", "latch_o_", 1)} {
			res, st = me(t, s, testutil.APIKey(bad))
			checkErr(t, "me with a bad key", st, res.Body, 401, "invalid_token")
		}
		unknown, _ := apikey.Generate(apikey.Personal)
		res, st = me(t, s, testutil.APIKey(unknown.Reveal()))
		checkErr(t, "me with an unknown key", st, res.Body, 401, "invalid_token")

		// Creation rules.
		for name, body := range map[string]client.CreateAPIKeyJSONRequestBody{
			"unknown built-in scope": {Label: "x", Scopes: []string{"keys:admin"}},
			"wildcard built-in":      {Label: "x", Scopes: []string{"keys:*"}},
			"malformed scope":        {Label: "x", Scopes: []string{"Billing"}},
			"blank label":            {Label: "  ", Scopes: []string{}},
			"past expiry":            {Label: "x", Scopes: []string{}, ExpiresAt: ptr(s.Clock.Now().Add(-time.Minute))},
		} {
			cr, _ := s.Client.CreateAPIKeyWithResponse(ctx, body, bearer)
			checkErr(t, name, cr.StatusCode(), cr.Body, 400, "invalid_request")
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestAPIKeyStoredAsSHA256(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ada := signup(t, s, "hash@example.com")
		k := createKey(t, s, testutil.Bearer(ada.AccessToken), "stored", "users:read")
		if _, st := me(t, s, testutil.APIKey(k.Key)); st != 200 {
			t.Fatalf("me: %d", st)
		}
		rows, err := s.App.Store.DB().Query(`SELECT * FROM api_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(any)
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cols {
				v := *(vals[i].(*any))
				var b []byte
				switch x := v.(type) {
				case []byte:
					b = x
				case string:
					b = []byte(x)
				}
				if bytes.Contains(b, []byte(k.Key[12:])) {
					t.Fatalf("column %s holds the key", c)
				}
				if c == "key_hash" {
					want := sha256.Sum256([]byte(k.Key))
					if !bytes.Equal(b, want[:]) {
						t.Fatalf("key_hash is not the key's SHA-256")
					}
				}
				if c == "prefix" && string(b) != k.Key[:12] {
					t.Fatalf("prefix %q", b)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d rows", n)
		}
		if strings.Contains(s.Log.String(), k.Key[12:]) {
			t.Fatal("the key reached the log")
		}
	})
}

// TestAPIKeyChecksumRejectedBeforeStore shows that a key with a bad checksum
// or prefix never reaches the database: with the database closed it still
// gets a clean 401, while a well-formed key gets 503 because it must be
// looked up. (internal/service counts the store calls too.)
func TestAPIKeyChecksumRejectedBeforeStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ada := signup(t, s, "closed@example.com")
		k := createKey(t, s, testutil.Bearer(ada.AccessToken), "k", "users:read")
		if err := s.App.Store.Close(); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{k.Key[:45] + string("ab"[strings.IndexByte("a", k.Key[45])+1]), "latch_x" + k.Key[7:], "sk_live_123"} {
			res, st := me(t, s, testutil.APIKey(bad))
			checkErr(t, "bad checksum with the database closed", st, res.Body, 401, "invalid_token")
		}
		fresh, _ := apikey.Generate(apikey.Personal)
		res, st := me(t, s, testutil.APIKey(fresh.Reveal()))
		if st < 500 {
			t.Fatalf("a well-formed key with the database closed: %d %s", st, res.Body)
		}
	})
}

func TestAPIKeyExpiry(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "expiry@example.com")
		exp := s.Clock.Now().Add(time.Hour)
		res, err := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "temp", Scopes: []string{"users:read"}, ExpiresAt: &exp},
			testutil.Bearer(ada.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "create", res.StatusCode(), res.Body, 201)
		if res.JSON201.ExpiresAt == nil || !res.JSON201.ExpiresAt.Equal(exp) {
			t.Fatalf("expires_at %v, want %v", res.JSON201.ExpiresAt, exp)
		}
		key := res.JSON201.Key
		if _, st := me(t, s, testutil.APIKey(key)); st != 200 {
			t.Fatalf("me before expiry: %d", st)
		}
		s.Clock.Advance(time.Hour - time.Second)
		if _, st := me(t, s, testutil.APIKey(key)); st != 200 {
			t.Fatalf("me just before expiry: %d", st)
		}
		s.Clock.Advance(time.Second)
		r, st := me(t, s, testutil.APIKey(key))
		if msg := checkErr(t, "me after expiry", st, r.Body, 401, "invalid_token"); !strings.Contains(msg, "expired") {
			t.Fatalf("message %q", msg)
		}
	})
}

func TestAPIKeyScopeEscalationRefusedAtCreation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "cap@example.com")
		// A session may grant any scope, built-in or application.
		parent := createKey(t, s, testutil.Bearer(ada.AccessToken), "parent", "keys:write", "keys:read", "billing:read")
		// A key may grant what it holds...
		child := createKey(t, s, testutil.APIKey(parent.Key), "child", "billing:read", "keys:read")
		if child.UserId == nil || *child.UserId != ada.User.Id {
			t.Fatal("a key's key is not its user's")
		}
		// ...and nothing more.
		for _, scope := range []string{"billing:write", "token:exchange", "users:read", "sessions:write"} {
			res, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "more", Scopes: []string{"keys:read", scope}},
				testutil.APIKey(parent.Key))
			if msg := checkErr(t, "escalate to "+scope, res.StatusCode(), res.Body, 403, "insufficient_permissions"); !strings.Contains(msg, scope) {
				t.Fatalf("message does not name %s: %q", scope, msg)
			}
		}
		// Rolling hands out a secret, so it is capped the same way: the parent
		// cannot roll a key that holds more than itself.
		big := createKey(t, s, testutil.Bearer(ada.AccessToken), "big", "token:exchange")
		roll, _ := s.Client.RollAPIKeyWithResponse(ctx, big.Id, client.RollAPIKeyJSONRequestBody{}, testutil.APIKey(parent.Key))
		checkErr(t, "roll a bigger key", roll.StatusCode(), roll.Body, 403, "insufficient_permissions")
		roll, _ = s.Client.RollAPIKeyWithResponse(ctx, child.Id, client.RollAPIKeyJSONRequestBody{}, testutil.APIKey(parent.Key))
		check(t, "roll a smaller key", roll.StatusCode(), roll.Body, 201)
	})
}

func TestAPIKeyRollOverlap(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "roll@example.com")
		bearer := testutil.Bearer(ada.AccessToken)
		old := createKey(t, s, bearer, "deploy", "users:read", "app:deploy")

		hour := 3600
		res, err := s.Client.RollAPIKeyWithResponse(ctx, old.Id, client.RollAPIKeyJSONRequestBody{OverlapSeconds: &hour}, bearer)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "roll", res.StatusCode(), res.Body, 201)
		next := res.JSON201
		if next.Id == old.Id || next.Key == old.Key || next.Label != old.Label || strings.Join(next.Scopes, " ") != strings.Join(old.Scopes, " ") {
			t.Fatalf("rolled key: %+v", next)
		}
		// Both work during the overlap.
		for name, k := range map[string]string{"old": old.Key, "new": next.Key} {
			if r, st := me(t, s, testutil.APIKey(k)); st != 200 {
				t.Fatalf("%s key during the overlap: %d %s", name, st, r.Body)
			}
		}
		// A key is rolled once.
		again, _ := s.Client.RollAPIKeyWithResponse(ctx, old.Id, client.RollAPIKeyJSONRequestBody{}, bearer)
		checkErr(t, "roll twice", again.StatusCode(), again.Body, 409, "conflict")

		s.Clock.Advance(time.Hour - time.Second)
		if _, st := me(t, s, testutil.APIKey(old.Key)); st != 200 {
			t.Fatalf("old key at the end of the overlap: %d", st)
		}
		s.Clock.Advance(time.Second)
		r, st := me(t, s, testutil.APIKey(old.Key))
		checkErr(t, "old key after the overlap", st, r.Body, 401, "invalid_token")
		if _, st := me(t, s, testutil.APIKey(next.Key)); st != 200 {
			t.Fatalf("new key after the overlap: %d", st)
		}

		// Without an overlap the old key stops at once.
		rf, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: ada.RefreshToken})
		check(t, "refresh", rf.StatusCode(), rf.Body, 200)
		bearer = testutil.Bearer(rf.JSON200.AccessToken)
		res, _ = s.Client.RollAPIKeyWithResponse(ctx, next.Id, client.RollAPIKeyJSONRequestBody{}, bearer)
		check(t, "roll without overlap", res.StatusCode(), res.Body, 201)
		r, st = me(t, s, testutil.APIKey(next.Key))
		checkErr(t, "rolled key without overlap", st, r.Body, 401, "invalid_token")
		if _, st := me(t, s, testutil.APIKey(res.JSON201.Key)); st != 200 {
			t.Fatalf("newest key: %d", st)
		}
		// An unknown key.
		res, _ = s.Client.RollAPIKeyWithResponse(ctx, uuid.New(), client.RollAPIKeyJSONRequestBody{}, bearer)
		checkErr(t, "roll unknown", res.StatusCode(), res.Body, 404, "not_found")
	})
}

func TestAPIKeyLastUsedThrottled(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		ada := signup(t, s, "touch@example.com")
		bearer := testutil.Bearer(ada.AccessToken)
		k := createKey(t, s, bearer, "busy", "users:read")
		if k.LastUsedAt != nil {
			t.Fatal("a new key has a last use")
		}
		lastUsed := func() *time.Time {
			t.Helper()
			res, _ := s.Client.GetAPIKeyWithResponse(ctx, k.Id, bearer)
			check(t, "get", res.StatusCode(), res.Body, 200)
			return res.JSON200.LastUsedAt
		}
		t0 := s.Clock.Now()
		for range 3 {
			if _, st := me(t, s, testutil.APIKey(k.Key)); st != 200 {
				t.Fatal(st)
			}
		}
		if lu := lastUsed(); lu == nil || !lu.Equal(t0) {
			t.Fatalf("last_used_at %v, want %v", lu, t0)
		}
		s.Clock.Advance(59 * time.Second)
		if _, st := me(t, s, testutil.APIKey(k.Key)); st != 200 {
			t.Fatal(st)
		}
		if lu := lastUsed(); lu == nil || !lu.Equal(t0) {
			t.Fatalf("written again within a minute: %v", lu)
		}
		// The database's own condition holds too: another instance that never
		// saw the key writes nothing within the minute.
		var n int
		if err := s.App.Store.DB().QueryRow(rebind(d, `SELECT COUNT(*) FROM api_keys WHERE last_used_at IS NOT NULL`)).Scan(&n); err != nil || n != 1 {
			t.Fatalf("count: %d %v", n, err)
		}
		s.Clock.Advance(time.Second)
		t1 := s.Clock.Now()
		if _, st := me(t, s, testutil.APIKey(k.Key)); st != 200 {
			t.Fatal(st)
		}
		if lu := lastUsed(); lu == nil || !lu.Equal(t1) {
			t.Fatalf("last_used_at %v, want %v a minute later", lu, t1)
		}
	})
}

// TestAPIKeyRevocationAcrossInstances runs two instances on one database: a
// key revoked on one is refused there at once and on the other once the
// cache bound has passed on its clock.
func TestAPIKeyRevocationAcrossInstances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		const ttl = 300 * time.Millisecond
		opt := func(c *app.Config) { c.APIKeys.CacheTTL = ttl }
		url := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, url, opt)
		b := testutil.StartURL(t, url, opt)
		ada := signup(t, a, "two@example.com")
		k := createKey(t, a, testutil.Bearer(ada.AccessToken), "shared", "users:read")
		// b caches the key.
		if _, st := me(t, b, testutil.APIKey(k.Key)); st != 200 {
			t.Fatalf("b before revocation: %d", st)
		}
		del, _ := a.Client.RevokeAPIKeyWithResponse(context.Background(), k.Id, testutil.Bearer(ada.AccessToken))
		check(t, "revoke on a", del.StatusCode(), del.Body, 204)
		if _, st := me(t, a, testutil.APIKey(k.Key)); st != 401 {
			t.Fatalf("a after revocation: %d", st)
		}
		// The cache bound runs on b's clock.
		b.Clock.Advance(ttl)
		if _, st := me(t, b, testutil.APIKey(k.Key)); st != 401 {
			t.Fatalf("b still accepts the key %v after its revocation: %d", ttl, st)
		}
	})
}

func TestAPIKeyNotLogged(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	ada := signup(t, s, "quiet@example.com")
	k := createKey(t, s, testutil.Bearer(ada.AccessToken), "quiet", "users:read", "token:exchange")
	me(t, s, testutil.APIKey(k.Key))
	me(t, s, testutil.APIKey(k.Key[:45]+"0"))
	_, _ = s.Client.ExchangeTokenWithResponse(context.Background(), client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(k.Key))
	_, _ = s.Client.RevokeAPIKeyWithResponse(context.Background(), k.Id, testutil.Bearer(ada.AccessToken))
	if strings.Contains(s.Log.String(), k.Key[12:]) {
		t.Fatal("an API key reached the log")
	}
}
