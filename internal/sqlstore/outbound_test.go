package sqlstore_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// feed returns every outbound event after seq after.
func feed(t *testing.T, s *sqlstore.Store, after int64) []domain.OutboundEvent {
	t.Helper()
	evs, err := s.ListOutboundEvents(context.Background(), domain.OutboundFilter{After: after, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// lastSeq is the seq of the newest event (0 for none).
func lastSeq(t *testing.T, s *sqlstore.Store) int64 {
	t.Helper()
	evs := feed(t, s, 0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// expectEvents checks that the change that do makes emits exactly the
// events of the types, in order, and returns them. No payload holds a
// secret of the test (hashes, tokens) or anything named like one.
func expectEvents(t *testing.T, s *sqlstore.Store, do func() error, types ...string) []domain.OutboundEvent {
	t.Helper()
	before := lastSeq(t, s)
	if err := do(); err != nil {
		t.Fatal(err)
	}
	evs := feed(t, s, before)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type)
		b, _ := json.Marshal(e.Data)
		for _, secret := range []string{"argon2", "hash", "token", "secret", "code"} {
			if strings.Contains(strings.ToLower(string(b)), secret) {
				t.Errorf("%s carries %q: %s", e.Type, secret, b)
			}
		}
		if e.Seq <= before || e.ID == uuid.Nil || e.CreatedAt.IsZero() {
			t.Errorf("%s: seq %d id %s at %v", e.Type, e.Seq, e.ID, e.CreatedAt)
		}
	}
	if strings.Join(got, ",") != strings.Join(types, ",") {
		t.Fatalf("events %v, want %v", got, types)
	}
	return evs
}

// expectNoEvent checks that do fails with the code and leaves no event.
func expectNoEvent(t *testing.T, s *sqlstore.Store, code domain.Code, do func() error) {
	t.Helper()
	before := lastSeq(t, s)
	if err := do(); !domain.IsCode(err, code) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	if evs := feed(t, s, before); len(evs) != 0 {
		t.Fatalf("a change that failed left %d events: %+v", len(evs), evs)
	}
}

func idStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, e.(string))
		}
	}
	return out
}

// TestOutboundEventsOfChanges: each change emits exactly its events, with
// its user and organization, in its own transaction; a change that fails
// emits nothing.
func TestOutboundEventsOfChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var u *domain.User
		var sess *domain.Session
		evs := expectEvents(t, s, func() error { u, sess, _ = newUser(t, s, "ada@example.com"); return nil },
			domain.OutUserCreated, domain.OutSessionCreated)
		if *evs[0].UserID != u.ID || evs[0].OrgID != nil || evs[0].Data["email"] != "ada@example.com" || evs[0].Data["source"] != "signup" {
			t.Fatalf("user.created = %+v", evs[0])
		}
		if *evs[1].UserID != u.ID || evs[1].Data["session_id"] != sess.ID.String() || evs[1].Data["aal"] != domain.AAL1 {
			t.Fatalf("session.created = %+v", evs[1])
		}
		// A signup that fails (the email is taken) emits nothing.
		expectNoEvent(t, s, domain.CodeEmailTaken, func() error {
			u2 := &domain.User{ID: uuid.New(), Email: "ada@example.com", CreatedAt: now, UpdatedAt: now}
			return s.CreateUser(ctx, u2, nil, nil)
		})

		// A login's session; its revocation; a second revocation fails.
		second := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		expectEvents(t, s, func() error {
			return s.CreateSession(ctx, second, &domain.RefreshToken{ID: uuid.New(), SessionID: second.ID, Hash: randBytes(), CreatedAt: now})
		}, domain.OutSessionCreated)
		evs = expectEvents(t, s, func() error { return s.RevokeSession(ctx, u.ID, second.ID, now) }, domain.OutSessionRevoked)
		if got := idStrings(evs[0].Data["session_ids"]); len(got) != 1 || got[0] != second.ID.String() || evs[0].Data["reason"] != "revoked" {
			t.Fatalf("session.revoked = %+v", evs[0].Data)
		}
		expectNoEvent(t, s, domain.CodeNotFound, func() error { return s.RevokeSession(ctx, u.ID, second.ID, now) })
		// Revoking the others: one event lists them all; none when none.
		third, fourth := uuid.New(), uuid.New()
		for _, id := range []uuid.UUID{third, fourth} {
			x := &domain.Session{ID: id, UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
			if err := s.CreateSession(ctx, x, &domain.RefreshToken{ID: uuid.New(), SessionID: id, Hash: randBytes(), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		evs = expectEvents(t, s, func() error { _, err := s.RevokeUserSessions(ctx, u.ID, sess.ID, now); return err }, domain.OutSessionRevoked)
		if got := idStrings(evs[0].Data["session_ids"]); len(got) != 2 {
			t.Fatalf("bulk session.revoked = %+v", evs[0].Data)
		}
		expectEvents(t, s, func() error { _, err := s.RevokeUserSessions(ctx, u.ID, sess.ID, now); return err })

		// Personal keys: created, revoked once.
		k := &domain.APIKey{ID: uuid.New(), UserID: &u.ID, CreatedBy: &u.ID, Label: "ci", Scopes: []string{"sessions:read"},
			Prefix: "lk_test", Hash: hash(randBytes()), CreatedAt: now}
		evs = expectEvents(t, s, func() error { return s.CreateAPIKey(ctx, k) }, domain.OutAPIKeyCreated)
		if evs[0].Data["api_key_id"] != k.ID.String() || evs[0].Data["prefix"] != "lk_test" || *evs[0].UserID != u.ID {
			t.Fatalf("api_key.created = %+v", evs[0])
		}
		owner := domain.KeyOwner{UserID: u.ID}
		expectEvents(t, s, func() error { _, err := s.RevokeAPIKey(ctx, owner, k.ID, now); return err }, domain.OutAPIKeyRevoked)
		expectEvents(t, s, func() error { _, err := s.RevokeAPIKey(ctx, owner, k.ID, now.Add(time.Second)); return err })
		// A roll is the successor's creation, naming its predecessor.
		k2 := &domain.APIKey{ID: uuid.New(), UserID: &u.ID, CreatedBy: &u.ID, Scopes: []string{}, Prefix: "lk_two", Hash: hash(randBytes()), CreatedAt: now}
		next := &domain.APIKey{ID: uuid.New(), UserID: &u.ID, CreatedBy: &u.ID, Scopes: []string{}, Prefix: "lk_three", Hash: hash(randBytes()), CreatedAt: now}
		if err := s.CreateAPIKey(ctx, k2); err != nil {
			t.Fatal(err)
		}
		evs = expectEvents(t, s, func() error { _, err := s.RollAPIKey(ctx, owner, k2.ID, next, now, time.Hour); return err }, domain.OutAPIKeyCreated)
		if evs[0].Data["api_key_id"] != next.ID.String() || evs[0].Data["rolled_from"] != k2.ID.String() || evs[0].Data["rolled_from_expires_at"] == nil {
			t.Fatalf("rolled api_key.created = %+v", evs[0].Data)
		}
		expectNoEvent(t, s, domain.CodeConflict, func() error {
			_, err := s.RollAPIKey(ctx, owner, k2.ID, &domain.APIKey{ID: uuid.New(), UserID: &u.ID, Prefix: "lk_four", Hash: hash(randBytes()), CreatedAt: now}, now, 0)
			return err
		})

		// An organization: its owner, an invitation, its acceptance, a removal.
		bob, _, _ := newUser(t, s, "bob@example.com")
		org := &domain.Organization{ID: uuid.New(), Name: "Acme", CreatedAt: now}
		evs = expectEvents(t, s, func() error {
			return s.CreateOrganization(ctx, org, &domain.Member{OrgID: org.ID, UserID: u.ID, Role: domain.RoleOwner, CreatedAt: now})
		}, domain.OutOrgMemberAdded)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != u.ID || evs[0].Data["role"] != "owner" {
			t.Fatalf("organization.member.added = %+v", evs[0])
		}
		var tok []byte
		evs = expectEvents(t, s, func() error {
			tok = sendInvitation(t, s, org.ID, &u.ID, "bob@example.com", domain.RoleMember)
			return nil
		},
			domain.OutInvitationCreated)
		if *evs[0].OrgID != org.ID || evs[0].Data["email"] != "bob@example.com" || evs[0].Data["role"] != "member" {
			t.Fatalf("invitation.created = %+v", evs[0])
		}
		evs = expectEvents(t, s, func() error { _, err := s.AcceptInvitation(ctx, hash(tok), bob.ID, now); return err }, domain.OutOrgMemberAdded)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != bob.ID || evs[0].Data["invitation_id"] == nil {
			t.Fatalf("accepted organization.member.added = %+v", evs[0])
		}
		orgKey := &domain.APIKey{ID: uuid.New(), OrgID: &org.ID, CreatedBy: &bob.ID, Scopes: []string{}, Prefix: "lk_org", Hash: hash(randBytes()), CreatedAt: now}
		evs = expectEvents(t, s, func() error { return s.CreateAPIKey(ctx, orgKey) }, domain.OutAPIKeyCreated)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != bob.ID {
			t.Fatalf("organization api_key.created = %+v", evs[0])
		}
		// A role change, and one to the same role (nothing happened).
		setRole := func(r domain.Role) func() error {
			return func() error {
				_, err := s.UpdateMember(ctx, org.ID, bob.ID, func(m *domain.Member) error { m.Role = r; return nil }, now)
				return err
			}
		}
		evs = expectEvents(t, s, setRole(domain.RoleAdmin), domain.OutOrgMemberUpdated)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != bob.ID || evs[0].Data["role"] != "admin" || evs[0].Data["previous_role"] != "member" {
			t.Fatalf("organization.member.updated = %+v", evs[0])
		}
		expectEvents(t, s, setRole(domain.RoleAdmin))
		// Invitations end: revoked, by the inviter's new role, by the
		// inviter's leaving; each with its reason.
		invite := func(email string, role domain.Role) uuid.UUID {
			t.Helper()
			evs := expectEvents(t, s, func() error { sendInvitation(t, s, org.ID, &bob.ID, email, role); return nil }, domain.OutInvitationCreated)
			id, err := uuid.Parse(evs[0].Data["invitation_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		revokedBy := func(evs []domain.OutboundEvent, i int, id uuid.UUID, email, role, reason string) {
			t.Helper()
			e := evs[i]
			invs, _ := e.Data["invitations"].([]any)
			if *e.OrgID != org.ID || e.UserID != nil || e.Data["org_id"] != org.ID.String() || e.Data["reason"] != reason || len(invs) != 1 {
				t.Fatalf("invitation.revoked = %+v, want one invitation, reason %s", e, reason)
			}
			if inv, _ := invs[0].(map[string]any); inv["invitation_id"] != id.String() || inv["email"] != email || inv["role"] != role {
				t.Fatalf("invitation.revoked lists %+v, want %s %s %s", invs[0], id, email, role)
			}
		}
		carol := invite("carol@example.com", domain.RoleMember)
		evs = expectEvents(t, s, func() error { return s.RevokeInvitation(ctx, org.ID, carol, now) }, domain.OutInvitationRevoked)
		revokedBy(evs, 0, carol, "carol@example.com", "member", "revoked")
		expectNoEvent(t, s, domain.CodeNotFound, func() error { return s.RevokeInvitation(ctx, org.ID, carol, now) })
		dave := invite("dave@example.com", domain.RoleAdmin)
		evs = expectEvents(t, s, setRole(domain.RoleMember), domain.OutOrgMemberUpdated, domain.OutInvitationRevoked)
		if evs[0].Data["role"] != "member" || evs[0].Data["previous_role"] != "admin" {
			t.Fatalf("organization.member.updated = %+v", evs[0])
		}
		revokedBy(evs, 1, dave, "dave@example.com", "admin", "inviter_role_changed")
		expectEvents(t, s, setRole(domain.RoleAdmin), domain.OutOrgMemberUpdated)
		erin := invite("erin@example.com", domain.RoleMember)
		evs = expectEvents(t, s, func() error {
			_, err := s.RemoveMember(ctx, org.ID, bob.ID, func(*domain.Member) error { return nil }, now, true)
			return err
		}, domain.OutOrgMemberRemoved, domain.OutAPIKeyRevoked, domain.OutInvitationRevoked)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != bob.ID || *evs[1].OrgID != org.ID || evs[1].Data["reason"] != "member_removed" {
			t.Fatalf("removal = %+v", evs)
		}
		revokedBy(evs, 2, erin, "erin@example.com", "member", "inviter_removed")
		// The last owner cannot leave: nothing changes, nothing is emitted.
		expectNoEvent(t, s, domain.CodeLastOwner, func() error {
			_, err := s.RemoveMember(ctx, org.ID, u.ID, func(*domain.Member) error { return nil }, now, false)
			return err
		})

		// A delegated identity: created once, then only its sessions.
		ext := &domain.User{ID: uuid.New(), OrgID: &org.ID, ExternalID: "auth0|1", CreatedAt: now, UpdatedAt: now}
		evs = expectEvents(t, s, func() error { _, err := s.UpsertExternalUser(ctx, ext); return err }, domain.OutUserCreated)
		if *evs[0].OrgID != org.ID || evs[0].Data["source"] != "delegated" || evs[0].Data["external_id"] != "auth0|1" {
			t.Fatalf("delegated user.created = %+v", evs[0])
		}
		again := &domain.User{ID: uuid.New(), OrgID: &org.ID, ExternalID: "auth0|1", CreatedAt: now, UpdatedAt: now}
		expectEvents(t, s, func() error { _, err := s.UpsertExternalUser(ctx, again); return err })
		ds := &domain.Session{ID: uuid.New(), UserID: ext.ID, OrgID: &org.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		evs = expectEvents(t, s, func() error {
			return s.CreateSession(ctx, ds, &domain.RefreshToken{ID: uuid.New(), SessionID: ds.ID, Hash: randBytes(), CreatedAt: now})
		}, domain.OutSessionCreated)
		if evs[0].OrgID == nil || *evs[0].OrgID != org.ID {
			t.Fatalf("delegated session.created = %+v", evs[0])
		}
		evs = expectEvents(t, s, func() error { _, err := s.RevokeOrgSession(ctx, org.ID, ds.ID, now); return err }, domain.OutSessionRevoked)
		if *evs[0].OrgID != org.ID || *evs[0].UserID != ext.ID {
			t.Fatalf("delegated session.revoked = %+v", evs[0])
		}

		// The organization's feed holds only its events.
		orgEvs, err := s.ListOutboundEvents(ctx, domain.OutboundFilter{Limit: 200, OrgID: &org.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range orgEvs {
			if e.OrgID == nil || *e.OrgID != org.ID {
				t.Fatalf("the organization's feed holds %+v", e)
			}
		}
		// 9, and the 3 role changes, 3 invitations and their 3 ends.
		if len(orgEvs) != 18 {
			t.Fatalf("the organization's feed holds %d events, want 18", len(orgEvs))
		}
		// A type filter, ascending seq, and the cursor.
		typed, err := s.ListOutboundEvents(ctx, domain.OutboundFilter{Limit: 200, Types: []string{domain.OutSessionRevoked, domain.OutAPIKeyRevoked}})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range typed {
			if e.Type != domain.OutSessionRevoked && e.Type != domain.OutAPIKeyRevoked || i > 0 && e.Seq <= typed[i-1].Seq {
				t.Fatalf("filtered feed: %+v", typed)
			}
		}
		all := feed(t, s, 0)
		page, _ := s.ListOutboundEvents(ctx, domain.OutboundFilter{After: all[2].Seq, Limit: 2})
		if len(page) != 2 || page[0].Seq != all[3].Seq || page[1].Seq != all[4].Seq {
			t.Fatalf("page after %d = %+v", all[2].Seq, page)
		}
	})
}

// TestOutboundFeedNeverSkipsOnPostgres: on PostgreSQL a transaction that
// took a lower seq may commit after one that took a higher seq. While it is
// open, the feed answers nothing past the last seq that can no longer
// change, instead of the later event (which would make a reader skip the
// earlier one for ever); once it commits, both come, in order. A
// transaction that writes no event does not hold the feed up, and a seq
// whose transaction rolled back leaves a gap that does not either. (SQLite
// writes one transaction at a time: seqs become visible in order.)
func TestOutboundFeedNeverSkipsOnPostgres(t *testing.T) {
	for _, d := range []string{"postgres", testutil.Pooler} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := testutil.DatabaseURL(t, d)
			opt := testutil.StoreOptions(t, d, u)
			opt.FeedWait = -1 // answer at once: the held transaction will not end by itself
			s, err := sqlstore.Open(ctx, u, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ada, _, _ := newUser(t, s, "ada@example.com")
			bob, _, _ := newUser(t, s, "bob@example.com")
			base := lastSeq(t, s)

			// A transaction that changes something, then takes its seq, and
			// stays open, as a store method's would while it commits.
			held, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Rollback()
			if _, err := held.ExecContext(ctx, `UPDATE users SET updated_at = updated_at WHERE id = $1`, ada.ID); err != nil {
				t.Fatal(err)
			}
			var heldSeq int64
			if err := held.QueryRowContext(ctx, `INSERT INTO outbound_events (id, type, user_id, data, created_at)
				VALUES ($1, 'user.updated', $2, '{}', now()) RETURNING seq`, uuid.New(), ada.ID).Scan(&heldSeq); err != nil {
				t.Fatal(err)
			}
			// A transaction that writes no event, open throughout.
			other, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback()
			if _, err := other.ExecContext(ctx, `UPDATE users SET updated_at = updated_at WHERE id = $1`, bob.ID); err != nil {
				t.Fatal(err)
			}
			// A later change commits first, with a higher seq.
			k := &domain.APIKey{ID: uuid.New(), UserID: &ada.ID, CreatedBy: &ada.ID, Scopes: []string{}, Prefix: "lk_x", Hash: hash(randBytes()), CreatedAt: now}
			if err := s.CreateAPIKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			if evs := feed(t, s, base); len(evs) != 0 {
				t.Fatalf("with seq %d in flight the feed answered %+v: a reader would skip it", heldSeq, evs)
			}
			if err := held.Commit(); err != nil {
				t.Fatal(err)
			}
			evs := feed(t, s, base)
			if len(evs) != 2 || evs[0].Seq != heldSeq || evs[1].Type != domain.OutAPIKeyCreated || evs[1].Seq <= heldSeq {
				t.Fatalf("after the commit the feed answered %+v", evs)
			}
			last := evs[1].Seq

			// A seq whose transaction rolled back is a gap the feed passes.
			gone, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gone.ExecContext(ctx, `UPDATE users SET updated_at = updated_at WHERE id = $1`, ada.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := gone.ExecContext(ctx, `INSERT INTO outbound_events (id, type, user_id, data, created_at)
				VALUES ($1, 'user.updated', $2, '{}', now())`, uuid.New(), ada.ID); err != nil {
				t.Fatal(err)
			}
			if err := gone.Rollback(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RevokeAPIKey(ctx, domain.KeyOwner{UserID: ada.ID}, k.ID, now); err != nil {
				t.Fatal(err)
			}
			evs = feed(t, s, last)
			if len(evs) != 1 || evs[0].Type != domain.OutAPIKeyRevoked || evs[0].Seq != last+2 {
				t.Fatalf("after a rolled-back seq the feed answered %+v", evs)
			}
			last = evs[0].Seq

			// The transaction that commits first may be the older one (a
			// lower xid): a filter on the rows' xmin alone would pass its
			// event, and skip the held one's lower seq.
			carol, _, _ := newUser(t, s, "carol@example.com")
			last = lastSeq(t, s)
			older, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer older.Rollback()
			if _, err := older.ExecContext(ctx, `UPDATE users SET updated_at = updated_at WHERE id = $1`, carol.ID); err != nil {
				t.Fatal(err)
			}
			younger, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer younger.Rollback()
			if _, err := younger.ExecContext(ctx, `UPDATE users SET updated_at = updated_at WHERE id = $1`, ada.ID); err != nil {
				t.Fatal(err)
			}
			var low, high int64
			insert := `INSERT INTO outbound_events (id, type, user_id, data, created_at) VALUES ($1, 'user.updated', $2, '{}', now()) RETURNING seq`
			if err := younger.QueryRowContext(ctx, insert, uuid.New(), ada.ID).Scan(&low); err != nil {
				t.Fatal(err)
			}
			if err := older.QueryRowContext(ctx, insert, uuid.New(), carol.ID).Scan(&high); err != nil {
				t.Fatal(err)
			}
			if err := older.Commit(); err != nil {
				t.Fatal(err)
			}
			if evs := feed(t, s, last); len(evs) != 0 {
				t.Fatalf("with seq %d in flight the feed answered %+v", low, evs)
			}
			if err := younger.Commit(); err != nil {
				t.Fatal(err)
			}
			if evs := feed(t, s, last); len(evs) != 2 || evs[0].Seq != low || evs[1].Seq != high {
				t.Fatalf("after both commits the feed answered %+v", evs)
			}
		})
	}
}

// TestOutboundEventsArePruned: pruning deletes the events created before
// the cutoff, oldest first, and keeps the others.
func TestOutboundEventsArePruned(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		newUser(t, s, "ada@example.com") // two events at now
		later := &domain.APIKey{ID: uuid.New(), Scopes: []string{}, Prefix: "lk_later", Hash: hash(randBytes()), CreatedAt: now.Add(time.Hour)}
		ada, err := s.UserByEmail(ctx, "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		later.UserID = &ada.ID
		if err := s.CreateAPIKey(ctx, later); err != nil {
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, domain.PruneOutboundEvents, now.Add(time.Minute), 1)
		if err != nil || n != 1 {
			t.Fatalf("prune = %d, %v", n, err)
		}
		if n, err := s.Prune(ctx, domain.PruneOutboundEvents, now.Add(time.Minute), 10); err != nil || n != 1 {
			t.Fatalf("second prune = %d, %v", n, err)
		}
		if evs := feed(t, s, 0); len(evs) != 1 || evs[0].Type != domain.OutAPIKeyCreated {
			t.Fatalf("after pruning: %+v", evs)
		}
	})
}

// TestOutboundEventsOfTrimmedSessions: the session quota ends the oldest
// sessions in one change, with one session.revoked (reason session_quota);
// a trim that ends nothing emits nothing.
func TestOutboundEventsOfTrimmedSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, first, _ := newUser(t, s, "ada@example.com")
		var created []uuid.UUID
		for i := 1; i <= 2; i++ {
			x := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now.Add(time.Duration(i) * time.Second), LastUsedAt: now,
				ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
			if err := s.CreateSession(ctx, x, &domain.RefreshToken{ID: uuid.New(), SessionID: x.ID, Hash: randBytes(), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			created = append(created, x.ID)
		}
		evs := expectEvents(t, s, func() error { _, err := s.TrimSessions(ctx, u.ID, 1, now); return err }, domain.OutSessionRevoked)
		// The newest (the second created) stays; the first two go.
		got := idStrings(evs[0].Data["session_ids"])
		slices.Sort(got)
		want := []string{first.ID.String(), created[0].String()}
		slices.Sort(want)
		if !slices.Equal(got, want) || evs[0].Data["reason"] != "session_quota" {
			t.Fatalf("trim: %+v, want %v", evs[0].Data, want)
		}
		expectEvents(t, s, func() error { _, err := s.TrimSessions(ctx, u.ID, 1, now); return err })
	})
}

// TestOutboundEventsOfRacingSignups: of racing signups of one email, which
// SQLite's writer runs in one group commit (each in its own savepoint), the
// one that wins emits its two events and those rolled back emit none.
func TestOutboundEventsOfRacingSignups(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		var wg sync.WaitGroup
		won := make(chan uuid.UUID, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := &domain.User{ID: uuid.New(), Email: "race@example.com", CreatedAt: now, UpdatedAt: now}
				sess := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
				if err := s.CreateUser(context.Background(), u, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: randBytes(), CreatedAt: now}); err == nil {
					won <- u.ID
				}
			}()
		}
		wg.Wait()
		close(won)
		var winners []uuid.UUID
		for id := range won {
			winners = append(winners, id)
		}
		evs := feed(t, s, 0)
		if len(winners) != 1 || len(evs) != 2 || *evs[0].UserID != winners[0] || *evs[1].UserID != winners[0] {
			t.Fatalf("%d winners, events %+v", len(winners), evs)
		}
	})
}
