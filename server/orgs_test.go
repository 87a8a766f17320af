package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/testutil"
)

func createOrg(t *testing.T, s *testutil.Server, tok, name string) *client.Organization {
	t.Helper()
	res, err := s.Client.CreateOrganizationWithResponse(context.Background(), client.CreateOrganizationJSONRequestBody{Name: name}, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "create organization", res.StatusCode(), res.Body, http.StatusCreated)
	return res.JSON201
}

// addMember makes the account with email (and goodPassword) a member the
// only way there is: the inviter (tok) invites it, the invitation mail is
// delivered, and the invitee accepts its link while signed in.
func addMember(t *testing.T, s *testutil.Server, tok string, org uuid.UUID, email string, role client.Role) {
	t.Helper()
	inviteTok := invite(t, s, tok, org, email, role)
	res, err := s.Client.AcceptInvitationWithResponse(context.Background(), client.AcceptInvitationJSONRequestBody{Token: inviteTok},
		testutil.Bearer(login(s, email, goodPassword).JSON200.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "accept invitation", res.StatusCode(), res.Body, http.StatusOK)
}

// invite invites email to org as role and returns the token of the link in
// the invitation mail.
func invite(t *testing.T, s *testutil.Server, tok string, org uuid.UUID, email string, role client.Role) string {
	t.Helper()
	res, err := s.Client.InviteMemberWithResponse(context.Background(), org, client.InviteMemberJSONRequestBody{Email: client.Email(email), Role: role}, testutil.Bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "invite", res.StatusCode(), res.Body, http.StatusAccepted)
	box := &mailbox{}
	var found []*mail.Message
	for _, m := range flush(t, s, box) {
		if m.To == email && strings.Contains(m.Subject, "invited") {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d invitation mails to %s", len(found), email)
	}
	return tokenIn(t, found[0])
}

func createOrgKey(t *testing.T, s *testutil.Server, auth client.RequestEditorFn, org uuid.UUID, scopes ...string) *client.APIKeyWithSecret {
	t.Helper()
	if scopes == nil {
		scopes = []string{}
	}
	res, err := s.Client.CreateOrgAPIKeyWithResponse(context.Background(), org, client.CreateOrgAPIKeyJSONRequestBody{Label: "org key", Scopes: scopes}, auth)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "create organization key", res.StatusCode(), res.Body, http.StatusCreated)
	return res.JSON201
}

func TestOrgMembersAndRoles(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		bob := signup(t, s, "bob@example.com")
		carol := signup(t, s, "carol@example.com")
		dave := signup(t, s, "dave@example.com")
		org := createOrg(t, s, alice.AccessToken, " Acme ")
		if org.Name != "Acme" || org.Role != client.RoleOwner {
			t.Fatalf("org: %+v", org)
		}
		list, _ := s.Client.ListOrganizationsWithResponse(ctx, nil, testutil.Bearer(alice.AccessToken))
		if check(t, "list orgs", list.StatusCode(), list.Body, 200); len(list.JSON200.Organizations) != 1 || list.JSON200.Organizations[0].Id != org.Id {
			t.Fatalf("list: %s", list.Body)
		}
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		addMember(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)

		again := invite(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleAdmin)
		acc, _ := s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: again}, testutil.Bearer(bob.AccessToken))
		checkErr(t, "accept as a member already", acc.StatusCode(), acc.Body, 409, "conflict")
		// An address without an account gets the same 202 (and a mail): an
		// invitation tells nobody who is registered.
		invite(t, s, alice.AccessToken, org.Id, "nobody@example.com", client.RoleMember)

		// Members read; only owners and admins manage.
		ms, _ := s.Client.ListMembersWithResponse(ctx, org.Id, nil, testutil.Bearer(bob.AccessToken))
		if check(t, "member lists members", ms.StatusCode(), ms.Body, 200); len(ms.JSON200.Members) != 3 {
			t.Fatalf("members: %s", ms.Body)
		}
		bg, _ := s.Client.GetOrganizationWithResponse(ctx, org.Id, testutil.Bearer(bob.AccessToken))
		if check(t, "member gets org", bg.StatusCode(), bg.Body, 200); bg.JSON200.Role != client.RoleMember {
			t.Fatalf("bob's role: %s", bg.Body)
		}
		am, _ := s.Client.InviteMemberWithResponse(ctx, org.Id, client.InviteMemberJSONRequestBody{Email: "dave@example.com", Role: client.RoleMember}, testutil.Bearer(bob.AccessToken))
		checkErr(t, "member invites", am.StatusCode(), am.Body, 403, "insufficient_permissions")
		up, _ := s.Client.UpdateMemberWithResponse(ctx, org.Id, bob.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleAdmin}, testutil.Bearer(bob.AccessToken))
		checkErr(t, "member promotes self", up.StatusCode(), up.Body, 403, "insufficient_permissions")

		// Admins manage members and admins, never owners.
		addMember(t, s, carol.AccessToken, org.Id, "dave@example.com", client.RoleMember)
		am, _ = s.Client.InviteMemberWithResponse(ctx, org.Id, client.InviteMemberJSONRequestBody{Email: "dave@example.com", Role: client.RoleOwner}, testutil.Bearer(carol.AccessToken))
		checkErr(t, "admin invites owner", am.StatusCode(), am.Body, 403, "insufficient_permissions")
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, dave.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleOwner}, testutil.Bearer(carol.AccessToken))
		checkErr(t, "admin makes owner", up.StatusCode(), up.Body, 403, "insufficient_permissions")
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, alice.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleMember}, testutil.Bearer(carol.AccessToken))
		checkErr(t, "admin demotes owner", up.StatusCode(), up.Body, 403, "insufficient_permissions")
		rm, _ := s.Client.RemoveMemberWithResponse(ctx, org.Id, alice.User.Id, nil, testutil.Bearer(carol.AccessToken))
		checkErr(t, "admin removes owner", rm.StatusCode(), rm.Body, 403, "insufficient_permissions")
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, dave.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleAdmin}, testutil.Bearer(carol.AccessToken))
		if check(t, "admin promotes member", up.StatusCode(), up.Body, 200); up.JSON200.Role != client.RoleAdmin || up.JSON200.Email == nil {
			t.Fatalf("member: %s", up.Body)
		}
		rm, _ = s.Client.RemoveMemberWithResponse(ctx, org.Id, dave.User.Id, nil, testutil.Bearer(carol.AccessToken))
		check(t, "admin removes admin", rm.StatusCode(), rm.Body, 204)
		rm, _ = s.Client.RemoveMemberWithResponse(ctx, org.Id, dave.User.Id, nil, testutil.Bearer(carol.AccessToken))
		checkErr(t, "remove a non-member", rm.StatusCode(), rm.Body, 404, "not_found")

		// The last owner can neither be demoted nor leave.
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, alice.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleAdmin}, testutil.Bearer(alice.AccessToken))
		checkErr(t, "demote the last owner", up.StatusCode(), up.Body, 409, "last_owner")
		rm, _ = s.Client.RemoveMemberWithResponse(ctx, org.Id, alice.User.Id, nil, testutil.Bearer(alice.AccessToken))
		checkErr(t, "last owner leaves", rm.StatusCode(), rm.Body, 409, "last_owner")
		// With a second owner, the first may go.
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, carol.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleOwner}, testutil.Bearer(alice.AccessToken))
		check(t, "owner makes owner", up.StatusCode(), up.Body, 200)
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, alice.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleMember}, testutil.Bearer(alice.AccessToken))
		check(t, "owner steps down", up.StatusCode(), up.Body, 200)
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, carol.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleAdmin}, testutil.Bearer(carol.AccessToken))
		checkErr(t, "demote the new last owner", up.StatusCode(), up.Body, 409, "last_owner")
		// Any member may leave.
		rm, _ = s.Client.RemoveMemberWithResponse(ctx, org.Id, bob.User.Id, nil, testutil.Bearer(bob.AccessToken))
		check(t, "member leaves", rm.StatusCode(), rm.Body, 204)
		bg, _ = s.Client.GetOrganizationWithResponse(ctx, org.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "former member", bg.StatusCode(), bg.Body, 404, "not_found")

		// Organizations are for users' own sessions.
		k := createKey(t, s, testutil.Bearer(alice.AccessToken), "k", "keys:read")
		lo, _ := s.Client.ListOrganizationsWithResponse(ctx, nil, testutil.APIKey(k.Key))
		checkErr(t, "list orgs with a key", lo.StatusCode(), lo.Body, 401, "unauthorized")
	})
}

// TestOrgCrossOrganizationIsNotFound checks that another organization's
// resources answer exactly like resources that do not exist.
func TestOrgCrossOrganizationIsNotFound(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		mallory := signup(t, s, "mallory@example.com")
		a := createOrg(t, s, alice.AccessToken, "Hidden Acme")
		m := createOrg(t, s, mallory.AccessToken, "M")
		aKey := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), a.Id, "keys:read", "keys:write", "sessions:read", "sessions:write", "token:exchange")
		mKey := createOrgKey(t, s, testutil.Bearer(mallory.AccessToken), m.Id, "keys:read", "keys:write", "sessions:read", "sessions:write")
		mPersonal := createKey(t, s, testutil.Bearer(mallory.AccessToken), "p", "keys:read", "keys:write", "sessions:read", "sessions:write")
		if !strings.HasPrefix(aKey.Key, "latch_o_") || aKey.OrgId == nil || *aKey.OrgId != a.Id || aKey.UserId != nil {
			t.Fatalf("org key: %+v", aKey)
		}

		type probe struct {
			name string
			// sessionOnly operations refuse every API key before they look
			// at the organization.
			sessionOnly bool
			do          func(org, key uuid.UUID, auth client.RequestEditorFn) (int, []byte)
		}
		probes := []probe{
			{"get org", true, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.GetOrganizationWithResponse(ctx, org, auth)
				return r.StatusCode(), r.Body
			}},
			{"list members", true, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.ListMembersWithResponse(ctx, org, nil, auth)
				return r.StatusCode(), r.Body
			}},
			{"invite member", true, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.InviteMemberWithResponse(ctx, org, client.InviteMemberJSONRequestBody{Email: "mallory@example.com", Role: client.RoleOwner}, auth)
				return r.StatusCode(), r.Body
			}},
			{"list keys", false, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, org, nil, auth)
				return r.StatusCode(), r.Body
			}},
			{"create key", false, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org, client.CreateOrgAPIKeyJSONRequestBody{Label: "x", Scopes: []string{}}, auth)
				return r.StatusCode(), r.Body
			}},
			{"get key", false, func(org, key uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.GetOrgAPIKeyWithResponse(ctx, org, key, auth)
				return r.StatusCode(), r.Body
			}},
			{"revoke key", false, func(org, key uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.RevokeOrgAPIKeyWithResponse(ctx, org, key, auth)
				return r.StatusCode(), r.Body
			}},
			{"roll key", false, func(org, key uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.RollOrgAPIKeyWithResponse(ctx, org, key, client.RollOrgAPIKeyJSONRequestBody{}, auth)
				return r.StatusCode(), r.Body
			}},
			{"list sessions", false, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.ListOrgSessionsWithResponse(ctx, org, nil, auth)
				return r.StatusCode(), r.Body
			}},
			{"revoke session", false, func(org, _ uuid.UUID, auth client.RequestEditorFn) (int, []byte) {
				r, _ := s.Client.RevokeOrgSessionWithResponse(ctx, org, alice.SessionId, auth)
				return r.StatusCode(), r.Body
			}},
		}
		callers := map[string]client.RequestEditorFn{
			"mallory's session":      testutil.Bearer(mallory.AccessToken),
			"mallory's org key":      testutil.APIKey(mKey.Key),
			"mallory's personal key": testutil.APIKey(mPersonal.Key),
		}
		for _, p := range probes {
			for who, auth := range callers {
				if p.sessionOnly && who != "mallory's session" {
					continue
				}
				st, body := p.do(a.Id, aKey.Id, auth)
				_, msg := check(t, p.name+" in A by "+who, st, body, 404)
				// A missing organization answers the same.
				st2, body2 := p.do(uuid.New(), uuid.New(), auth)
				_, msg2 := check(t, p.name+" in nowhere by "+who, st2, body2, 404)
				if msg != msg2 || strings.Contains(string(body), "Hidden") {
					t.Fatalf("%s by %s: %q differs from %q", p.name, who, msg, msg2)
				}
			}
		}
		// A's key through M's path is not M's key.
		r, _ := s.Client.GetOrgAPIKeyWithResponse(ctx, m.Id, aKey.Id, testutil.Bearer(mallory.AccessToken))
		checkErr(t, "A's key under M", r.StatusCode(), r.Body, 404, "not_found")
		// A's own key still works in A.
		lk, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, a.Id, nil, testutil.APIKey(aKey.Key))
		if check(t, "A's key lists A's keys", lk.StatusCode(), lk.Body, 200); len(lk.JSON200.ApiKeys) != 1 {
			t.Fatalf("keys: %s", lk.Body)
		}
		// An org key has no personal keys.
		pl, _ := s.Client.ListAPIKeysWithResponse(ctx, nil, testutil.APIKey(aKey.Key))
		checkErr(t, "org key on personal keys", pl.StatusCode(), pl.Body, 403, "insufficient_permissions")
	})
}

func TestOrgAPIKeysAndRoleCaps(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		bob := signup(t, s, "bob@example.com")
		carol := signup(t, s, "carol@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		addMember(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)

		all := []string{"token:exchange", "sessions:write", "sessions:read", "keys:read", "keys:write", "billing:read"}
		k := createOrgKey(t, s, testutil.Bearer(alice.AccessToken), org.Id, all...)
		createOrgKey(t, s, testutil.Bearer(carol.AccessToken), org.Id, all...)

		create := func(auth client.RequestEditorFn, scopes ...string) (int, []byte) {
			if scopes == nil {
				scopes = []string{}
			}
			r, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.Id, client.CreateOrgAPIKeyJSONRequestBody{Label: "x", Scopes: scopes}, auth)
			return r.StatusCode(), r.Body
		}
		// No role holds users:read in an organization.
		st, body := create(testutil.Bearer(alice.AccessToken), "users:read")
		if msg := checkErr(t, "owner grants users:read", st, body, 403, "insufficient_permissions"); !strings.Contains(msg, "users:read") {
			t.Fatalf("message %q", msg)
		}
		// A member reads but creates nothing.
		st, body = create(testutil.Bearer(bob.AccessToken))
		if msg := checkErr(t, "member creates a key", st, body, 403, "insufficient_permissions"); !strings.Contains(msg, "keys:write") {
			t.Fatalf("message %q", msg)
		}
		lk, _ := s.Client.ListOrgAPIKeysWithResponse(ctx, org.Id, nil, testutil.Bearer(bob.AccessToken))
		if check(t, "member lists keys", lk.StatusCode(), lk.Body, 200); len(lk.JSON200.ApiKeys) != 2 || strings.Contains(string(lk.Body), k.Key[12:]) {
			t.Fatalf("keys: %s", lk.Body)
		}
		rv, _ := s.Client.RevokeOrgAPIKeyWithResponse(ctx, org.Id, k.Id, testutil.Bearer(bob.AccessToken))
		checkErr(t, "member revokes", rv.StatusCode(), rv.Body, 403, "insufficient_permissions")
		// An organization key grants what it holds, and no more.
		st, body = create(testutil.APIKey(k.Key), "sessions:read", "billing:read")
		check(t, "org key creates a smaller key", st, body, 201)
		st, body = create(testutil.APIKey(k.Key), "billing:write")
		checkErr(t, "org key escalates", st, body, 403, "insufficient_permissions")
		// A personal key in an organization holds what both its scopes and
		// its user's role allow.
		bobKey := createKey(t, s, testutil.Bearer(bob.AccessToken), "bob", "keys:write", "keys:read")
		st, body = create(testutil.APIKey(bobKey.Key))
		checkErr(t, "member's personal key creates", st, body, 403, "insufficient_permissions")
		aliceKey := createKey(t, s, testutil.Bearer(alice.AccessToken), "alice", "keys:write", "sessions:read")
		st, body = create(testutil.APIKey(aliceKey.Key), "sessions:read")
		check(t, "owner's personal key creates within its scopes", st, body, 201)
		st, body = create(testutil.APIKey(aliceKey.Key), "sessions:write")
		checkErr(t, "owner's personal key escalates", st, body, 403, "insufficient_permissions")

		// Roll and revoke.
		hour := 3600
		rl, _ := s.Client.RollOrgAPIKeyWithResponse(ctx, org.Id, k.Id, client.RollOrgAPIKeyJSONRequestBody{OverlapSeconds: &hour}, testutil.Bearer(carol.AccessToken))
		if check(t, "admin rolls", rl.StatusCode(), rl.Body, 201); !strings.HasPrefix(rl.JSON201.Key, "latch_o_") || rl.JSON201.OrgId == nil || *rl.JSON201.OrgId != org.Id {
			t.Fatalf("rolled: %s", rl.Body)
		}
		rv, _ = s.Client.RevokeOrgAPIKeyWithResponse(ctx, org.Id, rl.JSON201.Id, testutil.APIKey(k.Key))
		check(t, "org key revokes its successor", rv.StatusCode(), rv.Body, 204)
		lk, _ = s.Client.ListOrgAPIKeysWithResponse(ctx, org.Id, nil, testutil.APIKey(rl.JSON201.Key))
		checkErr(t, "revoked successor", lk.StatusCode(), lk.Body, 401, "invalid_token")
		gk, _ := s.Client.GetOrgAPIKeyWithResponse(ctx, org.Id, k.Id, testutil.Bearer(alice.AccessToken))
		if check(t, "get rolled key", gk.StatusCode(), gk.Body, 200); gk.JSON200.ExpiresAt == nil {
			t.Fatalf("a key rolled with an overlap has no expiry: %s", gk.Body)
		}
	})
}

// TestInvitationsFollowTheirSendersAuthority: an admin's pending
// invitations die with their power to grant them (demotion, removal), and
// accepting needs a verified address.
func TestInvitationsFollowTheirSendersAuthority(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		alice := signup(t, s, "alice@example.com")
		carol := signup(t, s, "carol@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		addMember(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleAdmin)
		accept := func(tok, bearer string) *client.AcceptInvitationResponse {
			t.Helper()
			r, err := s.Client.AcceptInvitationWithResponse(ctx, client.AcceptInvitationJSONRequestBody{Token: tok}, testutil.Bearer(bearer))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		pendingFor := func() map[string]bool {
			t.Helper()
			li, _ := s.Client.ListInvitationsWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
			check(t, "list invitations", li.StatusCode(), li.Body, 200)
			out := map[string]bool{}
			for _, inv := range li.JSON200.Invitations {
				out[string(inv.Email)] = true
			}
			return out
		}

		// Carol, an admin, invites; demoted to member she can grant nothing,
		// and her invitations are revoked with the demotion.
		toDave := invite(t, s, carol.AccessToken, org.Id, "dave@example.com", client.RoleMember)
		toErin := invite(t, s, carol.AccessToken, org.Id, "erin@example.com", client.RoleAdmin)
		invite(t, s, alice.AccessToken, org.Id, "zoe@example.com", client.RoleMember)
		up, _ := s.Client.UpdateMemberWithResponse(ctx, org.Id, carol.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleMember}, testutil.Bearer(alice.AccessToken))
		check(t, "demote carol", up.StatusCode(), up.Body, 200)
		if p := pendingFor(); p["dave@example.com"] || p["erin@example.com"] || !p["zoe@example.com"] {
			t.Fatalf("pending after carol's demotion: %v", p)
		}
		dave := signup(t, s, "dave@example.com")
		r := accept(toDave, dave.AccessToken)
		checkErr(t, "accept a demoted admin's invitation", r.StatusCode(), r.Body, 400, "invalid_token")
		erin := signup(t, s, "erin@example.com")
		r = accept(toErin, erin.AccessToken)
		checkErr(t, "accept a demoted admin's admin invitation", r.StatusCode(), r.Body, 400, "invalid_token")

		// Promoted again, she invites; removed, her invitation dies.
		up, _ = s.Client.UpdateMemberWithResponse(ctx, org.Id, carol.User.Id, client.UpdateMemberJSONRequestBody{Role: client.RoleAdmin}, testutil.Bearer(alice.AccessToken))
		check(t, "promote carol", up.StatusCode(), up.Body, 200)
		toDave = invite(t, s, carol.AccessToken, org.Id, "dave@example.com", client.RoleMember)
		rm, _ := s.Client.RemoveMemberWithResponse(ctx, org.Id, carol.User.Id, nil, testutil.Bearer(alice.AccessToken))
		check(t, "remove carol", rm.StatusCode(), rm.Body, 204)
		if p := pendingFor(); p["dave@example.com"] {
			t.Fatalf("a removed admin's invitation is pending: %v", p)
		}
		r = accept(toDave, dave.AccessToken)
		checkErr(t, "accept a removed admin's invitation", r.StatusCode(), r.Body, 400, "invalid_token")
		ms, _ := s.Client.ListMembersWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		if check(t, "members", ms.StatusCode(), ms.Body, 200); len(ms.JSON200.Members) != 1 {
			t.Fatalf("members: %s", ms.Body)
		}

		// An unverified address cannot accept; verified, it can.
		toGina := invite(t, s, alice.AccessToken, org.Id, "gina@example.com", client.RoleMember)
		gina := signupUnverified(t, s, "gina@example.com")
		r = accept(toGina, gina.AccessToken)
		checkErr(t, "accept with an unverified address", r.StatusCode(), r.Body, 403, "email_not_verified")
		s.MarkVerified(t, "gina@example.com")
		r = accept(toGina, gina.AccessToken)
		if check(t, "accept once verified", r.StatusCode(), r.Body, 200); r.JSON200.Role != client.RoleMember {
			t.Fatalf("joined: %s", r.Body)
		}
	})
}
