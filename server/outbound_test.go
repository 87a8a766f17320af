package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/testutil"
)

// outEvent is an outbound event of the feed, read generically (the
// validating transport has checked it against its type's schema).
type outEvent struct {
	Seq    int64          `json:"seq"`
	Type   string         `json:"type"`
	OrgID  *uuid.UUID     `json:"org_id"`
	UserID *uuid.UUID     `json:"user_id"`
	Data   map[string]any `json:"data"`
}

func outEvents(t *testing.T, page *client.OutboundEventPage) []outEvent {
	t.Helper()
	out := make([]outEvent, len(page.Events))
	for i, e := range page.Events {
		b, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatal(err)
		}
		if i > 0 && out[i].Seq <= out[i-1].Seq {
			t.Fatalf("the feed is not in ascending seq: %s", b)
		}
	}
	return out
}

func types(evs []outEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// opFeed reads the whole feed after after as auth.
func opFeed(t *testing.T, s *testutil.Server, auth client.RequestEditorFn, after int64, filter ...client.OutboundEventType) []outEvent {
	t.Helper()
	p := &client.ListOutboundEventsParams{After: &after}
	if filter != nil {
		p.Types = &filter
	}
	res, err := s.Client.ListOutboundEventsWithResponse(context.Background(), p, auth)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "events feed", res.StatusCode(), res.Body, http.StatusOK)
	return outEvents(t, res.JSON200)
}

// TestOutboundEventsFeed: operators read every event through an aal2
// session or a key with admin:events:read; nobody else does. Each change
// of the API shows as its event, with its user and organization; a refresh
// and /auth/me add none. An organization's owners and admins (and its keys
// with events:read) read its events only; members and outsiders do not.
func TestOutboundEventsFeed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.OperatorEmails = []string{"op@company.test"} })
		ctx := context.Background()
		op := signup(t, s, "op@company.test")
		alice := signup(t, s, "alice@example.com")
		refused := func(what, tok string) {
			t.Helper()
			res, err := s.Client.ListOutboundEventsWithResponse(ctx, nil, testutil.Bearer(tok))
			if err != nil {
				t.Fatal(err)
			}
			check(t, "the feed for "+what, res.StatusCode(), res.Body, http.StatusForbidden)
		}
		refused("a user", alice.AccessToken)
		_, en := enrollTOTP(t, s, op.AccessToken)
		opAuth := testutil.Bearer(en.Tokens.AccessToken)
		// An operator with a second factor needs it (aal2).
		refused("an operator at aal1", login(s, "op@company.test", goodPassword).JSON200.AccessToken)
		all := opFeed(t, s, opAuth, 0)
		if got := types(all); !slices.Equal(got, []string{"user.created", "session.created", "user.created", "session.created", "mfa.factor.added", "session.created"}) {
			t.Fatalf("events so far: %v", got)
		}
		if *all[2].UserID != alice.User.Id || all[2].Data["email"] != "alice@example.com" || all[4].Data["factor_type"] != "totp" {
			t.Fatalf("events: %+v", all)
		}
		last := all[len(all)-1].Seq

		// A refresh and /auth/me write nothing; a logout revokes.
		ref, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: alice.RefreshToken})
		check(t, "refresh", ref.StatusCode(), ref.Body, http.StatusOK)
		me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(ref.JSON200.AccessToken))
		check(t, "me", me.StatusCode(), me.Body, http.StatusOK)
		if evs := opFeed(t, s, opAuth, last); len(evs) != 0 {
			t.Fatalf("a refresh and /auth/me emitted %v", types(evs))
		}
		// Presenting the spent refresh token again, past the grace window of
		// a replay, is reuse: the session goes.
		s.Clock.Advance(time.Minute)
		reuse, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: alice.RefreshToken})
		if reuse.StatusCode() == http.StatusOK {
			t.Fatalf("reuse answered 200: %s", reuse.Body)
		}
		evs := opFeed(t, s, opAuth, last)
		if len(evs) != 1 || evs[0].Type != "session.revoked" || evs[0].Data["reason"] != "reuse_detected" || *evs[0].UserID != alice.User.Id {
			t.Fatalf("reuse: %+v", evs)
		}
		last = evs[0].Seq

		// An organization: its owner joins, a member is invited and joins.
		alice = signup(t, s, "alice2@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		signup(t, s, "bob@example.com")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		evs = opFeed(t, s, opAuth, last, client.OutOrgMemberAdded, client.OutInvitationCreated)
		if got := types(evs); !slices.Equal(got, []string{"organization.member.added", "invitation.created", "organization.member.added"}) {
			t.Fatalf("organization events: %v", got)
		}
		for _, e := range evs {
			if e.OrgID == nil || *e.OrgID != org.Id {
				t.Fatalf("an organization's event without it: %+v", e)
			}
		}
		orgFeed := func(auth client.RequestEditorFn, id uuid.UUID) *client.ListOrgOutboundEventsResponse {
			res, err := s.Client.ListOrgOutboundEventsWithResponse(ctx, id, nil, auth)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := orgFeed(testutil.Bearer(alice.AccessToken), org.Id)
		check(t, "the owner's organization feed", res.StatusCode(), res.Body, http.StatusOK)
		own := outEvents(t, res.JSON200)
		if got := types(own); !slices.Equal(got, []string{"organization.member.added", "invitation.created", "organization.member.added"}) {
			t.Fatalf("the organization's feed: %v", got)
		}
		if res.JSON200.NextCursor != own[2].Seq || res.JSON200.HasMore {
			t.Fatalf("the organization's feed: next %d more %v", res.JSON200.NextCursor, res.JSON200.HasMore)
		}
		bob := login(s, "bob@example.com", goodPassword).JSON200
		res = orgFeed(testutil.Bearer(bob.AccessToken), org.Id)
		checkErr(t, "a member's organization feed", res.StatusCode(), res.Body, http.StatusForbidden, "insufficient_permissions")
		res = orgFeed(testutil.Bearer(op.AccessToken), org.Id)
		check(t, "an outsider's organization feed", res.StatusCode(), res.Body, http.StatusNotFound)
		// Through the operator's feed, filtered by organization.
		filtered, _ := s.Client.ListOutboundEventsWithResponse(ctx, &client.ListOutboundEventsParams{OrgId: &org.Id}, opAuth)
		check(t, "the feed of one organization", filtered.StatusCode(), filtered.Body, http.StatusOK)
		if n := len(filtered.JSON200.Events); n != 3 {
			t.Fatalf("the operator's feed of the organization has %d events", n)
		}

		// Keys: an organization key with events:read reads its feed; an
		// operator's personal key with admin:events:read the whole feed.
		_, aliceMFA := enrollTOTP(t, s, alice.AccessToken)
		ok := createOrgKey(t, s, testutil.Bearer(aliceMFA.Tokens.AccessToken), org.Id, "events:read")
		res = orgFeed(testutil.APIKey(ok.Key), org.Id)
		check(t, "the organization key's feed", res.StatusCode(), res.Body, http.StatusOK)
		opKey := createKey(t, s, opAuth, "feed", "admin:events:read")
		page, _ := s.Client.ListOutboundEventsWithResponse(ctx, &client.ListOutboundEventsParams{Limit: ptr(2)}, testutil.APIKey(opKey.Key))
		check(t, "the operator key's feed", page.StatusCode(), page.Body, http.StatusOK)
		if len(page.JSON200.Events) != 2 || !page.JSON200.HasMore || page.JSON200.NextCursor != all[1].Seq {
			t.Fatalf("a page of two: %s", page.Body)
		}
		plain := createKey(t, s, testutil.Bearer(aliceMFA.Tokens.AccessToken), "x", "sessions:read")
		denied, _ := s.Client.ListOutboundEventsWithResponse(ctx, nil, testutil.APIKey(plain.Key))
		check(t, "a user's key", denied.StatusCode(), denied.Body, http.StatusForbidden)
		created := opFeed(t, s, opAuth, 0, client.OutAPIKeyCreated)
		if len(created) != 3 {
			t.Fatalf("api_key.created: %+v", created)
		}
		for _, e := range created {
			if _, ok := e.Data["prefix"].(string); !ok {
				t.Fatalf("api_key.created without its prefix: %+v", e)
			}
		}
	})
}

// storeFeed returns the events after after, as the store keeps them.
func storeFeed(t *testing.T, s *testutil.Server, after int64) []domain.OutboundEvent {
	t.Helper()
	evs, err := s.App.Store.ListOutboundEvents(context.Background(), domain.OutboundFilter{After: after, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// expectOut checks that do emits exactly the events of the types, in
// order, and returns them.
func expectOut(t *testing.T, s *testutil.Server, do func(), want ...string) []domain.OutboundEvent {
	t.Helper()
	before := int64(0)
	if evs := storeFeed(t, s, 0); len(evs) > 0 {
		before = evs[len(evs)-1].Seq
	}
	do()
	evs := storeFeed(t, s, before)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v: %+v", got, want, evs)
	}
	return evs
}

// TestOutboundEventsOfCredentialChanges: an email verification, a
// password change, a reset and second factors emit their events, in the
// transaction of the change, with the reason of what they revoked.
func TestOutboundEventsOfCredentialChanges(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		box := &mailbox{}
		eve := signupUnverified(t, s, "eve@example.com")
		msgs := flush(t, s, box)
		if len(msgs) != 1 {
			t.Fatalf("%d mails", len(msgs))
		}
		evs := expectOut(t, s, func() {
			if r := verify(s, tokenIn(t, msgs[0])); r.StatusCode() != http.StatusOK && r.StatusCode() != http.StatusNoContent {
				t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
			}
		}, "email.verified")
		if *evs[0].UserID != eve.User.Id || evs[0].Data["email"] != "eve@example.com" {
			t.Fatalf("email.verified = %+v", evs[0])
		}

		here := signup(t, s, "carol@example.com")
		there := login(s, "carol@example.com", goodPassword).JSON200
		evs = expectOut(t, s, func() {
			if r := change(s, here.AccessToken, goodPassword, newPassword); r.StatusCode() != http.StatusNoContent {
				t.Fatalf("change: %d %s", r.StatusCode(), r.Body)
			}
		}, "session.revoked")
		if evs[0].Data["reason"] != "password_changed" || !slices.Equal(anyStrings(evs[0].Data["session_ids"]), []string{there.SessionId.String()}) {
			t.Fatalf("session.revoked = %+v", evs[0].Data)
		}
		// A failed change (a wrong current password) emits nothing.
		expectOut(t, s, func() { change(s, here.AccessToken, "not my password", goodPassword) })

		flush(t, s, box)
		tok := resetMail(t, s, box, "carol@example.com")
		evs = expectOut(t, s, func() {
			if r := reset(s, tok, goodPassword); r.StatusCode() != http.StatusOK && r.StatusCode() != http.StatusNoContent {
				t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
			}
		}, "password.reset", "session.revoked")
		if evs[0].Data["sessions_revoked"] != float64(1) || evs[1].Data["reason"] != "password_reset" {
			t.Fatalf("reset events = %+v", evs)
		}
		// The link is spent: a second use emits nothing.
		expectOut(t, s, func() { reset(s, tok, newPassword) })

		// A factor added, then removed (which signs the others out).
		carol := login(s, "carol@example.com", goodPassword).JSON200
		var en *client.MFAEnrollment
		evs = expectOut(t, s, func() { _, en = enrollTOTP(t, s, carol.AccessToken) }, "mfa.factor.added")
		if evs[0].Data["factor_id"] != en.Factor.Id.String() || evs[0].Data["factor_type"] != "totp" {
			t.Fatalf("mfa.factor.added = %+v", evs[0].Data)
		}
		login(s, "carol@example.com", goodPassword)
		evs = expectOut(t, s, func() {
			r, err := s.Client.DeleteMFAFactorWithResponse(ctx, en.Factor.Id, testutil.Bearer(en.Tokens.AccessToken))
			if err != nil || r.StatusCode() != http.StatusNoContent {
				t.Fatalf("delete factor: %v %d %s", err, r.StatusCode(), r.Body)
			}
		}, "mfa.factor.removed", "session.revoked")
		if evs[0].Data["factor_id"] != en.Factor.Id.String() || evs[0].Data["verified_factors_left"] != float64(0) {
			t.Fatalf("mfa.factor.removed = %+v", evs[0].Data)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			out = append(out, x.(string))
		}
	}
	return out
}

// A role change and the end of invitations reach the feed, each payload as
// the spec declares it (the test client validates every response): the
// role's change with the previous role, an invitation revoked by its
// organization, and those the inviter's new role no longer grants, listed
// in one event.
func TestOutboundEventsOfRolesAndInvitations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.OperatorEmails = []string{"op@company.test"} })
		ctx := context.Background()
		op := signup(t, s, "op@company.test")
		opAuth := testutil.Bearer(op.AccessToken)
		alice := signup(t, s, "alice@example.com")
		bob := signup(t, s, "bob@example.com")
		org := createOrg(t, s, alice.AccessToken, "Acme")
		addMember(t, s, alice.AccessToken, org.Id, "bob@example.com", client.RoleMember)
		last := opFeed(t, s, opAuth, 0)
		after := last[len(last)-1].Seq
		setRole := func(r client.Role) {
			t.Helper()
			up, err := s.Client.UpdateMemberWithResponse(ctx, org.Id, bob.User.Id, client.UpdateMemberJSONRequestBody{Role: r}, testutil.Bearer(alice.AccessToken))
			if err != nil {
				t.Fatal(err)
			}
			check(t, "role change", up.StatusCode(), up.Body, http.StatusOK)
		}
		setRole(client.RoleAdmin)
		invite(t, s, alice.AccessToken, org.Id, "carol@example.com", client.RoleMember)
		bobTok := login(s, "bob@example.com", goodPassword).JSON200.AccessToken
		invite(t, s, bobTok, org.Id, "dave@example.com", client.RoleMember)
		pending, err := s.Client.ListInvitationsWithResponse(ctx, org.Id, nil, testutil.Bearer(alice.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "invitations", pending.StatusCode(), pending.Body, http.StatusOK)
		var carol, dave uuid.UUID
		for _, inv := range pending.JSON200.Invitations {
			switch string(inv.Email) {
			case "carol@example.com":
				carol = inv.Id
			case "dave@example.com":
				dave = inv.Id
			}
		}
		rv, err := s.Client.RevokeInvitationWithResponse(ctx, org.Id, carol, testutil.Bearer(alice.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "revoke invitation", rv.StatusCode(), rv.Body, http.StatusNoContent)
		setRole(client.RoleMember) // a member invites nobody: dave's invitation ends
		setRole(client.RoleMember) // the same role: nothing happens

		evs := opFeed(t, s, opAuth, after, client.OutOrgMemberUpdated, client.OutInvitationCreated, client.OutInvitationRevoked)
		if got := types(evs); !slices.Equal(got, []string{"organization.member.updated", "invitation.created", "invitation.created",
			"invitation.revoked", "organization.member.updated", "invitation.revoked"}) {
			t.Fatalf("events: %v", got)
		}
		for _, e := range evs {
			if e.OrgID == nil || *e.OrgID != org.Id {
				t.Fatalf("an organization's event without it: %+v", e)
			}
		}
		if evs[0].Data["previous_role"] != "member" || evs[0].Data["role"] != "admin" || *evs[0].UserID != bob.User.Id ||
			evs[4].Data["previous_role"] != "admin" || evs[4].Data["role"] != "member" {
			t.Fatalf("role changes: %+v %+v", evs[0], evs[4])
		}
		for i, want := range map[int]struct {
			id     uuid.UUID
			reason string
		}{3: {carol, "revoked"}, 5: {dave, "inviter_role_changed"}} {
			invs, _ := evs[i].Data["invitations"].([]any)
			inv, _ := invs[0].(map[string]any)
			if evs[i].Data["reason"] != want.reason || len(invs) != 1 || inv["invitation_id"] != want.id.String() {
				t.Fatalf("invitation.revoked = %+v, want %s %s", evs[i], want.id, want.reason)
			}
		}
	})
}
