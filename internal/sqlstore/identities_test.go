package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

// The identities' storage contract on every database: an identity signs
// in the user it is linked to, a new one joins an account only by
// domain.LinkDecision, flows and codes are taken once and not after they
// expire (and pruning removes the expired ones), and unlinking never takes
// a user's last way to sign in.
func TestIdentitiesStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		ada, _, _ := newUser(t, s, "ada@example.com") // password, email unverified
		ident := func(sub, email string, verified bool) domain.Identity {
			return domain.Identity{ID: uuid.New(), Provider: "op", Subject: sub, Email: email, EmailVerified: verified, CreatedAt: now, LastSignInAt: &now}
		}
		newUser := func(email string, verified bool) *domain.User {
			return &domain.User{ID: uuid.New(), Email: email, EmailVerified: verified, CreatedAt: now, UpdatedAt: now}
		}
		// Ada's account did not verify its email: no automatic link.
		nu := newUser("ada@example.com", true)
		i := ident("s-ada", "ada@example.com", true)
		i.UserID = nu.ID
		if _, _, err := s.SignInIdentity(ctx, domain.IdentitySignIn{Identity: i, NewUser: nu, Now: now}); !domain.IsCode(err, domain.CodeIdentityNotLinked) {
			t.Fatalf("link to an unverified account: %v", err)
		}
		// A new address makes a new user with the identity, found again by it.
		nu = newUser("bob@example.com", false)
		i = ident("s-bob", "bob@example.com", false)
		i.UserID = nu.ID
		u, got, err := s.SignInIdentity(ctx, domain.IdentitySignIn{Identity: i, NewUser: nu, Now: now})
		if err != nil || u.ID != nu.ID || got.UserID != nu.ID || u.EmailVerified {
			t.Fatalf("new user: %+v %+v %v", u, got, err)
		}
		later := now.Add(time.Hour)
		again := ident("s-bob", "bob@example.org", true)
		u, got, err = s.SignInIdentity(ctx, domain.IdentitySignIn{Identity: again, NewUser: newUser("x@example.com", true), Now: later})
		if err != nil || u.ID != nu.ID || got.ID != i.ID || got.Email != "bob@example.org" || !got.LastSignInAt.Equal(later) {
			t.Fatalf("known identity: %+v %+v %v", u, got, err)
		}
		// Link to ada explicitly, then unlink: she keeps her password.
		link := ident("s-ada-work", "", false)
		link.UserID = ada.ID
		if err := s.LinkIdentity(ctx, &link); err != nil {
			t.Fatal(err)
		}
		taken := ident("s-ada-work", "", false)
		taken.UserID = nu.ID
		if err := s.LinkIdentity(ctx, &taken); !domain.IsCode(err, domain.CodeConflict) {
			t.Fatalf("another user's identity: %v", err)
		}
		if list, err := s.ListIdentities(ctx, ada.ID); err != nil || len(list) != 1 || list[0].Subject != "s-ada-work" {
			t.Fatalf("list: %+v %v", list, err)
		}
		if err := s.DeleteIdentity(ctx, ada.ID, link.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteIdentity(ctx, ada.ID, link.ID); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("unlink twice: %v", err)
		}
		// Bob has no password: his only identity stays.
		if err := s.DeleteIdentity(ctx, nu.ID, i.ID); !domain.IsCode(err, domain.CodeLastIdentity) {
			t.Fatalf("unlink the last identity: %v", err)
		}
		if list, err := s.ListIdentities(ctx, nu.ID); err != nil || len(list) != 1 {
			t.Fatalf("the refused unlink removed it: %+v %v", list, err)
		}

		// Flows and codes: taken once, never after expiry, pruned after.
		flow := &domain.ProviderFlow{StateHash: hash([]byte("state")), BrowserHash: hash([]byte("browser")), Provider: "op", Nonce: "n",
			Verifier: []byte("sealed"), RedirectTo: "https://app.example.com/cb", CodeChallenge: "c", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateProviderFlow(ctx, flow); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TakeProviderFlow(ctx, flow.StateHash, now); err != nil || got.Nonce != "n" || got.LinkUserID != nil {
			t.Fatalf("take: %+v %v", got, err)
		}
		if _, err := s.TakeProviderFlow(ctx, flow.StateHash, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("take twice: %v", err)
		}
		flow.StateHash = hash([]byte("late"))
		if err := s.CreateProviderFlow(ctx, flow); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeProviderFlow(ctx, flow.StateHash, now.Add(time.Minute)); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("take after expiry: %v", err)
		}
		code := &domain.ProviderCode{CodeHash: hash([]byte("code")), UserID: nu.ID, Provider: "op", CodeChallenge: "c",
			RedirectTo: "https://app.example.com/cb", AAL: domain.AAL2, AMR: []string{"fed", "mfa"}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateProviderCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TakeProviderCode(ctx, code.CodeHash, now); err != nil || got.AAL != domain.AAL2 || len(got.AMR) != 2 || got.Link != nil {
			t.Fatalf("take code: %+v %v", got, err)
		}
		if _, err := s.TakeProviderCode(ctx, code.CodeHash, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("take code twice: %v", err)
		}
		linkCode := *code
		linkCode.CodeHash = hash([]byte("link code"))
		linkCode.Link = &domain.Identity{Subject: "s-work", Email: "w@example.org", EmailVerified: true}
		if err := s.CreateProviderCode(ctx, &linkCode); err != nil {
			t.Fatal(err)
		}
		if got, err := s.TakeProviderCode(ctx, linkCode.CodeHash, now); err != nil || got.Link == nil || got.Link.Subject != "s-work" ||
			got.Link.Email != "w@example.org" || !got.Link.EmailVerified || got.Link.Provider != "op" || got.Link.UserID != nu.ID {
			t.Fatalf("take a link code: %+v %v", got, err)
		}
		code.CodeHash = hash([]byte("expired code"))
		if err := s.CreateProviderCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		flow.StateHash = hash([]byte("expired flow"))
		if err := s.CreateProviderFlow(ctx, flow); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{domain.PruneProviderCodes, domain.PruneProviderFlows} {
			if n, err := s.Prune(ctx, kind, now.Add(2*time.Minute), 10); err != nil || n != 1 {
				t.Fatalf("prune %s: %d %v", kind, n, err)
			}
		}
	})
}
