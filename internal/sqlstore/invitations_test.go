package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

// sendInvitation stores an invitation from inviter (nil for none) to email
// with the role and returns its token.
func sendInvitation(t *testing.T, s *sqlstore.Store, org uuid.UUID, inviter *uuid.UUID, email string, role domain.Role) []byte {
	t.Helper()
	tok := randBytes()
	inv := &domain.Invitation{ID: uuid.New(), OrgID: org, Email: email, Role: role, Hash: hash(tok), InvitedBy: inviter,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateInvitation(context.Background(), inv, nil); err != nil {
		t.Fatal(err)
	}
	return tok
}

// pending reports whether the invitation with the token is still pending.
func pending(t *testing.T, s *sqlstore.Store, tok []byte) bool {
	t.Helper()
	_, err := s.InvitationByHash(context.Background(), hash(tok), now)
	if err != nil && !domain.IsCode(err, domain.CodeNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestInvitationsFollowTheirSendersAuthority: removing a member revokes
// the invitations they sent, demoting one revokes those the new role does
// not grant, both in the membership change's transaction; accepting checks
// the sender's membership and role again.
func TestInvitationsFollowTheirSendersAuthority(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		owner, _, _ := newUser(t, s, "owner@example.com")
		owner2, _, _ := newUser(t, s, "owner2@example.com")
		admin, _, _ := newUser(t, s, "admin@example.com")
		admin2, _, _ := newUser(t, s, "admin2@example.com")
		member, _, _ := newUser(t, s, "member@example.com")
		outsider, _, _ := newUser(t, s, "outsider@example.com")
		org := &domain.Organization{ID: uuid.New(), Name: "Acme", CreatedAt: now}
		other := &domain.Organization{ID: uuid.New(), Name: "Other", CreatedAt: now}
		for _, o := range []*domain.Organization{org, other} {
			if err := s.CreateOrganization(ctx, o, &domain.Member{OrgID: o.ID, UserID: owner.ID, Role: domain.RoleOwner, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		for _, j := range []struct {
			org  uuid.UUID
			user uuid.UUID
			role domain.Role
		}{{org.ID, owner2.ID, domain.RoleOwner}, {org.ID, admin.ID, domain.RoleAdmin}, {org.ID, admin2.ID, domain.RoleAdmin},
			{org.ID, member.ID, domain.RoleMember}, {other.ID, admin.ID, domain.RoleAdmin}} {
			if _, err := join(t, s, j.org, owner.ID, j.user, j.role, now); err != nil {
				t.Fatal(err)
			}
		}
		keep := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		// An admin demoted to member can grant nothing: all of their
		// pending invitations go, in this organization only.
		byAdmin := [][]byte{
			sendInvitation(t, s, org.ID, &admin.ID, "p1@example.com", domain.RoleAdmin),
			sendInvitation(t, s, org.ID, &admin.ID, "p2@example.com", domain.RoleMember),
		}
		byOwner := sendInvitation(t, s, org.ID, &owner.ID, "p3@example.com", domain.RoleMember)
		elsewhere := sendInvitation(t, s, other.ID, &admin.ID, "p4@example.com", domain.RoleMember)
		_, err := s.UpdateMember(ctx, org.ID, admin.ID, func(m *domain.Member) error { m.Role = domain.RoleMember; return nil }, now)
		keep(err)
		for _, tok := range byAdmin {
			if pending(t, s, tok) {
				t.Fatal("an invitation of a demoted admin is still pending")
			}
		}
		if !pending(t, s, byOwner) || !pending(t, s, elsewhere) {
			t.Fatal("a demotion revoked another sender's invitation, or one in another organization")
		}
		if list, err := s.ListInvitations(ctx, org.ID, now, nil, 100); err != nil || len(list) != 1 {
			t.Fatalf("pending after the demotion: %+v %v", list, err)
		}

		// An owner demoted to admin loses only the owner invitations.
		ownerInv := sendInvitation(t, s, org.ID, &owner2.ID, "q1@example.com", domain.RoleOwner)
		adminInv := sendInvitation(t, s, org.ID, &owner2.ID, "q2@example.com", domain.RoleAdmin)
		_, err = s.UpdateMember(ctx, org.ID, owner2.ID, func(m *domain.Member) error { m.Role = domain.RoleAdmin; return nil }, now)
		keep(err)
		if pending(t, s, ownerInv) || !pending(t, s, adminInv) {
			t.Fatal("demoting an owner to admin must revoke exactly the owner invitations")
		}
		q2, _, _ := newUser(t, s, "q2@example.com")
		if m, err := s.AcceptInvitation(ctx, hash(adminInv), q2.ID, now); err != nil || m.Role != domain.RoleAdmin {
			t.Fatalf("accept an admin invitation of an admin: %+v %v", m, err)
		}

		// A vetoed or refused change revokes nothing.
		byAdmin2 := sendInvitation(t, s, org.ID, &admin2.ID, "r1@example.com", domain.RoleMember)
		veto := domain.Errorf(domain.CodeInsufficientPermissions, "no")
		if _, err := s.RemoveMember(ctx, org.ID, admin2.ID, func(*domain.Member) error { return veto }, now, false); !domain.IsCode(err, domain.CodeInsufficientPermissions) {
			t.Fatalf("veto: %v", err)
		}
		if !pending(t, s, byAdmin2) {
			t.Fatal("a vetoed removal revoked an invitation")
		}
		// Removal revokes every pending invitation the member sent.
		_, err = s.RemoveMember(ctx, org.ID, admin2.ID, func(*domain.Member) error { return nil }, now, false)
		keep(err)
		if pending(t, s, byAdmin2) {
			t.Fatal("an invitation of a removed admin is still pending")
		}
		r1, _, _ := newUser(t, s, "r1@example.com")
		if _, err := s.AcceptInvitation(ctx, hash(byAdmin2), r1.ID, now); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("accept a removed admin's invitation: %v", err)
		}

		// Accepting judges the sender now, whatever revoked or did not
		// revoke the invitation: a sender who is not a member, whose role
		// does not grant the invited one, or none at all.
		x, _, _ := newUser(t, s, "x@example.com")
		for name, inviter := range map[string]*uuid.UUID{"non-member": &outsider.ID, "member": &member.ID, "nobody": nil} {
			tok := sendInvitation(t, s, org.ID, inviter, "x@example.com", domain.RoleMember)
			if _, err := s.AcceptInvitation(ctx, hash(tok), x.ID, now); !domain.IsCode(err, domain.CodeInvalidToken) {
				t.Fatalf("accept an invitation from a %s: %v", name, err)
			}
			if !pending(t, s, tok) {
				t.Fatalf("a refused acceptance spent the invitation from a %s", name)
			}
			if _, err := s.Member(ctx, org.ID, x.ID); !domain.IsCode(err, domain.CodeNotFound) {
				t.Fatalf("a refused acceptance made a member: %v", err)
			}
		}
		tok := sendInvitation(t, s, org.ID, &owner2.ID, "x@example.com", domain.RoleOwner) // owner2 is an admin now
		if _, err := s.AcceptInvitation(ctx, hash(tok), x.ID, now); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("accept an owner invitation from an admin: %v", err)
		}
		if _, err := s.AcceptInvitation(ctx, hash(byOwner), x.ID, now); err != nil {
			t.Fatalf("accept an owner's invitation: %v", err)
		}
	})
}

// TestAcceptRacesRemovalOfItsSender: accepting an invitation while its
// sender is removed either joins (the acceptance came first) or is
// refused, and never fails otherwise (both lock the organization first).
func TestAcceptRacesRemovalOfItsSender(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		owner, _, _ := newUser(t, s, "owner@example.com")
		for i := range 5 {
			org := &domain.Organization{ID: uuid.New(), Name: "Acme", CreatedAt: now}
			if err := s.CreateOrganization(ctx, org, &domain.Member{OrgID: org.ID, UserID: owner.ID, Role: domain.RoleOwner, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			admin, _, _ := newUser(t, s, uuid.NewString()+"@example.com")
			if _, err := join(t, s, org.ID, owner.ID, admin.ID, domain.RoleAdmin, now); err != nil {
				t.Fatal(err)
			}
			invitee, _, _ := newUser(t, s, uuid.NewString()+"@example.com")
			tok := sendInvitation(t, s, org.ID, &admin.ID, invitee.Email, domain.RoleMember)
			var wg sync.WaitGroup
			var acceptErr, removeErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, acceptErr = s.AcceptInvitation(ctx, hash(tok), invitee.ID, now)
			}()
			go func() {
				defer wg.Done()
				_, removeErr = s.RemoveMember(ctx, org.ID, admin.ID, func(*domain.Member) error { return nil }, now, false)
			}()
			wg.Wait()
			if removeErr != nil {
				t.Fatalf("round %d: remove: %v", i, removeErr)
			}
			_, memberErr := s.Member(ctx, org.ID, invitee.ID)
			switch {
			case acceptErr == nil && memberErr == nil:
			case domain.IsCode(acceptErr, domain.CodeInvalidToken) && domain.IsCode(memberErr, domain.CodeNotFound):
			default:
				t.Fatalf("round %d: accept %v, membership %v", i, acceptErr, memberErr)
			}
			if pending(t, s, tok) {
				t.Fatalf("round %d: the invitation is still pending", i)
			}
		}
	})
}
