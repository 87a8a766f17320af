package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// The MFA storage contract on every database: a factor's verification
// raises the session and replaces its refresh token in one transaction,
// a TOTP step and a recovery code are used once, a challenge is taken once
// and not after its expiry, and the last factor takes the recovery codes
// along.
func TestMFAStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, sess, raw := newUser(t, s, "mfa@example.com")
		f := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: "Phone", CreatedAt: now, TOTPSecret: []byte("sealed")}
		if err := s.CreateFactor(ctx, f); err != nil {
			t.Fatal(err)
		}
		if has, err := s.HasVerifiedFactor(ctx, u.ID); err != nil || has {
			t.Fatalf("unverified factor counts: %v %v", has, err)
		}
		codes := [][]byte{hash([]byte("a")), hash([]byte("b"))}
		next := randBytes()
		got, err := s.ConfirmFactor(ctx, domain.FactorChange{Factor: f, RecoveryHashes: codes, SessionID: sess.ID,
			AAL: domain.AAL2, AMR: []string{"pwd", "otp", "mfa"}, Now: now,
			Refresh: &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash(next), CreatedAt: now}})
		if err != nil || got.AAL != domain.AAL2 || len(got.AMR) != 3 {
			t.Fatalf("confirm: %+v %v", got, err)
		}
		if _, err := s.ConfirmFactor(ctx, domain.FactorChange{Factor: f, SessionID: sess.ID, AAL: domain.AAL2, Now: now}); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("confirming twice: %v", err)
		}
		if r, err := s.SessionByID(ctx, sess.ID); err != nil || r.AAL != domain.AAL2 || r.AMR[1] != "otp" {
			t.Fatalf("session: %+v %v", r, err)
		}
		// The new refresh token rotates and keeps the level; the old one is spent.
		res, _, err := rotate(s, next, now.Add(time.Minute))
		if err != nil || res.Outcome != domain.Rotated || res.Session.AAL != domain.AAL2 {
			t.Fatalf("rotate the new token: %+v %v", res, err)
		}
		if res, _, err := rotate(s, raw, now.Add(time.Hour)); err == nil && res.Outcome == domain.Rotated {
			t.Fatal("the replaced refresh token still rotates")
		}
		if err := s.UseTOTPStep(ctx, f.ID, 100, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UseTOTPStep(ctx, f.ID, 100, now); !domain.IsCode(err, domain.CodeConflict) {
			t.Fatalf("a used step again: %v", err)
		}
		if err := s.UseRecoveryCode(ctx, u.ID, codes[0], now); err != nil {
			t.Fatal(err)
		}
		if err := s.UseRecoveryCode(ctx, u.ID, codes[0], now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("a used recovery code again: %v", err)
		}
		if n, _ := s.CountRecoveryCodes(ctx, u.ID); n != 1 {
			t.Fatalf("recovery codes left: %d", n)
		}
		ch := &domain.Challenge{Hash: hash([]byte("challenge")), Kind: domain.ChallengePasskey, Data: []byte("{}"), CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		if err := s.SaveChallenge(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if c, err := s.TakeChallenge(ctx, ch.Hash, now.Add(time.Minute)); err != nil || c.Kind != domain.ChallengePasskey || c.UserID != nil {
			t.Fatalf("take: %+v %v", c, err)
		}
		if _, err := s.TakeChallenge(ctx, ch.Hash, now.Add(time.Minute)); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("a challenge taken twice: %v", err)
		}
		late := &domain.Challenge{Hash: hash([]byte("late")), Kind: domain.ChallengeVerify, UserID: &u.ID, SessionID: &sess.ID, Data: []byte("{}"), CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		if err := s.SaveChallenge(ctx, late); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeChallenge(ctx, late.Hash, now.Add(5*time.Minute)); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("an expired challenge: %v", err)
		}
		if left, err := s.DeleteFactor(ctx, u.ID, f.ID, now); err != nil || left != 0 {
			t.Fatalf("delete: %d %v", left, err)
		}
		if n, _ := s.CountRecoveryCodes(ctx, u.ID); n != 0 {
			t.Fatalf("recovery codes after the last factor: %d", n)
		}
		if _, err := s.DeleteFactor(ctx, u.ID, f.ID, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

// Migration 00060 is expand-only: a session written by the previous
// release (which knows no aal or amr) reads as aal1, before and after the
// migration, and the previous release's insert still works on the migrated
// database.
func TestMFAMigrationKeepsThePreviousReleaseWorking(t *testing.T) {
	for _, d := range testutil.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := testutil.DatabaseURL(t, d)
			s, err := sqlstore.Open(ctx, u, testutil.StoreOptions(t, d, u))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.MigrateTo(ctx, 50); err != nil {
				t.Fatal(err)
			}
			q := func(sql string) string {
				if d == "sqlite" {
					return sql
				}
				out, n := []byte{}, 0
				for _, c := range []byte(sql) {
					if c == '?' {
						n++
						out = append(out, []byte("$"+string(rune('0'+n)))...)
						continue
					}
					out = append(out, c)
				}
				return string(out)
			}
			uid, before, after := uuid.New(), uuid.New(), uuid.New()
			at := now.Format("2006-01-02 15:04:05.000000+00:00")
			later := now.Add(time.Hour).Format("2006-01-02 15:04:05.000000+00:00")
			if _, err := s.DB().Exec(q(`INSERT INTO users (id, email, email_verified, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
				uid, "old@example.com", true, "$argon2id$x", at, at); err != nil {
				t.Fatal(err)
			}
			old := q(`INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at) VALUES (?, ?, ?, ?, ?, ?)`)
			if _, err := s.DB().Exec(old, before, uid, at, at, later, later); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().Exec(old, after, uid, at, at, later, later); err != nil {
				t.Fatalf("the previous release's insert on the migrated database: %v", err)
			}
			for _, id := range []uuid.UUID{before, after} {
				sess, err := s.SessionByID(ctx, id)
				if err != nil || sess.AAL != domain.AAL1 || len(sess.AMR) != 0 {
					t.Fatalf("session %s: %+v %v", id, sess, err)
				}
			}
		})
	}
}

// TestPruneMFA: pruning removes what multi-factor authentication leaves
// behind (ceremonies that expired unfinished, enrolments never confirmed)
// and nothing that still counts.
func TestPruneMFA(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, sess, _ := newUser(t, s, "mfa-prune@example.com")
		old := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: "abandoned", CreatedAt: now.Add(-2 * time.Hour), TOTPSecret: []byte("sealed")}
		young := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: "in progress", CreatedAt: now, TOTPSecret: []byte("sealed")}
		kept := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorTOTP, Name: "confirmed", CreatedAt: now.Add(-2 * time.Hour), TOTPSecret: []byte("sealed")}
		// Confirming deletes every other pending enrolment, so the pending
		// ones start after it.
		if err := s.CreateFactor(ctx, kept); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConfirmFactor(ctx, domain.FactorChange{Factor: kept, SessionID: sess.ID, AAL: domain.AAL2, AMR: []string{"pwd", "otp", "mfa"}, Now: now}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []*domain.Factor{old, young} {
			if err := s.CreateFactor(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		expired := &domain.Challenge{Hash: hash([]byte("expired")), Kind: domain.ChallengePasskey, Data: []byte("{}"), CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}
		live := &domain.Challenge{Hash: hash([]byte("live")), Kind: domain.ChallengePasskey, Data: []byte("{}"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		for _, c := range []*domain.Challenge{expired, live} {
			if err := s.SaveChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		// Unconfirmed factors created before the cutoff go, one batch at a time.
		if n, err := s.Prune(ctx, domain.PruneMFAFactors, now.Add(-time.Minute), 1); err != nil || n != 1 {
			t.Fatalf("factors pruned: %d %v", n, err)
		}
		if n, err := s.Prune(ctx, domain.PruneMFAFactors, now.Add(-time.Minute), 10); err != nil || n != 0 {
			t.Fatalf("factors pruned again: %d %v", n, err)
		}
		if n, err := s.Prune(ctx, domain.PruneMFAChallenges, now, 10); err != nil || n != 1 {
			t.Fatalf("challenges pruned: %d %v", n, err)
		}
		fs, err := s.ListFactors(ctx, u.ID)
		if err != nil || len(fs) != 2 || fs[0].ID == old.ID || fs[1].ID == old.ID {
			t.Fatalf("factors left: %+v %v", fs, err)
		}
		if _, err := s.TakeChallenge(ctx, live.Hash, now); err != nil {
			t.Fatalf("the live challenge was pruned: %v", err)
		}
	})
}
