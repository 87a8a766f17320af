package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

func TestDelegatedSessionLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "sessions:write", "sessions:read")
		key := testutil.APIKey(k.Key)

		meta := map[string]any{"plan": "pro"}
		email := client.Email("Ext@Example.com")
		res, err := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "auth0|1", Email: &email, Metadata: &meta}, key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "create", res.StatusCode(), res.Body, 201)
		first := res.JSON201
		u := first.User
		if u.OrgId == nil || *u.OrgId != org.Id || u.ExternalId == nil || *u.ExternalId != "auth0|1" || u.Email == nil || *u.Email != "ext@example.com" ||
			u.Metadata == nil || (*u.Metadata)["plan"] != "pro" {
			t.Fatalf("user: %s", res.Body)
		}
		// The access token carries org_id and ext.
		var c struct {
			jwt.RegisteredClaims
			OrgID string `json:"org_id"`
			Ext   string `json:"ext"`
			SID   string `json:"sid"`
		}
		j, _ := s.Client.GetJWKSWithResponse(ctx)
		if _, err := jwt.ParseWithClaims(first.AccessToken, &c, jwksKeyfunc(t, j.Body), jwt.WithTimeFunc(s.Clock.Now)); err != nil {
			t.Fatal(err)
		}
		if c.Subject != u.Id.String() || c.OrgID != org.Id.String() || c.Ext != "auth0|1" || c.SID != first.SessionId.String() {
			t.Fatalf("claims: %+v", c)
		}
		// It is an ordinary session for its user.
		m, st := me(t, s, testutil.Bearer(first.AccessToken))
		if check(t, "me", st, m.Body, 200); m.JSON200.Id != u.Id {
			t.Fatalf("me: %s", m.Body)
		}
		rf, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: first.RefreshToken})
		if check(t, "refresh", rf.StatusCode(), rf.Body, 200); rf.JSON200.User.OrgId == nil || rf.JSON200.SessionId != first.SessionId {
			t.Fatalf("refresh: %s", rf.Body)
		}
		// A delegated identity manages no keys and creates no organization.
		ck, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []string{}}, testutil.Bearer(first.AccessToken))
		checkErr(t, "delegated creates a key", ck.StatusCode(), ck.Body, 403, "insufficient_permissions")
		co, _ := s.Client.CreateOrganizationWithResponse(ctx, client.CreateOrganizationJSONRequestBody{Name: "x"}, testutil.Bearer(first.AccessToken))
		checkErr(t, "delegated creates an org", co.StatusCode(), co.Body, 403, "insufficient_permissions")

		// The same external id is the same identity; new metadata replaces
		// the old, the email is kept.
		meta2 := map[string]any{"plan": "team"}
		res, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "auth0|1", Metadata: &meta2}, key)
		check(t, "second session", res.StatusCode(), res.Body, 201)
		second := res.JSON201
		if second.User.Id != u.Id || second.SessionId == first.SessionId || (*second.User.Metadata)["plan"] != "team" || second.User.Email == nil {
			t.Fatalf("second: %s", res.Body)
		}
		res, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "auth0|2"}, key)
		check(t, "other identity", res.StatusCode(), res.Body, 201)
		if res.JSON201.User.Id == u.Id || res.JSON201.User.Email != nil {
			t.Fatalf("other: %s", res.Body)
		}

		// Renew with the organization's key; another organization's key
		// cannot.
		s.Clock.Advance(time.Minute)
		rn, _ := s.Client.RenewSessionWithResponse(ctx, first.SessionId, key)
		if check(t, "renew by org key", rn.StatusCode(), rn.Body, 200); !rn.JSON200.ExpiresAt.After(first.ExpiresAt) {
			t.Fatalf("renew: %s", rn.Body)
		}
		other := createOrg(t, s, alice.AccessToken, "Other")
		ok := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), other.Id, "sessions:write", "sessions:read")
		rn, _ = s.Client.RenewSessionWithResponse(ctx, first.SessionId, testutil.APIKey(ok.Key))
		checkErr(t, "renew by another org's key", rn.StatusCode(), rn.Body, 404, "not_found")
		rn, _ = s.Client.RenewSessionWithResponse(ctx, alice.SessionId, key)
		checkErr(t, "renew a member's own session by org key", rn.StatusCode(), rn.Body, 404, "not_found")
		rn, _ = s.Client.RenewSessionWithResponse(ctx, second.SessionId, testutil.Bearer(second.AccessToken))
		check(t, "renew by its user", rn.StatusCode(), rn.Body, 200)

		// List, by external id.
		ext := "auth0|1"
		ls, _ := s.Client.ListOrgSessionsWithResponse(ctx, org.Id, &client.ListOrgSessionsParams{ExternalId: &ext}, key)
		check(t, "list", ls.StatusCode(), ls.Body, 200)
		if len(ls.JSON200.Sessions) != 2 || *ls.JSON200.Sessions[0].ExternalId != "auth0|1" || *ls.JSON200.Sessions[0].OrgId != org.Id {
			t.Fatalf("list: %s", ls.Body)
		}
		// Listed like any session: with its assurance level.
		if a := ls.JSON200.Sessions[0].Aal; a == nil || *a != client.Aal1 {
			t.Fatalf("a delegated session's assurance in the list: %s", ls.Body)
		}
		ls, _ = s.Client.ListOrgSessionsWithResponse(ctx, org.Id, nil, key)
		if check(t, "list all", ls.StatusCode(), ls.Body, 200); len(ls.JSON200.Sessions) != 3 {
			t.Fatalf("list all: %s", ls.Body)
		}
		ls, _ = s.Client.ListOrgSessionsWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		if check(t, "owner lists", ls.StatusCode(), ls.Body, 200); len(ls.JSON200.Sessions) != 3 {
			t.Fatalf("owner's list: %s", ls.Body)
		}
		ls, _ = s.Client.ListOrgSessionsWithResponse(ctx, other.Id, nil, testutil.APIKey(ok.Key))
		if check(t, "other org lists", ls.StatusCode(), ls.Body, 200); len(ls.JSON200.Sessions) != 0 {
			t.Fatalf("other org's list: %s", ls.Body)
		}

		// Revoke: the access token and the refresh token stop at once.
		rv, _ := s.Client.RevokeOrgSessionWithResponse(ctx, org.Id, first.SessionId, testutil.APIKey(ok.Key))
		checkErr(t, "revoke by another org", rv.StatusCode(), rv.Body, 404, "not_found")
		rv, _ = s.Client.RevokeOrgSessionWithResponse(ctx, org.Id, first.SessionId, key)
		check(t, "revoke", rv.StatusCode(), rv.Body, 204)
		m, st = me(t, s, testutil.Bearer(rf.JSON200.AccessToken))
		checkErr(t, "access token after revoke", st, m.Body, 401, "invalid_token")
		rf, _ = s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: rf.JSON200.RefreshToken})
		checkErr(t, "refresh after revoke", rf.StatusCode(), rf.Body, 401, "invalid_grant")
		rv, _ = s.Client.RevokeOrgSessionWithResponse(ctx, org.Id, first.SessionId, key)
		checkErr(t, "revoke twice", rv.StatusCode(), rv.Body, 404, "not_found")
		ls, _ = s.Client.ListOrgSessionsWithResponse(ctx, org.Id, &client.ListOrgSessionsParams{ExternalId: &ext}, key)
		if check(t, "list after revoke", ls.StatusCode(), ls.Body, 200); len(ls.JSON200.Sessions) != 1 || ls.JSON200.Sessions[0].Id != second.SessionId {
			t.Fatalf("list after revoke: %s", ls.Body)
		}
		// The user logs out of the other session like anyone.
		lo, _ := s.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(second.AccessToken))
		check(t, "logout", lo.StatusCode(), lo.Body, 204)

		// Only an organization key opens delegated sessions.
		pk := createKey(t, s, testutil.Bearer(alice.AccessToken), "personal", "sessions:write")
		res, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "x"}, testutil.APIKey(pk.Key))
		checkErr(t, "personal key", res.StatusCode(), res.Body, 403, "insufficient_permissions")
		ro := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "sessions:read")
		res, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "x"}, testutil.APIKey(ro.Key))
		checkErr(t, "key without sessions:write", res.StatusCode(), res.Body, 403, "insufficient_permissions")
	})
}

func TestUserLookupIsForOperators(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.OperatorEmails = []string{"Ops@Example.com"} })
		ctx := context.Background()
		ops := signup(t, s, "ops@example.com")
		user := signup(t, s, "user@example.com")
		target := signup(t, s, "target@example.com")
		lookup := func(auth client.RequestEditorFn, email string) *client.LookupUserResponse {
			t.Helper()
			r, err := s.Client.LookupUserWithResponse(ctx, &client.LookupUserParams{Email: client.Email(email)}, auth)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		// Any user's key may hold users:read, for GET /auth/me...
		uk := createKey(t, s, testutil.Bearer(user.AccessToken), "mine", "users:read")
		if m, st := me(t, s, testutil.APIKey(uk.Key)); st != 200 || m.JSON200.Id != user.User.Id {
			t.Fatalf("me: %d", st)
		}
		// ...but only an operator's looks anyone up.
		r := lookup(testutil.APIKey(uk.Key), "target@example.com")
		checkErr(t, "non-operator", r.StatusCode(), r.Body, 403, "insufficient_permissions")
		r = lookup(testutil.APIKey(uk.Key), "nobody@example.com")
		checkErr(t, "non-operator, unknown email", r.StatusCode(), r.Body, 403, "insufficient_permissions")

		ok := createKey(t, s, testutil.Bearer(ops.AccessToken), "ops", "users:read")
		r = lookup(testutil.APIKey(ok.Key), "Target@Example.com")
		if check(t, "operator", r.StatusCode(), r.Body, 200); r.JSON200.Id != target.User.Id || r.JSON200.Email != "target@example.com" {
			t.Fatalf("lookup: %s", r.Body)
		}
		r = lookup(testutil.APIKey(ok.Key), "nobody@example.com")
		checkErr(t, "unknown email", r.StatusCode(), r.Body, 404, "not_found")
		// The scope is still needed, and only an API key is accepted.
		nk := createKey(t, s, testutil.Bearer(ops.AccessToken), "no scope", "keys:read")
		r = lookup(testutil.APIKey(nk.Key), "target@example.com")
		if msg := checkErr(t, "operator key without users:read", r.StatusCode(), r.Body, 403, "insufficient_permissions"); msg == "" {
			t.Fatal("no message")
		}
		r = lookup(testutil.Bearer(ops.AccessToken), "target@example.com")
		checkErr(t, "operator session", r.StatusCode(), r.Body, 401, "unauthorized")
		// An organization key has no operator.
		org := createOrg(t, s, ops.AccessToken, "Ops")
		orgKey := createOrgKey(t, s, testutil.Bearer(ops.AccessToken), org.Id, "keys:read")
		r = lookup(testutil.APIKey(orgKey.Key), "target@example.com")
		checkErr(t, "org key", r.StatusCode(), r.Body, 403, "insufficient_permissions")
	})
}
