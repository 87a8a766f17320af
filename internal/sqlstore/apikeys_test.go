package sqlstore_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

func newAPIKey(owner domain.KeyOwner, scopes ...string) *domain.APIKey {
	k := &domain.APIKey{ID: uuid.New(), Label: "k", Scopes: scopes, Prefix: "latch_u_abcd", Hash: hash(randBytes()), CreatedAt: now}
	if owner.OrgID != uuid.Nil {
		id := owner.OrgID
		k.OrgID = &id
	} else {
		id := owner.UserID
		k.UserID = &id
	}
	return k
}

func TestAPIKeyStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "keys@example.com")
		other, _, _ := newUser(t, s, "other@example.com")
		owner := domain.KeyOwner{UserID: u.ID}
		k := newAPIKey(owner, "billing:read", "users:read")
		exp := now.Add(time.Hour)
		k.ExpiresAt = &exp
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		none := newAPIKey(owner)
		if err := s.CreateAPIKey(ctx, none); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIKey(ctx, &domain.APIKey{ID: uuid.New(), UserID: &u.ID, Hash: k.Hash, CreatedAt: now}); domain.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("duplicate hash: %v", err)
		}
		got, err := s.APIKeyByHash(ctx, k.Hash)
		if err != nil || got.ID != k.ID || len(got.Scopes) != 2 || got.Scopes[1] != "users:read" || !got.ExpiresAt.Equal(exp) || *got.UserID != u.ID || got.OrgID != nil {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if got, err := s.APIKeyByID(ctx, none.ID); err != nil || len(got.Scopes) != 0 || got.Scopes == nil {
			t.Fatalf("no scopes: %+v %v", got, err)
		}
		if _, err := s.APIKeyByHash(ctx, hash(randBytes())); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("unknown hash: %v", err)
		}
		if list, err := s.ListAPIKeys(ctx, owner, nil, nil, 100); err != nil || len(list) != 2 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		if list, err := s.ListAPIKeys(ctx, domain.KeyOwner{UserID: other.ID}, nil, nil, 100); err != nil || len(list) != 0 {
			t.Fatalf("other's list: %d %v", len(list), err)
		}

		// Touch writes at most once per interval.
		for i, want := range []bool{true, false} {
			if ok, err := s.TouchAPIKey(ctx, k.ID, now.Add(time.Duration(i)*30*time.Second), time.Minute); err != nil || ok != want {
				t.Fatalf("touch %d: %v %v", i, ok, err)
			}
		}
		if ok, _ := s.TouchAPIKey(ctx, k.ID, now.Add(time.Minute), time.Minute); !ok {
			t.Fatal("touch after a minute did not write")
		}

		// Revoke: only the owner's, idempotent.
		if _, err := s.RevokeAPIKey(ctx, domain.KeyOwner{UserID: other.ID}, k.ID, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("revoke by another: %v", err)
		}
		r1, err := s.RevokeAPIKey(ctx, owner, none.ID, now)
		if err != nil || r1.RevokedAt == nil || !r1.RevokedAt.Equal(now) {
			t.Fatalf("revoke: %+v %v", r1, err)
		}
		r2, err := s.RevokeAPIKey(ctx, owner, none.ID, now.Add(time.Hour))
		if err != nil || !r2.RevokedAt.Equal(now) {
			t.Fatalf("revoke twice moved revoked_at: %+v %v", r2, err)
		}
		if _, err := s.RollAPIKey(ctx, owner, none.ID, newAPIKey(owner), now, 0); domain.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("roll a revoked key: %v", err)
		}
		if _, err := s.RollAPIKey(ctx, owner, uuid.New(), newAPIKey(owner), now, 0); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("roll unknown: %v", err)
		}

		// Roll with an overlap shorter than the expiry, then race two rolls.
		next := newAPIKey(owner, k.Scopes...)
		old, err := s.RollAPIKey(ctx, owner, k.ID, next, now, 10*time.Minute)
		if err != nil || old.RolledTo == nil || *old.RolledTo != next.ID || !old.ExpiresAt.Equal(now.Add(10*time.Minute)) || old.RevokedAt != nil {
			t.Fatalf("roll: %+v %v", old, err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.RollAPIKey(ctx, owner, next.ID, newAPIKey(owner), now, time.Hour)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch domain.ErrorCode(err) {
			case "":
				won++
			case domain.CodeConflict:
			default:
				t.Fatalf("concurrent roll: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent rolls won", won)
		}
		// The overlap never extends an earlier expiry.
		short := newAPIKey(owner)
		soon := now.Add(time.Minute)
		short.ExpiresAt = &soon
		if err := s.CreateAPIKey(ctx, short); err != nil {
			t.Fatal(err)
		}
		if old, err := s.RollAPIKey(ctx, owner, short.ID, newAPIKey(owner), now, time.Hour); err != nil || !old.ExpiresAt.Equal(soon) {
			t.Fatalf("overlap extended the expiry: %+v %v", old, err)
		}
	})
}

func TestOrgStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a, _, _ := newUser(t, s, "a@example.com")
		b, _, _ := newUser(t, s, "b@example.com")
		c, _, _ := newUser(t, s, "c@example.com")
		org := &domain.Organization{ID: uuid.New(), Name: "Acme", CreatedAt: now}
		if err := s.CreateOrganization(ctx, org, &domain.Member{OrgID: org.ID, UserID: a.ID, Role: domain.RoleOwner, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.OrganizationByID(ctx, org.ID); err != nil || got.Name != "Acme" || got.Role != "" {
			t.Fatalf("by id: %+v %v", got, err)
		}
		if _, err := s.OrganizationByID(ctx, uuid.New()); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("unknown org: %v", err)
		}
		for _, m := range []*domain.Member{{OrgID: org.ID, UserID: b.ID, Role: domain.RoleOwner, CreatedAt: now}, {OrgID: org.ID, UserID: c.ID, Role: domain.RoleMember, CreatedAt: now}} {
			if _, err := join(t, s, m.OrgID, a.ID, m.UserID, m.Role, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := join(t, s, org.ID, a.ID, c.ID, domain.RoleAdmin, now); domain.ErrorCode(err) != domain.CodeConflict {
			t.Fatalf("join twice: %v", err)
		}
		if list, err := s.ListOrganizations(ctx, c.ID, nil, 100); err != nil || len(list) != 1 || list[0].Role != domain.RoleMember {
			t.Fatalf("list orgs: %+v %v", list, err)
		}
		if ms, err := s.ListMembers(ctx, org.ID, nil, 100); err != nil || len(ms) != 3 || ms[0].Email == "" {
			t.Fatalf("members: %+v %v", ms, err)
		}
		if _, err := s.Member(ctx, org.ID, uuid.New()); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("non-member: %v", err)
		}
		// Two owners demoting each other at once: one must stay owner.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []uuid.UUID{a.ID, b.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.UpdateMember(ctx, org.ID, id, func(m *domain.Member) error { m.Role = domain.RoleAdmin; return nil }, now)
			}()
		}
		wg.Wait()
		lastOwner := 0
		for _, err := range errs {
			if domain.ErrorCode(err) == domain.CodeLastOwner {
				lastOwner++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if lastOwner != 1 {
			t.Fatalf("%d of 2 concurrent demotions refused: %v", lastOwner, errs)
		}
		owners := 0
		ms, _ := s.ListMembers(ctx, org.ID, nil, 100)
		var owner uuid.UUID
		for _, m := range ms {
			if m.Role == domain.RoleOwner {
				owners++
				owner = m.UserID
			}
		}
		if owners != 1 {
			t.Fatalf("%d owners", owners)
		}
		if _, err := s.RemoveMember(ctx, org.ID, owner, func(*domain.Member) error { return nil }, now, false); domain.ErrorCode(err) != domain.CodeLastOwner {
			t.Fatalf("remove last owner: %v", err)
		}
		veto := domain.Errorf(domain.CodeInsufficientPermissions, "no")
		if _, err := s.RemoveMember(ctx, org.ID, c.ID, func(*domain.Member) error { return veto }, now, false); domain.ErrorCode(err) != domain.CodeInsufficientPermissions {
			t.Fatalf("veto: %v", err)
		}
		if _, err := s.RemoveMember(ctx, org.ID, c.ID, func(*domain.Member) error { return nil }, now, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RemoveMember(ctx, org.ID, c.ID, func(*domain.Member) error { return nil }, now, false); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("remove twice: %v", err)
		}
	})
}

func TestExternalUsersAndOrgSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a, _, _ := newUser(t, s, "owner@example.com")
		org := &domain.Organization{ID: uuid.New(), Name: "Acme", CreatedAt: now}
		if err := s.CreateOrganization(ctx, org, &domain.Member{OrgID: org.ID, UserID: a.ID, Role: domain.RoleOwner, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		// Concurrent first uses of one external id make one identity.
		var wg sync.WaitGroup
		ids := make([]uuid.UUID, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := s.UpsertExternalUser(ctx, &domain.User{ID: uuid.New(), OrgID: &org.ID, ExternalID: "ext-1",
					Email: "owner@example.com", Metadata: json.RawMessage(`{"n":1}`), CreatedAt: now, UpdatedAt: now})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = u.ID
			}()
		}
		wg.Wait()
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Fatalf("several identities: %v", ids)
			}
		}
		later := now.Add(time.Hour)
		u, err := s.UpsertExternalUser(ctx, &domain.User{ID: uuid.New(), OrgID: &org.ID, ExternalID: "ext-1", Metadata: json.RawMessage(`{"n":2}`), CreatedAt: later, UpdatedAt: later})
		if err != nil || u.ID != ids[0] || u.Email != "owner@example.com" || string(u.Metadata) == `{"n":1}` || !u.CreatedAt.Equal(now) || !u.UpdatedAt.Equal(later) {
			t.Fatalf("update: %+v %s %v", u, u.Metadata, err)
		}
		// The password account with the same email is untouched.
		if pw, err := s.UserByEmail(ctx, "owner@example.com"); err != nil || pw.ID != a.ID {
			t.Fatalf("password account: %+v %v", pw, err)
		}

		open := func(userID uuid.UUID, orgID *uuid.UUID) *domain.Session {
			sess := &domain.Session{ID: uuid.New(), UserID: userID, OrgID: orgID, CreatedAt: now, LastUsedAt: now,
				ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}
			if err := s.CreateSession(ctx, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash(randBytes()), CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			return sess
		}
		s1 := open(u.ID, &org.ID)
		u2, _ := s.UpsertExternalUser(ctx, &domain.User{ID: uuid.New(), OrgID: &org.ID, ExternalID: "ext-2", CreatedAt: now, UpdatedAt: now})
		open(u2.ID, &org.ID)
		mine := open(a.ID, nil)
		list, err := s.ListOrgSessions(ctx, org.ID, "", now, nil, 1000)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		list, err = s.ListOrgSessions(ctx, org.ID, "ext-1", now, nil, 1000)
		if err != nil || len(list) != 1 || list[0].ID != s1.ID || list[0].ExternalID != "ext-1" || list[0].OrgID == nil {
			t.Fatalf("list ext-1: %+v %v", list, err)
		}
		if _, err := s.RevokeOrgSession(ctx, org.ID, mine.ID, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("revoke a member's own session: %v", err)
		}
		if uid, err := s.RevokeOrgSession(ctx, org.ID, s1.ID, now); err != nil || uid != u.ID {
			t.Fatalf("revoke: %v %v", uid, err)
		}
		if _, err := s.RevokeOrgSession(ctx, org.ID, s1.ID, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("revoke twice: %v", err)
		}
		if list, _ := s.ListOrgSessions(ctx, org.ID, "ext-1", now, nil, 1000); len(list) != 0 {
			t.Fatalf("revoked session listed")
		}
		if list, _ := s.ListOrgSessions(ctx, org.ID, "", now.Add(2*time.Hour), nil, 1000); len(list) != 0 {
			t.Fatalf("expired session listed")
		}
	})
}

// join has inviter invite the user's address to the organization and
// accepts the invitation as the user, the only way into an organization.
func join(t *testing.T, s *sqlstore.Store, org, inviter, user uuid.UUID, role domain.Role, now time.Time) (*domain.Member, error) {
	t.Helper()
	ctx := context.Background()
	u, err := s.UserByID(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	tok := randBytes()
	inv := &domain.Invitation{ID: uuid.New(), OrgID: org, Email: u.Email, Role: role, Hash: hash(tok), InvitedBy: &inviter, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateInvitation(ctx, inv, nil); err != nil {
		t.Fatal(err)
	}
	return s.AcceptInvitation(ctx, hash(tok), user, now)
}
