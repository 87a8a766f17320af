package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

const opsEmail = "ops@example.com"

// withOperator makes ops@example.com an operator.
func withOperator(c *app.Config) { c.APIKeys.OperatorEmails = []string{opsEmail} }

// adminUpdate patches a user as the operator.
func adminUpdate(t *testing.T, s *testutil.Server, op client.RequestEditorFn, id uuid.UUID, body client.UpdateAdminUserJSONRequestBody) *client.UpdateAdminUserResponse {
	t.Helper()
	r, err := s.Client.UpdateAdminUserWithResponse(context.Background(), id, body, op)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ban bans the user for a day as the operator.
func ban(t *testing.T, s *testutil.Server, op client.RequestEditorFn, id uuid.UUID) {
	t.Helper()
	reason := "fraud"
	r := adminUpdate(t, s, op, id, client.UpdateAdminUserJSONRequestBody{
		BannedUntil: nullable.NewNullableWithValue(s.Clock.Now().Add(24 * time.Hour)), BanReason: &reason})
	if check(t, "ban", r.StatusCode(), r.Body, 200); !r.JSON200.Banned || r.JSON200.BanReason == nil || *r.JSON200.BanReason != "fraud" {
		t.Fatalf("ban: %s", r.Body)
	}
}

// outbound returns the types of the outbound events stored for the user,
// oldest first.
func outbound(t *testing.T, s *testutil.Server, d string, userID uuid.UUID) []string {
	t.Helper()
	rows, err := s.App.Store.DB().Query(rebind(d, `SELECT type FROM outbound_events WHERE user_id = ? ORDER BY seq`), userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestEveryAdminOperationIsForOperators walks openapi.yaml: every
// operation whose x-latch-scope is in the admin namespace refuses a
// non-operator's session and a non-operator's key that holds that very
// scope with 403 insufficient_permissions, an organization key too, and an
// operator at aal1 who has a factor with mfa_required; the operator's aal2
// session and personal key get past the gate. A new admin operation is
// covered the day it is declared.
func TestEveryAdminOperationIsForOperators(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		user := signup(t, s, "user@example.com")
		userKey := createKey(t, s, testutil.Bearer(user.AccessToken), "admin?", "admin:users:read", "admin:users:write")
		_, en, opAAL1 := userWithFactor(t, s, opsEmail)
		opKey := createKey(t, s, testutil.Bearer(en.Tokens.AccessToken), "ops", "admin:users:read", "admin:users:write")
		org := createOrg(t, s, en.Tokens.AccessToken, "Ops")
		orgKey := createOrgKey(t, s, testutil.Bearer(en.Tokens.AccessToken), org.Id, "keys:read")
		n := 0
		for _, o := range specOperations(t) {
			scope, _ := o.op.Extensions["x-latch-scope"].(string)
			if !strings.HasPrefix(scope, "admin:") {
				continue
			}
			n++
			for name, auth := range map[string]func(*http.Request){
				"non-operator session": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+user.AccessToken) },
				"non-operator key":     func(r *http.Request) { r.Header.Set("X-API-Key", userKey.Key) },
				"organization key":     func(r *http.Request) { r.Header.Set("X-API-Key", orgKey.Key) },
			} {
				res, body := o.callWith(t, s, auth)
				if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"insufficient_permissions"`) {
					t.Errorf("%s %s as a %s: %d %s, want 403 insufficient_permissions", o.method, o.path, name, res.StatusCode, body)
				}
			}
			res, body := o.callWith(t, s, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+opAAL1) })
			if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"mfa_required"`) {
				t.Errorf("%s %s as an operator at aal1: %d %s, want 403 mfa_required", o.method, o.path, res.StatusCode, body)
			}
			// Past the gate, a random user id is unknown (or the body
			// incomplete): never 401 or 403.
			for name, auth := range map[string]func(*http.Request){
				"operator aal2 session": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+en.Tokens.AccessToken) },
				"operator key":          func(r *http.Request) { r.Header.Set("X-API-Key", opKey.Key) },
			} {
				res, body := o.callWith(t, s, auth)
				if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
					t.Errorf("%s %s as the %s: %d %s", o.method, o.path, name, res.StatusCode, body)
				}
			}
		}
		if n < 8 {
			t.Fatalf("only %d admin operations walked", n)
		}
	})
}

// TestAdminListUsers: the filters, newest first, and the cursor.
func TestAdminListUsers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		var ids []uuid.UUID
		for _, e := range []string{"ann@alpha.test", "bob@alpha.test", "cid@beta.test", "a_b@beta.test"} {
			s.Clock.Advance(time.Second)
			ids = append(ids, signup(t, s, e).User.Id)
		}
		mid := s.Clock.Now().Add(-1500 * time.Millisecond) // between bob and cid
		org := createOrg(t, s, ops.AccessToken, "Alpha")
		orgKey := createOrgKey(t, s, op, org.Id, "sessions:write")
		s.Clock.Advance(time.Second)
		ext := "auth0|7"
		del, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: ext}, testutil.APIKey(orgKey.Key))
		check(t, "delegated", del.StatusCode(), del.Body, 201)
		list := func(p client.ListAdminUsersParams) ([]string, *string) {
			t.Helper()
			r, err := s.Client.ListAdminUsersWithResponse(ctx, &p, op)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "list", r.StatusCode(), r.Body, 200)
			var out []string
			for _, u := range r.JSON200.Users {
				if u.Email != nil {
					out = append(out, string(*u.Email))
				} else {
					out = append(out, "ext:"+*u.ExternalId)
				}
			}
			return out, r.JSON200.NextCursor
		}
		str := func(s string) *string { return &s }
		join := func(l []string) string { return strings.Join(l, ",") }
		if got, _ := list(client.ListAdminUsersParams{}); join(got) != "ext:auth0|7,a_b@beta.test,cid@beta.test,bob@alpha.test,ann@alpha.test,ops@example.com" {
			t.Fatalf("all: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{Email: str(" Bob@Alpha.TEST ")}); join(got) != "bob@alpha.test" {
			t.Fatalf("email: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{EmailPrefix: str("A")}); join(got) != "a_b@beta.test,ann@alpha.test" {
			t.Fatalf("prefix: %v", got)
		}
		// LIKE's wildcards are plain characters in a prefix.
		if got, _ := list(client.ListAdminUsersParams{EmailPrefix: str("a_")}); join(got) != "a_b@beta.test" {
			t.Fatalf("prefix with _: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{OrgId: &org.Id}); join(got) != "ext:auth0|7,ops@example.com" {
			t.Fatalf("org: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{ExternalId: &ext}); join(got) != "ext:auth0|7" {
			t.Fatalf("external id: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{CreatedBefore: &mid, CreatedAfter: ptrTime(mid.Add(-time.Hour))}); join(got) != "bob@alpha.test,ann@alpha.test,ops@example.com" {
			t.Fatalf("created: %v", got)
		}
		ban(t, s, op, ids[1])
		yes, no := true, false
		if got, _ := list(client.ListAdminUsersParams{Banned: &yes}); join(got) != "bob@alpha.test" {
			t.Fatalf("banned: %v", got)
		}
		if got, _ := list(client.ListAdminUsersParams{Banned: &no, EmailPrefix: str("b")}); len(got) != 0 {
			t.Fatalf("not banned: %v", got)
		}
		// Pages of two, the cursor continuing newest first.
		var all []string
		var cur *string
		limit := 2
		for {
			page, next := list(client.ListAdminUsersParams{Limit: &limit, Cursor: cur})
			all = append(all, page...)
			if next == nil {
				break
			}
			cur = next
		}
		if join(all) != "ext:auth0|7,a_b@beta.test,cid@beta.test,bob@alpha.test,ann@alpha.test,ops@example.com" {
			t.Fatalf("pages: %v", all)
		}
		r, _ := s.Client.ListAdminUsersWithResponse(ctx, &client.ListAdminUsersParams{Email: str("not an email")}, op)
		checkErr(t, "bad email", r.StatusCode(), r.Body, 400, "invalid_request")
	})
}

func ptrTime(t time.Time) *time.Time { return &t }

// TestAdminGetUserHoldsNoSecret: one user with their sessions, keys,
// factors and organizations, and nothing secret in the JSON.
func TestAdminGetUserHoldsNoSecret(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		_, en, _ := userWithFactor(t, s, "ada@example.com")
		ada := en.Tokens
		createKey(t, s, testutil.Bearer(ada.AccessToken), "ci", "keys:read")
		createOrg(t, s, ada.AccessToken, "Ada Ltd")
		for _, call := range []func() (int, []byte){
			func() (int, []byte) {
				r, _ := s.Client.GetAdminUserWithResponse(ctx, ada.User.Id, op)
				if r.JSON200 != nil {
					g := r.JSON200
					if g.User.FactorCount != 1 || !g.User.HasPassword || len(g.Sessions) != 2 || len(g.ApiKeys) != 1 || len(g.Factors) != 1 ||
						len(g.Organizations) != 1 || g.Organizations[0].Role != client.RoleOwner || g.Organizations[0].Name != "Ada Ltd" {
						t.Errorf("get: %s", r.Body)
					}
				}
				return r.StatusCode(), r.Body
			},
			func() (int, []byte) {
				r, _ := s.Client.ExportAdminUserWithResponse(ctx, ada.User.Id, op)
				if r.JSON200 != nil && (len(r.JSON200.Events) == 0 || len(r.JSON200.ApiKeys) != 1 || len(r.JSON200.Factors) != 1) {
					t.Errorf("export: %s", r.Body)
				}
				return r.StatusCode(), r.Body
			},
		} {
			st, body := call()
			check(t, "read", st, body, 200)
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			walkKeys(v, func(k string) {
				if k == "hash" || strings.Contains(k, "secret") || strings.Contains(k, "password_hash") || k == "key" || k == "refresh_token" {
					t.Errorf("a secret-like member %q in %s", k, body)
				}
			})
		}
		r, _ := s.Client.GetAdminUserWithResponse(ctx, uuid.New(), op)
		checkErr(t, "unknown user", r.StatusCode(), r.Body, 404, "not_found")
		x, _ := s.Client.ExportAdminUserWithResponse(ctx, uuid.New(), op)
		checkErr(t, "unknown user export", x.StatusCode(), x.Body, 404, "not_found")
	})
}

// walkKeys calls f with every object member name in v.
func walkKeys(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			f(k)
			walkKeys(e, f)
		}
	case []any:
		for _, e := range x {
			walkKeys(e, f)
		}
	}
}

// TestBanRefusesEverything: a ban ends the user's sessions at once and
// refuses login, refresh, personal keys and their exchange, and delegated
// sessions with user_banned; unbanning restores login and the keys.
func TestBanRefusesEverything(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		ada := signup(t, s, "ada@example.com")
		key := createKey(t, s, testutil.Bearer(ada.AccessToken), "svc", "token:exchange", "users:read")
		org := createOrg(t, s, ops.AccessToken, "Acme")
		orgKey := createOrgKey(t, s, op, org.Id, "sessions:write")
		del, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "e1"}, testutil.APIKey(orgKey.Key))
		check(t, "delegated", del.StatusCode(), del.Body, 201)

		ban(t, s, op, ada.User.Id)
		if _, st := me(t, s, testutil.Bearer(ada.AccessToken)); st != 401 {
			t.Fatalf("the banned user's access token on this instance: %d", st)
		}
		l := login(s, "ada@example.com", goodPassword)
		checkErr(t, "login", l.StatusCode(), l.Body, 403, "user_banned")
		// A wrong password still says nothing of the ban.
		l = login(s, "ada@example.com", "wrong password, wrong")
		checkErr(t, "wrong password", l.StatusCode(), l.Body, 401, "invalid_credentials")
		ref, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: ada.RefreshToken})
		checkErr(t, "refresh of a session the ban ended", ref.StatusCode(), ref.Body, 401, "invalid_grant")
		m, st := me(t, s, testutil.APIKey(key.Key))
		checkErr(t, "personal key", st, m.Body, 403, "user_banned")
		x := exchange(t, s, client.ExchangeTokenJSONRequestBody{}, testutil.APIKey(key.Key))
		checkErr(t, "exchange", x.StatusCode(), x.Body, 403, "user_banned")
		// Introspection calls the key inactive.
		ik := createKey(t, s, op, "introspect", "tokens:introspect")
		if in, st := introspect(t, s, key.Key, testutil.APIKey(ik.Key)); st != 200 || in.JSON200.Active {
			t.Fatalf("introspection of a banned user's key: %d %s", st, in.Body)
		}
		// The delegated identity, banned too.
		dl, _ := s.Client.ListAdminUsersWithResponse(ctx, &client.ListAdminUsersParams{ExternalId: ptrStr("e1")}, op)
		check(t, "find delegated", dl.StatusCode(), dl.Body, 200)
		ban(t, s, op, dl.JSON200.Users[0].Id)
		del, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "e1"}, testutil.APIKey(orgKey.Key))
		checkErr(t, "delegated session", del.StatusCode(), del.Body, 403, "user_banned")
		if _, st := me(t, s, testutil.Bearer(del0(t, del))); st == 200 {
			t.Fatal("a delegated session of a banned identity")
		}

		// Lifting the ban restores login and the key.
		r := adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{BannedUntil: nullable.NewNullNullable[time.Time]()})
		if check(t, "unban", r.StatusCode(), r.Body, 200); r.JSON200.Banned || r.JSON200.BannedUntil != nil || r.JSON200.BanReason != nil {
			t.Fatalf("unban: %s", r.Body)
		}
		if l := login(s, "ada@example.com", goodPassword); l.StatusCode() != 200 {
			t.Fatalf("login after the unban: %d %s", l.StatusCode(), l.Body)
		}
		if _, st := me(t, s, testutil.APIKey(key.Key)); st != 200 {
			t.Fatalf("key after the unban: %d", st)
		}
		// A session that escaped the revocation (a login that raced the
		// ban, here a ban written straight to the database) is refused at
		// refresh: every session token is signed past the ban check.
		racer := login(s, "ada@example.com", goodPassword).JSON200
		if _, err := s.App.Store.DB().Exec(rebind(d, `UPDATE users SET banned_until = ? WHERE id = ?`),
			s.Clock.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05.000000+00:00"), ada.User.Id); err != nil {
			t.Fatal(err)
		}
		ref, _ = s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: racer.RefreshToken})
		checkErr(t, "refresh of a session that raced the ban", ref.StatusCode(), ref.Body, 403, "user_banned")
		// A ban that has run out is over.
		ban(t, s, op, ada.User.Id)
		s.Clock.Advance(25 * time.Hour)
		if l := login(s, "ada@example.com", goodPassword); l.StatusCode() != 200 {
			t.Fatalf("login after the ban ran out: %d %s", l.StatusCode(), l.Body)
		}
		op = testutil.Bearer(login(s, opsEmail, goodPassword).JSON200.AccessToken)
		evs := outbound(t, s, d, ada.User.Id)
		if !contains(evs, "user.banned") || !contains(evs, "user.updated") || !contains(evs, "session.revoked") {
			t.Fatalf("outbound events: %v", evs)
		}
		past := adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{BannedUntil: nullable.NewNullableWithValue(s.Clock.Now().Add(-time.Hour))})
		checkErr(t, "a ban in the past", past.StatusCode(), past.Body, 400, "invalid_request")
		long := strings.Repeat("x", 501)
		lr := adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{BanReason: &long})
		checkErr(t, "a long reason", lr.StatusCode(), lr.Body, 400, "invalid_request")
		nf := adminUpdate(t, s, op, uuid.New(), client.UpdateAdminUserJSONRequestBody{BanReason: ptrStr("x")})
		checkErr(t, "unknown user", nf.StatusCode(), nf.Body, 404, "not_found")
	})
}

// del0 returns the access token of a delegated session answer, "" for none.
func del0(t *testing.T, r *client.CreateDelegatedSessionResponse) string {
	t.Helper()
	if r.JSON201 == nil {
		return ""
	}
	return r.JSON201.AccessToken
}

func ptrStr(s string) *string { return &s }

// TestBanReachesAnotherInstance: an access token of a banned user stops
// working on another instance sharing the database within the documented
// bound (the change notification; LATCH_SESSION_CACHE_TTL when it does not
// arrive), although that instance would trust its cache for a minute.
func TestBanReachesAnotherInstance(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	long := func(c *app.Config) {
		c.SessionCache = time.Minute
		c.APIKeys.CacheTTL = 30 * time.Second
		withOperator(c)
	}
	a := testutil.StartURL(t, dbURL, long)
	b := testutil.StartURL(t, dbURL, long)
	listening(t, a, b)
	ops := signup(t, a, opsEmail)
	ada := signup(t, a, "ada-instances@example.com")
	key := createKey(t, a, testutil.Bearer(ada.AccessToken), "svc", "users:read")
	if _, st := me(t, b, testutil.Bearer(ada.AccessToken)); st != 200 {
		t.Fatalf("instance b before the ban: %d", st)
	}
	if _, st := me(t, b, testutil.APIKey(key.Key)); st != 200 {
		t.Fatalf("instance b key before the ban: %d", st)
	}
	ban(t, a, testutil.Bearer(ops.AccessToken), ada.User.Id)
	if !eventually(2*time.Second, func() bool { _, st := me(t, b, testutil.Bearer(ada.AccessToken)); return st == 401 }) {
		t.Fatal("instance b still accepts the banned user's access token")
	}
	if !eventually(2*time.Second, func() bool { _, st := me(t, b, testutil.APIKey(key.Key)); return st == 403 }) {
		t.Fatal("instance b still accepts the banned user's key")
	}
	if r := login(b, "ada-instances@example.com", goodPassword); r.StatusCode() != 403 {
		t.Fatalf("login on instance b: %d %s", r.StatusCode(), r.Body)
	}
}

// TestMetadata: operators write both objects, the user only
// user_metadata; each is capped at 8 KiB; app_metadata is in new access
// tokens' claims, and both in GET /auth/me.
func TestMetadata(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		ada := signup(t, s, "ada@example.com")
		if c := tokenClaims(t, ada.AccessToken); c["app_metadata"] != nil {
			t.Fatalf("app_metadata claim with none: %v", c)
		}
		app := client.Metadata{"plan": "pro", "roles": []any{"billing"}}
		r := adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{AppMetadata: &app})
		check(t, "app_metadata", r.StatusCode(), r.Body, 200)
		// The user writes user_metadata...
		um, err := s.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{UserMetadata: client.Metadata{"theme": "dark"}}, testutil.Bearer(ada.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		if check(t, "update me", um.StatusCode(), um.Body, 200); um.JSON200.UserMetadata == nil || (*um.JSON200.UserMetadata)["theme"] != "dark" ||
			um.JSON200.AppMetadata == nil || (*um.JSON200.AppMetadata)["plan"] != "pro" {
			t.Fatalf("update me: %s", um.Body)
		}
		// ...but not app_metadata: the body refuses unknown members.
		res, body := specOp{method: http.MethodPatch, path: "/auth/me"}.raw(t, s, `{"user_metadata":{},"app_metadata":{"plan":"free"}}`, testutil.Bearer(ada.AccessToken))
		checkErr(t, "user writes app_metadata", res.StatusCode, body, 400, "invalid_request")
		// An API key cannot write it either.
		key := createKey(t, s, testutil.Bearer(ada.AccessToken), "k", "users:read")
		um, _ = s.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{UserMetadata: client.Metadata{}}, testutil.APIKey(key.Key))
		if um.StatusCode() != 401 && um.StatusCode() != 403 {
			t.Fatalf("key writes user_metadata: %d %s", um.StatusCode(), um.Body)
		}
		m, _ := me(t, s, testutil.Bearer(ada.AccessToken))
		if m.JSON200.AppMetadata == nil || (*m.JSON200.AppMetadata)["plan"] != "pro" || (*m.JSON200.UserMetadata)["theme"] != "dark" {
			t.Fatalf("me: %s", m.Body)
		}
		// A new access token carries app_metadata (a refresh reads it).
		ref, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: ada.RefreshToken})
		check(t, "refresh", ref.StatusCode(), ref.Body, 200)
		c := tokenClaims(t, ref.JSON200.AccessToken)
		am, _ := c["app_metadata"].(map[string]any)
		if am["plan"] != "pro" {
			t.Fatalf("claims: %v", c)
		}
		if l := login(s, "ada@example.com", goodPassword); tokenClaims(t, l.JSON200.AccessToken)["app_metadata"] == nil {
			t.Fatal("no app_metadata claim at login")
		}
		// The caps.
		big := client.Metadata{"x": strings.Repeat("a", 8<<10)}
		r = adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{AppMetadata: &big})
		checkErr(t, "big app_metadata", r.StatusCode(), r.Body, 400, "invalid_request")
		r = adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{UserMetadata: &big})
		checkErr(t, "big user_metadata", r.StatusCode(), r.Body, 400, "invalid_request")
		um, _ = s.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{UserMetadata: big}, testutil.Bearer(ada.AccessToken))
		checkErr(t, "big own user_metadata", um.StatusCode(), um.Body, 400, "invalid_request")
		// Emptying app_metadata drops the claim.
		empty := client.Metadata{}
		r = adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{AppMetadata: &empty})
		if check(t, "empty", r.StatusCode(), r.Body, 200); r.JSON200.AppMetadata != nil {
			t.Fatalf("emptied: %s", r.Body)
		}
		if l := login(s, "ada@example.com", goodPassword); tokenClaims(t, l.JSON200.AccessToken)["app_metadata"] != nil {
			t.Fatal("an empty app_metadata claim")
		}
		if evs := outbound(t, s, d, ada.User.Id); !contains(evs, "user.updated") {
			t.Fatalf("outbound: %v", evs)
		}
	})
}

// TestAdminEmailChange: a new email is unverified unless said otherwise,
// normalised, and refused when another account has it.
func TestAdminEmailChange(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		ada := signup(t, s, "ada@example.com")
		signup(t, s, "bob@example.com")
		r := adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{Email: ptrStr(" Ada2@Example.com")})
		if check(t, "email", r.StatusCode(), r.Body, 200); string(*r.JSON200.Email) != "ada2@example.com" || r.JSON200.EmailVerified {
			t.Fatalf("email: %s", r.Body)
		}
		yes := true
		r = adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{Email: ptrStr("ada3@example.com"), EmailVerified: &yes})
		if check(t, "verified email", r.StatusCode(), r.Body, 200); !r.JSON200.EmailVerified {
			t.Fatalf("verified email: %s", r.Body)
		}
		r = adminUpdate(t, s, op, ada.User.Id, client.UpdateAdminUserJSONRequestBody{Email: ptrStr("bob@example.com")})
		checkErr(t, "taken", r.StatusCode(), r.Body, 409, "email_taken")
		// The session goes on; the new email logs in.
		if _, st := me(t, s, testutil.Bearer(ada.AccessToken)); st != 200 {
			t.Fatalf("session after the change: %d", st)
		}
		if l := login(s, "ada3@example.com", goodPassword); l.StatusCode() != 200 {
			t.Fatalf("login with the new email: %d", l.StatusCode())
		}
	})
}

// TestAdminEndSessionsAndRemoveFactors: ending sessions takes effect at
// once; removing factors lets the password alone reach aal2 operations,
// shows the user an event and mails them.
func TestAdminEndSessionsAndRemoveFactors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		box := &mailbox{}
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		_, en, aal1 := userWithFactor(t, s, "ada@example.com")
		flush(t, s, box)
		es, _ := s.Client.RevokeAdminUserSessionsWithResponse(ctx, en.Tokens.User.Id, op)
		check(t, "end sessions", es.StatusCode(), es.Body, 204)
		for _, tok := range []string{en.Tokens.AccessToken, aal1} {
			if _, st := me(t, s, testutil.Bearer(tok)); st != 401 {
				t.Fatalf("a session after the end: %d", st)
			}
		}
		es, _ = s.Client.RevokeAdminUserSessionsWithResponse(ctx, uuid.New(), op)
		checkErr(t, "unknown user", es.StatusCode(), es.Body, 404, "not_found")

		df, _ := s.Client.DeleteAdminUserFactorWithResponse(ctx, en.Tokens.User.Id, uuid.New(), op)
		checkErr(t, "unknown factor", df.StatusCode(), df.Body, 404, "not_found")
		rf, _ := s.Client.DeleteAdminUserFactorsWithResponse(ctx, en.Tokens.User.Id, op)
		check(t, "remove factors", rf.StatusCode(), rf.Body, 204)
		l := login(s, "ada@example.com", goodPassword)
		check(t, "login", l.StatusCode(), l.Body, 200)
		if l.JSON200.Mfa != nil && len(l.JSON200.Mfa.Factors) > 0 {
			t.Fatalf("factors left: %s", l.Body)
		}
		k, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "k", Scopes: []client.Scope{}}, testutil.Bearer(l.JSON200.AccessToken))
		check(t, "aal2 operation with the password alone", k.StatusCode(), k.Body, 201)
		ev, _ := s.Client.ListEventsWithResponse(ctx, nil, testutil.Bearer(l.JSON200.AccessToken))
		found := false
		for _, e := range ev.JSON200.Events {
			if e.Type == client.EventTypeMfaFactorRemoved && e.Detail != nil && (*e.Detail)["by"] == "operator" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no mfa_factor_removed event: %s", ev.Body)
		}
		msgs := flush(t, s, box)
		if len(msgs) != 1 || msgs[0].To != "ada@example.com" || !strings.Contains(msgs[0].Subject, "support") {
			t.Fatalf("mails: %v", msgs)
		}
		if evs := outbound(t, s, d, en.Tokens.User.Id); !contains(evs, "mfa.factor.removed") || !contains(evs, "session.revoked") {
			t.Fatalf("outbound: %v", evs)
		}
	})
}

// TestAdminDeleteUser: a user who alone owns an organization is kept
// unless the operator deletes those organizations too; then the user, their
// sessions and keys go at once.
func TestAdminDeleteUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		op := testutil.Bearer(ops.AccessToken)
		ada := signup(t, s, "ada@example.com")
		key := createKey(t, s, testutil.Bearer(ada.AccessToken), "k", "users:read")
		org := createOrg(t, s, ada.AccessToken, "Ada Ltd")
		orgKey := createOrgKey(t, s, testutil.Bearer(ada.AccessToken), org.Id, "sessions:write")
		del, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "x"}, testutil.APIKey(orgKey.Key))
		check(t, "delegated", del.StatusCode(), del.Body, 201)

		r, _ := s.Client.DeleteAdminUserWithResponse(ctx, ada.User.Id, nil, op)
		checkErr(t, "sole owner", r.StatusCode(), r.Body, 409, "conflict")
		if _, st := me(t, s, testutil.Bearer(ada.AccessToken)); st != 200 {
			t.Fatalf("after the refusal: %d", st)
		}
		yes := true
		r, _ = s.Client.DeleteAdminUserWithResponse(ctx, ada.User.Id, &client.DeleteAdminUserParams{DeleteSoleOwnedOrgs: &yes}, op)
		check(t, "delete", r.StatusCode(), r.Body, 204)
		for name, auth := range map[string]client.RequestEditorFn{
			"session": testutil.Bearer(ada.AccessToken), "key": testutil.APIKey(key.Key),
			"delegated session": testutil.Bearer(del.JSON201.AccessToken), "org key": testutil.APIKey(orgKey.Key),
		} {
			if _, st := me(t, s, auth); st != 401 {
				t.Errorf("%s after the deletion: %d", name, st)
			}
		}
		if l := login(s, "ada@example.com", goodPassword); l.StatusCode() != 401 {
			t.Fatalf("login after the deletion: %d", l.StatusCode())
		}
		g, _ := s.Client.GetAdminUserWithResponse(ctx, ada.User.Id, op)
		checkErr(t, "deleted user", g.StatusCode(), g.Body, 404, "not_found")
		r, _ = s.Client.DeleteAdminUserWithResponse(ctx, ada.User.Id, nil, op)
		checkErr(t, "twice", r.StatusCode(), r.Body, 404, "not_found")
		if evs := outbound(t, s, d, ada.User.Id); !contains(evs, "user.deleted") {
			t.Fatalf("outbound: %v", evs)
		}
		var n int
		for _, q := range []string{`SELECT COUNT(*) FROM sessions WHERE user_id = ?`, `SELECT COUNT(*) FROM api_keys WHERE user_id = ? OR org_id = ?`,
			`SELECT COUNT(*) FROM security_events WHERE user_id = ?`, `SELECT COUNT(*) FROM users WHERE org_id = ?`} {
			args := []any{ada.User.Id}
			if strings.Count(q, "?") == 2 {
				args = append(args, org.Id)
			}
			if strings.Contains(q, "users WHERE org_id") {
				args = []any{org.Id}
			}
			if err := s.App.Store.DB().QueryRow(rebind(d, q), args...).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s: %d %v", q, n, err)
			}
		}
	})
}

// callWith sends the operation like call, authenticated by auth.
func (o specOp) callWith(t *testing.T, s *testutil.Server, auth func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	body := ""
	if o.op.RequestBody != nil {
		body = `{}`
	}
	return o.send(t, s, pathParam.ReplaceAllStringFunc(o.path, func(string) string { return uuid.NewString() }), body, auth)
}

// raw sends body to the operation's path as it is, authenticated by auth.
func (o specOp) raw(t *testing.T, s *testutil.Server, body string, auth client.RequestEditorFn) (*http.Response, []byte) {
	t.Helper()
	return o.send(t, s, o.path, body, func(r *http.Request) {
		if err := auth(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	})
}

func (o specOp) send(t *testing.T, s *testutil.Server, path, body string, auth func(*http.Request)) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(o.method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	auth(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf strings.Builder
	b := make([]byte, 4096)
	for {
		n, err := res.Body.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	return res, []byte(buf.String())
}

// TestBanRefusesPasskeyLogin: a passkey signs in alone, and not while its
// user is banned.
func TestBanRefusesPasskeyLogin(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		first := signup(t, s, "wanda@example.com")
		auth := testutil.NewAuthenticator(t)
		begin, _ := s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(first.AccessToken))
		fin, _ := s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Credential: auth.Create(begin.JSON200.Options, webOrigin)}, testutil.Bearer(first.AccessToken))
		if fin.JSON200 == nil {
			t.Fatalf("register: %d %s", fin.StatusCode(), fin.Body)
		}
		passkey := func() *client.PasskeyLoginResponse {
			pb, _ := s.Client.BeginPasskeyLoginWithResponse(ctx)
			pl, _ := s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: auth.Get(pb.JSON200.Options, webOrigin)})
			return pl
		}
		if pl := passkey(); pl.JSON200 == nil {
			t.Fatalf("passkey before the ban: %d %s", pl.StatusCode(), pl.Body)
		}
		ban(t, s, testutil.Bearer(ops.AccessToken), first.User.Id)
		pl := passkey()
		checkErr(t, "passkey while banned", pl.StatusCode(), pl.Body, 403, "user_banned")
	})
}
