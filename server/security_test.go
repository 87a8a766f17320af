package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// The tests of the security review's findings, one per rule; each fails on
// the behaviour the review reproduced.

func keyWorks(t *testing.T, s *testutil.Server, key string) int {
	t.Helper()
	_, st := me(t, s, testutil.APIKey(key))
	return st
}

func TestPasswordResetRevokesAPIKeys(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		signup(t, s, "owner@example.com")
		tok := login(s, "owner@example.com", goodPassword).JSON200
		k := createKey(t, s, testutil.Bearer(tok.AccessToken), "left behind", "users:read")
		if st := keyWorks(t, s, k.Key); st != 200 {
			t.Fatalf("key before reset: %d", st)
		}
		flush(t, s, box) // the signup's verification mail
		forgot(t, s, "owner@example.com")
		msgs := flush(t, s, box)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "revokes every personal API key") {
			t.Fatalf("the reset mail does not say keys are revoked: %d mails", len(msgs))
		}
		if r := reset(s, tokenIn(t, msgs[0]), newPassword); r.StatusCode() != 204 {
			t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
		}
		if st := keyWorks(t, s, k.Key); st != 401 {
			t.Fatalf("key after reset: %d, want 401", st)
		}
		ev, _ := s.Client.ListEventsWithResponse(context.Background(), nil, testutil.Bearer(login(s, "owner@example.com", newPassword).JSON200.AccessToken))
		if !strings.Contains(string(ev.Body), `"revoked_api_keys":1`) {
			t.Fatalf("the reset event does not count the revoked key: %s", ev.Body)
		}
	})
}

func TestPasswordChangeAndGlobalLogoutRevokeKeysWhenAsked(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		tok := signup(t, s, "keys@example.com")
		bearer := testutil.Bearer(tok.AccessToken)
		kept := createKey(t, s, bearer, "kept", "users:read")
		ch, _ := s.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: goodPassword, NewPassword: newPassword}, bearer)
		check(t, "change (default)", ch.StatusCode(), ch.Body, 204)
		if st := keyWorks(t, s, kept.Key); st != 200 {
			t.Fatalf("a change keeps keys by default: %d", st)
		}
		yes := true
		ch, _ = s.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: newPassword, NewPassword: goodPassword, RevokeApiKeys: &yes}, bearer)
		check(t, "change revoking keys", ch.StatusCode(), ch.Body, 204)
		if st := keyWorks(t, s, kept.Key); st != 401 {
			t.Fatalf("key after a change with revoke_api_keys: %d", st)
		}
		k2 := createKey(t, s, bearer, "second", "users:read")
		local := client.Local
		lo, _ := s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &local, RevokeApiKeys: &yes}, bearer)
		checkErr(t, "revoke_api_keys without global", lo.StatusCode(), lo.Body, 400, "invalid_request")
		if st := keyWorks(t, s, k2.Key); st != 200 {
			t.Fatalf("a refused logout revoked the key: %d", st)
		}
		global := client.Global
		lo, _ = s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &global, RevokeApiKeys: &yes}, bearer)
		check(t, "global logout revoking keys", lo.StatusCode(), lo.Body, 204)
		if st := keyWorks(t, s, k2.Key); st != 401 {
			t.Fatalf("key after a global logout with revoke_api_keys: %d", st)
		}
	})
}

func TestAPIKeysNeedAVerifiedEmail(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		tok := signupUnverified(t, s, "fresh@example.com")
		res, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []string{"users:read"}}, testutil.Bearer(tok.AccessToken))
		checkErr(t, "personal key, unverified", res.StatusCode(), res.Body, 403, "email_not_verified")
		org := createOrg(t, s, tok.AccessToken, "Unverified Inc")
		ro, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.Id, client.CreateOrgAPIKeyJSONRequestBody{Label: "x", Scopes: []string{}}, testutil.Bearer(tok.AccessToken))
		checkErr(t, "organization key, unverified", ro.StatusCode(), ro.Body, 403, "email_not_verified")
	})
}

// TestOperatorPreRegistrationFails replays the review's attack: someone
// signs up first with the operator's address, holds a users:read key, and
// waits for the real operator to reclaim the account by password reset.
func TestOperatorPreRegistrationFails(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.OperatorEmails = []string{"op@company.test"} })
		ctx := context.Background()
		box := &mailbox{}
		signup(t, s, "target@example.com")
		lookup := func(key string) int {
			r, err := s.Client.LookupUserWithResponse(ctx, &client.LookupUserParams{Email: "target@example.com"}, testutil.APIKey(key))
			if err != nil {
				t.Fatal(err)
			}
			return r.StatusCode()
		}
		// 1. The attacker cannot create a key with the unverified address.
		att := signupUnverified(t, s, "op@company.test")
		res, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []string{"users:read"}}, testutil.Bearer(att.AccessToken))
		checkErr(t, "attacker's key", res.StatusCode(), res.Body, 403, "email_not_verified")
		// 2. A key made before this release's rule (an earlier instance marked
		// the address verified without recording when) is no operator key...
		if _, err := s.App.Store.DB().Exec(rebind(d, `UPDATE users SET email_verified = ? WHERE email = ?`), true, "op@company.test"); err != nil {
			t.Fatal(err)
		}
		old := createKey(t, s, testutil.Bearer(att.AccessToken), "planted", "users:read")
		if st := lookup(old.Key); st != 403 {
			t.Fatalf("planted key before the reset: %d, want 403", st)
		}
		// 3. ...and the real owner's reset revokes it.
		flush(t, s, box)
		forgot(t, s, "op@company.test")
		msgs := flush(t, s, box)
		if len(msgs) != 1 {
			t.Fatalf("%d reset mails", len(msgs))
		}
		reset(s, tokenIn(t, msgs[0]), newPassword)
		if st := lookup(old.Key); st != 401 {
			t.Fatalf("planted key after the reset: %d, want 401", st)
		}
		// The real operator, verified by the reset, gets a working key.
		s.Clock.Advance(time.Second)
		op := login(s, "op@company.test", newPassword).JSON200
		good := createKey(t, s, testutil.Bearer(op.AccessToken), "ops", "users:read")
		if st := lookup(good.Key); st != 200 {
			t.Fatalf("operator key after verification: %d", st)
		}
		// A key older than the verification never has the power.
		if _, err := s.App.Store.DB().Exec(rebind(d, `UPDATE users SET email_verified_at = ? WHERE email = ?`),
			s.Clock.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05.000000+00:00"), "op@company.test"); err != nil {
			t.Fatal(err)
		}
		if st := lookup(good.Key); st != 403 {
			t.Fatalf("key created before the verification: %d, want 403", st)
		}
	})
}

func TestDelegatedIdentitiesGetNoMail(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		box := &mailbox{}
		alice := signup(t, s, "alice@example.com")
		org := createOrg(t, s, alice.AccessToken, "Relay")
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "sessions:write")
		stranger := client.Email("stranger@example.com")
		ds, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "x1", Email: &stranger}, testutil.APIKey(k.Key))
		check(t, "delegated session", ds.StatusCode(), ds.Body, 201)
		rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(ds.JSON201.AccessToken))
		checkErr(t, "resend from a delegated identity", rs.StatusCode(), rs.Body, 403, "insufficient_permissions")
		for _, m := range flush(t, s, box) {
			if m.To == string(stranger) {
				t.Fatalf("a mail went to the delegated identity's address")
			}
		}
		// A changed email is unverified, whatever the old one was.
		if _, err := s.App.Store.DB().Exec(rebind(d, `UPDATE users SET email_verified = ? WHERE external_id = ?`), true, "x1"); err != nil {
			t.Fatal(err)
		}
		other := client.Email("changed@example.com")
		ds, _ = s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "x1", Email: &other}, testutil.APIKey(k.Key))
		if check(t, "email change", ds.StatusCode(), ds.Body, 201); ds.JSON201.User.EmailVerified || *ds.JSON201.User.Email != other {
			t.Fatalf("changed email still verified: %s", ds.Body)
		}
	})
}

func TestMailQuotaPerRecipientAndDelegatedSessionLimit(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.ResendUser = ratelimit.Rule{}
		c.Limits.MailRecipient = ratelimit.Rule{Burst: 2, Per: time.Hour}
		c.Limits.DelegatedKey = ratelimit.Rule{Burst: 2, Per: time.Minute}
	})
	ctx := context.Background()
	tok := signupUnverified(t, s, "quota@example.com") // mail 1
	rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(tok.AccessToken))
	check(t, "resend (mail 2)", rs.StatusCode(), rs.Body, 202)
	rs, _ = s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(tok.AccessToken))
	checkErr(t, "resend over the recipient's quota", rs.StatusCode(), rs.Body, 429, "rate_limited")
	if rs.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Forgot stays silent over the quota, and queues nothing.
	forgot(t, s, "quota@example.com")
	if msgs := flush(t, s, &mailbox{}); len(msgs) != 2 {
		t.Fatalf("%d mails, want the 2 the quota allows", len(msgs))
	}

	alice := signup(t, s, "alice@example.com")
	org := createOrg(t, s, alice.AccessToken, "Busy")
	k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "sessions:write")
	for i, want := range []int{201, 201, 429} {
		ds, _ := s.Client.CreateDelegatedSessionWithResponse(ctx, client.CreateDelegatedSessionJSONRequestBody{ExternalId: "u"}, testutil.APIKey(k.Key))
		if ds.StatusCode() != want {
			t.Fatalf("delegated session %d: %d, want %d: %s", i, ds.StatusCode(), want, ds.Body)
		}
	}
}

func TestKeyNeverOutlivesTheCredentialThatMadeIt(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		tok := signup(t, s, "cap@example.com")
		exp := s.Clock.Now().Add(2 * time.Minute).Truncate(time.Second)
		res, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "short", ExpiresAt: &exp,
			Scopes: []string{"keys:write", "token:exchange", "users:read"}}, testutil.Bearer(tok.AccessToken))
		check(t, "short key", res.StatusCode(), res.Body, 201)
		short := res.JSON201
		// A key made by the short key, asking for no expiry, ends with it.
		child := createKey(t, s, testutil.APIKey(short.Key), "child", "users:read")
		if child.ExpiresAt == nil || !child.ExpiresAt.Equal(exp) {
			t.Fatalf("child of a 2-minute key expires at %v, want %v", child.ExpiresAt, exp)
		}
		// A key made by a token exchanged from it ends with the token.
		in := 30
		ex := exchange(t, s, client.ExchangeTokenJSONRequestBody{Scopes: &[]string{"keys:write", "users:read"}, ExpiresIn: &in}, testutil.APIKey(short.Key))
		check(t, "exchange", ex.StatusCode(), ex.Body, 200)
		grand := createKey(t, s, testutil.Bearer(ex.JSON200.AccessToken), "grandchild", "users:read")
		if grand.ExpiresAt == nil || grand.ExpiresAt.After(ex.JSON200.ExpiresAt) {
			t.Fatalf("key made by a 30 s token expires at %v, token at %v", grand.ExpiresAt, ex.JSON200.ExpiresAt)
		}
	})
}

func TestInvitationsRevealNoAccounts(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		signup(t, s, "bob@example.com")
		eve := signup(t, s, "eve@example.com")
		org := createOrg(t, s, alice.AccessToken, "Quiet")
		do := func(email string) *client.InviteMemberResponse {
			r, _ := s.Client.InviteMemberWithResponse(ctx, org.Id, client.InviteMemberJSONRequestBody{Email: client.Email(email), Role: client.RoleMember}, testutil.Bearer(alice.AccessToken))
			return r
		}
		known, unknown := do("bob@example.com"), do("nobody@example.com")
		if known.StatusCode() != 202 || unknown.StatusCode() != 202 || string(known.Body) != string(unknown.Body) ||
			!equalHeaders(headersWithout(known.HTTPResponse.Header, "X-Request-Id", "Date"), headersWithout(unknown.HTTPResponse.Header, "X-Request-Id", "Date")) {
			t.Fatalf("known %d %s, unknown %d %s", known.StatusCode(), known.Body, unknown.StatusCode(), unknown.Body)
		}
		// Nobody joins until they accept, and only with the invited address.
		ms, _ := s.Client.ListMembersWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		if len(ms.JSON200.Members) != 1 {
			t.Fatalf("members before accepting: %s", ms.Body)
		}
		tok := invite(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)
		acc, _ := s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: tok}, testutil.Bearer(eve.AccessToken))
		checkErr(t, "accept with another address", acc.StatusCode(), acc.Body, 403, "insufficient_permissions")
		carol := signup(t, s, "carol@example.com")
		acc, _ = s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: tok}, testutil.Bearer(carol.AccessToken))
		if check(t, "accept", acc.StatusCode(), acc.Body, 200); acc.JSON200.Role != client.RoleAdmin {
			t.Fatalf("joined: %s", acc.Body)
		}
		acc, _ = s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: tok}, testutil.Bearer(carol.AccessToken))
		checkErr(t, "accept twice", acc.StatusCode(), acc.Body, 400, "invalid_token")
		// A revoked invitation's link is dead; tokens are stored hashed.
		tok2 := invite(t, s, alice.AccessToken, org.Id, "dave@example.com", client.RoleMember)
		li, _ := s.Client.ListInvitationsWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		check(t, "list invitations", li.StatusCode(), li.Body, 200)
		var daveInv *client.Invitation
		for i := range li.JSON200.Invitations {
			if li.JSON200.Invitations[i].Email == "dave@example.com" {
				daveInv = &li.JSON200.Invitations[i]
			}
		}
		if daveInv == nil {
			t.Fatalf("dave's invitation is not listed: %s", li.Body)
		}
		rv, _ := s.Client.RevokeInvitationWithResponse(ctx, org.Id, daveInv.Id, testutil.Bearer(alice.AccessToken))
		check(t, "revoke invitation", rv.StatusCode(), rv.Body, 204)
		dave := signup(t, s, "dave@example.com")
		acc, _ = s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: tok2}, testutil.Bearer(dave.AccessToken))
		checkErr(t, "accept a revoked invitation", acc.StatusCode(), acc.Body, 400, "invalid_token")
		if strings.Contains(dump(t, s.App.Store.DB(), "org_invitations"), tok2) {
			t.Fatal("an invitation token is stored in plain")
		}
	})
}

func TestInvitationsAreLimited(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.InviteUser = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	ctx := context.Background()
	alice := signup(t, s, "alice@example.com")
	org := createOrg(t, s, alice.AccessToken, "Limited")
	for i, want := range []int{202, 202, 429} {
		r, _ := s.Client.InviteMemberWithResponse(ctx, org.Id, client.InviteMemberJSONRequestBody{Email: client.Email("p" + string(rune('a'+i)) + "@example.com"), Role: client.RoleMember}, testutil.Bearer(alice.AccessToken))
		if r.StatusCode() != want {
			t.Fatalf("invitation %d: %d, want %d", i, r.StatusCode(), want)
		}
	}
}

func TestRefusalsWriteOneEventPerWindow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) {
			c.RateLimits = true
			c.Limits.LoginIP = ratelimit.Rule{Burst: 1, Per: time.Hour}
		})
		signup(t, s, "flood@example.com")
		login(s, "flood@example.com", goodPassword)
		for range 30 {
			if r := login(s, "flood@example.com", goodPassword); r.StatusCode() != http.StatusTooManyRequests {
				t.Fatalf("login: %d", r.StatusCode())
			}
		}
		var n int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM security_events WHERE type = 'rate_limited'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d rate_limited events for 30 refusals in one window, want 1", n)
		}
		s.Clock.Advance(2 * time.Hour)
		login(s, "flood@example.com", goodPassword) // a token again
		login(s, "flood@example.com", goodPassword) // refused: a new window
		var detail string
		if err := s.App.Store.DB().QueryRow(`SELECT detail FROM security_events WHERE type = 'rate_limited' ORDER BY created_at DESC LIMIT 1`).Scan(&detail); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ReplaceAll(detail, " ", ""), `"suppressed":29`) {
			t.Fatalf("the next window's event does not count the suppressed refusals: %s", detail)
		}
	})
}

func TestListsPageAndOwnersHaveQuotas(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.Quotas.APIKeys = 5; c.Quotas.Sessions = 2 })
		ctx := context.Background()
		tok := signup(t, s, "pages@example.com")
		bearer := testutil.Bearer(tok.AccessToken)
		want := map[string]bool{}
		for i := range 5 {
			s.Clock.Advance(time.Millisecond)
			want[createKey(t, s, bearer, "k"+string(rune('0'+i))).Id.String()] = true
		}
		res, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "one too many", Scopes: []string{}}, bearer)
		checkErr(t, "key over the quota", res.StatusCode(), res.Body, 409, "quota_exceeded")
		seen := map[string]bool{}
		two := 2
		params := &client.ListAPIKeysParams{Limit: &two}
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("the pages do not end")
			}
			l, _ := s.Client.ListAPIKeysWithResponse(ctx, params, bearer)
			check(t, "list page", l.StatusCode(), l.Body, 200)
			if len(l.JSON200.ApiKeys) > 2 {
				t.Fatalf("a page of %d", len(l.JSON200.ApiKeys))
			}
			for _, k := range l.JSON200.ApiKeys {
				if seen[k.Id.String()] {
					t.Fatalf("key %s on two pages", k.Id)
				}
				seen[k.Id.String()] = true
			}
			if l.JSON200.NextCursor == nil {
				break
			}
			params.Cursor = l.JSON200.NextCursor
		}
		if len(seen) != len(want) {
			t.Fatalf("pages held %d keys, want %d", len(seen), len(want))
		}
		bad := "not-a-cursor"
		l, _ := s.Client.ListAPIKeysWithResponse(ctx, &client.ListAPIKeysParams{Cursor: &bad}, bearer)
		checkErr(t, "malformed cursor", l.StatusCode(), l.Body, 400, "invalid_request")
		// Sessions: a login over the quota ends the oldest session.
		second := login(s, "pages@example.com", goodPassword).JSON200
		third := login(s, "pages@example.com", goodPassword).JSON200
		if _, st := me(t, s, bearer); st != 401 {
			t.Fatalf("the oldest session over the quota: %d, want 401", st)
		}
		for _, tk := range []*client.TokenResponse{second, third} {
			if _, st := me(t, s, testutil.Bearer(tk.AccessToken)); st != 200 {
				t.Fatalf("a newer session: %d", st)
			}
		}
	})
}

func TestRemovedMembersKeysAreRevoked(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		carol := signup(t, s, "carol@example.com")
		dave := signup(t, s, "dave@example.com")
		org := createOrg(t, s, alice.AccessToken, "Leavers")
		addMember(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)
		addMember(t, s, alice.AccessToken, org.Id, "dave@example.com", client.RoleAdmin)
		ck := createOrgKey(t, s, testutil.Bearer(carol.AccessToken), org.Id, "keys:read")
		dk := createOrgKey(t, s, testutil.Bearer(dave.AccessToken), org.Id, "keys:read")
		if ck.CreatedBy == nil || *ck.CreatedBy != carol.User.Id {
			t.Fatalf("created_by: %+v", ck.CreatedBy)
		}
		byCarol, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, org.Id, &client.ListOrgAPIKeysParams{CreatedBy: &carol.User.Id}, testutil.Bearer(alice.AccessToken))
		if check(t, "keys by creator", byCarol.StatusCode(), byCarol.Body, 200); len(byCarol.JSON200.ApiKeys) != 1 || byCarol.JSON200.ApiKeys[0].Id != ck.Id {
			t.Fatalf("keys by carol: %s", byCarol.Body)
		}
		orgKeyWorks := func(key string) int {
			r, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, org.Id, nil, testutil.APIKey(key))
			return r.StatusCode()
		}
		rm, _ := s.Client.RemoveMemberWithResponse(ctx, org.Id, carol.User.Id, nil, testutil.Bearer(alice.AccessToken))
		check(t, "remove carol", rm.StatusCode(), rm.Body, 204)
		if st := orgKeyWorks(ck.Key); st != 401 {
			t.Fatalf("removed member's key: %d, want 401", st)
		}
		no := false
		rm, _ = s.Client.RemoveMemberWithResponse(ctx, org.Id, dave.User.Id, &client.RemoveMemberParams{RevokeApiKeys: &no}, testutil.Bearer(alice.AccessToken))
		check(t, "remove dave keeping keys", rm.StatusCode(), rm.Body, 204)
		if st := orgKeyWorks(dk.Key); st != 200 {
			t.Fatalf("kept key: %d", st)
		}
		rb, _ := s.Client.RevokeOrgAPIKeysByCreatorWithResponse(ctx, org.Id, client.RevokeOrgAPIKeysByCreatorJSONRequestBody{CreatedBy: dave.User.Id}, testutil.Bearer(alice.AccessToken))
		if check(t, "revoke by creator", rb.StatusCode(), rb.Body, 200); rb.JSON200.Revoked != 1 {
			t.Fatalf("revoked: %s", rb.Body)
		}
		if st := orgKeyWorks(dk.Key); st != 401 {
			t.Fatalf("key revoked by creator: %d", st)
		}
	})
}

func TestExchangeAudiencesAreRegistered(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		bob := signup(t, s, "bob@example.com")
		org := createOrg(t, s, alice.AccessToken, "Aud")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleAdmin)
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, "token:exchange", "billing:read")
		aud := "https://billing.acme.test"
		res := exchange(t, s, client.ExchangeTokenJSONRequestBody{Audience: &aud}, testutil.APIKey(k.Key))
		checkErr(t, "unregistered audience", res.StatusCode(), res.Body, 403, "insufficient_permissions")
		set, _ := s.Client.SetAudiencesWithResponse(ctx, org.Id, client.SetAudiencesJSONRequestBody{Audiences: []string{aud}}, testutil.Bearer(bob.AccessToken))
		checkErr(t, "an admin sets audiences", set.StatusCode(), set.Body, 403, "insufficient_permissions")
		set, _ = s.Client.SetAudiencesWithResponse(ctx, org.Id, client.SetAudiencesJSONRequestBody{Audiences: []string{"has a space"}}, testutil.Bearer(alice.AccessToken))
		checkErr(t, "an audience with spaces", set.StatusCode(), set.Body, 400, "invalid_request")
		set, _ = s.Client.SetAudiencesWithResponse(ctx, org.Id, client.SetAudiencesJSONRequestBody{Audiences: []string{aud}}, testutil.Bearer(alice.AccessToken))
		check(t, "the owner sets audiences", set.StatusCode(), set.Body, 200)
		res = exchange(t, s, client.ExchangeTokenJSONRequestBody{Audience: &aud}, testutil.APIKey(k.Key))
		check(t, "registered audience", res.StatusCode(), res.Body, 200)
		if c := verifyJWT(t, s, res.JSON200.AccessToken, aud); c.OrgID != org.Id.String() {
			t.Fatalf("claims: %+v", c)
		}
		get, _ := s.Client.GetAudiencesWithResponse(ctx, org.Id, testutil.Bearer(bob.AccessToken))
		if check(t, "get audiences", get.StatusCode(), get.Body, 200); len(get.JSON200.Audiences) != 1 {
			t.Fatalf("audiences: %s", get.Body)
		}
	})
}
