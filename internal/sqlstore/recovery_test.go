package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

func newToken(u *domain.User, purpose string, at time.Time, ttl time.Duration) (*domain.RecoveryToken, []byte) {
	raw := randBytes()
	return &domain.RecoveryToken{ID: uuid.New(), UserID: u.ID, Purpose: purpose, Hash: hash(raw), Email: u.Email,
		CreatedAt: at, ExpiresAt: at.Add(ttl)}, raw
}

func newMail(u *domain.User, at time.Time) *domain.OutboxMessage {
	uid := u.ID
	exp := at.Add(time.Hour)
	return &domain.OutboxMessage{ID: uuid.New(), Template: domain.PurposePasswordReset, Recipient: u.Email, UserID: &uid,
		Payload: []byte("sealed"), CreatedAt: at, NextAttemptAt: at, ExpiresAt: &exp}
}

// resetPassword, verifyEmail and changePassword drive the store with the
// changes the service's recovery rules decide (service.Recovery).
func resetPassword(ctx context.Context, s *sqlstore.Store, h []byte, phc string, at time.Time) (*domain.CredentialResult, error) {
	return s.RedeemRecoveryToken(ctx, domain.PurposePasswordReset, h, at, func(t *domain.RecoveryToken) domain.CredentialChange {
		return domain.CredentialChange{PasswordHash: phc, VerifyEmail: t.Email, SpendTokens: []string{domain.PurposePasswordReset},
			RevokeSessions: true, RevokeAPIKeys: true}
	})
}

func verifyEmail(ctx context.Context, s *sqlstore.Store, h []byte, at time.Time) (uuid.UUID, error) {
	res, err := s.RedeemRecoveryToken(ctx, domain.PurposeVerifyEmail, h, at, func(t *domain.RecoveryToken) domain.CredentialChange {
		return domain.CredentialChange{VerifyEmail: t.Email, IfEmail: t.Email, SpendTokens: []string{domain.PurposeVerifyEmail}}
	})
	if err != nil {
		return uuid.Nil, err
	}
	return res.UserID, nil
}

func changePassword(ctx context.Context, s *sqlstore.Store, userID uuid.UUID, old, phc string, keep uuid.UUID, revokeKeys bool, at time.Time) ([]uuid.UUID, []domain.APIKey, error) {
	res, err := s.ChangeCredentials(ctx, userID, domain.CredentialChange{PasswordHash: phc, IfPasswordHash: old,
		SpendTokens: []string{domain.PurposePasswordReset}, RevokeSessions: true, KeepSession: keep, RevokeAPIKeys: revokeKeys}, at)
	if err != nil {
		return nil, nil, err
	}
	return res.Revoked, res.RevokedKeys, nil
}

func TestPasswordReset(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, sess, raw := newUser(t, s, "reset@example.com")
		other := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, other, &domain.RefreshToken{ID: uuid.New(), SessionID: other.ID, Hash: hash(randBytes()), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		t1, raw1 := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		t2, raw2 := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		v, rawV := newToken(u, domain.PurposeVerifyEmail, now, time.Hour)
		for _, tk := range []*domain.RecoveryToken{t1, t2, v} {
			if err := s.CreateRecoveryToken(ctx, tk, newMail(u, now)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.RecoveryToken(ctx, domain.PurposePasswordReset, hash(raw1), now); err != nil {
			t.Fatal(err)
		}
		// A token of another purpose is not a reset token.
		if _, err := s.RecoveryToken(ctx, domain.PurposePasswordReset, hash(rawV), now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("verify token as reset token: %v", err)
		}
		if _, err := resetPassword(ctx, s, hash(rawV), "$new", now); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("reset with a verify token: %v", err)
		}
		// Expired.
		if _, err := resetPassword(ctx, s, hash(raw1), "$new", now.Add(time.Hour)); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("expired: %v", err)
		}
		res, err := resetPassword(ctx, s, hash(raw1), "$new", now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res.UserID != u.ID || len(res.Revoked) != 2 {
			t.Fatalf("result %+v", res)
		}
		got, _ := s.UserByID(ctx, u.ID)
		if got.PasswordHash != "$new" || !got.EmailVerified {
			t.Fatalf("user after reset: %+v", got)
		}
		if s, _ := s.SessionByID(ctx, sess.ID); s.RevokedAt == nil {
			t.Fatal("session not revoked")
		}
		if _, err := rotateErr(s, raw); !domain.IsCode(err, domain.CodeInvalidGrant) {
			t.Fatalf("refresh after reset: %v", err)
		}
		// Used, and every other reset token spent with it.
		for _, r := range [][]byte{raw1, raw2} {
			if _, err := resetPassword(ctx, s, hash(r), "$newer", now.Add(2*time.Minute)); !domain.IsCode(err, domain.CodeInvalidToken) {
				t.Fatalf("second use: %v", err)
			}
		}
		// The verification token is another purpose and stays usable.
		if uid, err := verifyEmail(ctx, s, hash(rawV), now.Add(time.Minute)); err != nil || uid != u.ID {
			t.Fatalf("verify: %v", err)
		}
		if _, err := verifyEmail(ctx, s, hash(rawV), now.Add(time.Minute)); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("verify twice: %v", err)
		}
	})
}

func rotateErr(s *sqlstore.Store, raw []byte) (*domain.RotateResult, error) {
	res, _, err := rotate(s, raw, now.Add(time.Minute))
	return res, err
}

func TestVerificationOnlyForTheAddressItWasSentTo(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "first@example.com")
		v, raw := newToken(u, domain.PurposeVerifyEmail, now, time.Hour)
		v.Email = "other@example.com"
		if err := s.CreateRecoveryToken(ctx, v, newMail(u, now)); err != nil {
			t.Fatal(err)
		}
		if _, err := verifyEmail(ctx, s, hash(raw), now); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("verified another address: %v", err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.EmailVerified {
			t.Fatal("verified")
		}
		// The change did not apply, so the token was not spent either.
		if _, err := s.RecoveryToken(ctx, domain.PurposeVerifyEmail, hash(raw), now); err != nil {
			t.Fatalf("a token whose change did not apply was spent: %v", err)
		}
	})
}

func TestCreateUserWithMailIsAtomic(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "taken@example.com")
		dup := &domain.User{ID: uuid.New(), Email: u.Email, PasswordHash: "$x", CreatedAt: now, UpdatedAt: now}
		sess := &domain.Session{ID: uuid.New(), UserID: dup.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		tk, _ := newToken(dup, domain.PurposeVerifyEmail, now, time.Hour)
		err := s.CreateUserWithMail(ctx, dup, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash(randBytes()), CreatedAt: now}, tk, newMail(dup, now))
		if !domain.IsCode(err, domain.CodeEmailTaken) {
			t.Fatalf("duplicate: %v", err)
		}
		if msgs, _ := s.ClaimMail(ctx, now, time.Minute, 10, 5); len(msgs) != 0 {
			t.Fatalf("the mail of a failed signup was queued: %d", len(msgs))
		}
	})
}

func TestConcurrentResetsOfOneTokenHaveOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "race@example.com")
		tk, raw := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		if err := s.CreateRecoveryToken(ctx, tk, newMail(u, now)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[domain.Code]int{}
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := resetPassword(ctx, s, hash(raw), "$p"+string(rune('a'+i)), now.Add(time.Second))
				mu.Lock()
				codes[domain.ErrorCode(err)]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if codes[""] != 1 || codes[domain.CodeInvalidToken] != 19 {
			t.Fatalf("outcomes %v, want 1 success and 19 invalid_token", codes)
		}
	})
}

func TestChangePasswordKeepsOneSession(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, keep, _ := newUser(t, s, "change@example.com")
		other := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		_ = s.CreateSession(ctx, other, &domain.RefreshToken{ID: uuid.New(), SessionID: other.ID, Hash: hash(randBytes()), CreatedAt: now})
		tk, raw := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		_ = s.CreateRecoveryToken(ctx, tk, newMail(u, now))
		if _, _, err := changePassword(ctx, s, u.ID, "$wrong-old", "$new", keep.ID, false, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("stale old hash: %v", err)
		}
		ids, _, err := changePassword(ctx, s, u.ID, u.PasswordHash, "$new", keep.ID, false, now)
		if err != nil || len(ids) != 1 || ids[0] != other.ID {
			t.Fatalf("revoked %v, %v", ids, err)
		}
		if k, _ := s.SessionByID(ctx, keep.ID); k.RevokedAt != nil {
			t.Fatal("the current session was revoked")
		}
		if _, err := resetPassword(ctx, s, hash(raw), "$x", now); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("a reset token outlived a password change: %v", err)
		}
	})
}

func TestOutboxClaims(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "mail@example.com")
		m := newMail(u, now)
		if err := s.EnqueueMail(ctx, m); err != nil {
			t.Fatal(err)
		}
		later := newMail(u, now)
		later.NextAttemptAt = now.Add(time.Hour)
		_ = s.EnqueueMail(ctx, later)

		got, err := s.ClaimMail(ctx, now, time.Minute, 10, 3)
		if err != nil || len(got) != 1 || got[0].ID != m.ID || got[0].Attempts != 1 || string(got[0].Payload) != "sealed" {
			t.Fatalf("claim: %+v %v", got, err)
		}
		c1 := got[0].ClaimID
		// Leased: nobody else gets it until the lease ends.
		if again, _ := s.ClaimMail(ctx, now.Add(30*time.Second), time.Minute, 10, 3); len(again) != 0 {
			t.Fatalf("claimed twice: %+v", again)
		}
		// The lease ran out (the worker died): another claim takes it.
		got, _ = s.ClaimMail(ctx, now.Add(61*time.Second), time.Minute, 10, 3)
		if len(got) != 1 || got[0].Attempts != 2 || got[0].ClaimID == c1 {
			t.Fatalf("reclaim: %+v", got)
		}
		c2 := got[0].ClaimID
		// The first worker's claim is over: it cannot settle the row.
		if err := s.MarkMailSent(ctx, m.ID, c1, now); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("stale claim settled: %v", err)
		}
		retry := now.Add(2 * time.Minute)
		if err := s.MarkMailFailed(ctx, m.ID, c2, now.Add(62*time.Second), "421 try later", &retry); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimMail(ctx, now.Add(90*time.Second), time.Minute, 10, 3); len(got) != 0 {
			t.Fatalf("claimed before its retry time: %+v", got)
		}
		got, _ = s.ClaimMail(ctx, retry, time.Minute, 10, 3)
		if len(got) != 1 || got[0].Attempts != 3 {
			t.Fatalf("retry claim: %+v", got)
		}
		if err := s.MarkMailSent(ctx, m.ID, got[0].ClaimID, retry); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkMailSent(ctx, m.ID, got[0].ClaimID, retry); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("sent twice: %v", err)
		}
		var payload []byte
		var sent bool
		if err := s.DB().QueryRow(`SELECT payload, sent_at IS NOT NULL FROM mail_outbox WHERE id = '`+m.ID.String()+`'`).Scan(&payload, &sent); err != nil {
			t.Fatal(err)
		}
		if payload != nil || !sent {
			t.Fatalf("after sending: payload %q, sent %v", payload, sent)
		}
	})
}

func TestOutboxAbandonsAfterMaxAttempts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "bounce@example.com")
		m := newMail(u, now)
		_ = s.EnqueueMail(ctx, m)
		got, _ := s.ClaimMail(ctx, now, time.Minute, 10, 1)
		if len(got) != 1 {
			t.Fatal("not claimed")
		}
		if err := s.MarkMailFailed(ctx, m.ID, got[0].ClaimID, now, "550 no such user", nil); err != nil {
			t.Fatal(err)
		}
		// A worker that died during the last attempt: the row is abandoned
		// once its lease ends, never claimed again.
		crashed := newMail(u, now)
		_ = s.EnqueueMail(ctx, crashed)
		if got, _ := s.ClaimMail(ctx, now, time.Minute, 10, 1); len(got) != 1 || got[0].ID != crashed.ID {
			t.Fatalf("claim: %+v", got)
		}
		if got, _ := s.ClaimMail(ctx, now.Add(2*time.Minute), time.Minute, 10, 1); len(got) != 0 {
			t.Fatalf("claimed past its attempts: %+v", got)
		}
		rows, err := s.DB().Query(`SELECT last_error, payload IS NULL, failed_at IS NOT NULL FROM mail_outbox ORDER BY last_error`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var errs []string
		for rows.Next() {
			var e string
			var wiped, failed bool
			if err := rows.Scan(&e, &wiped, &failed); err != nil {
				t.Fatal(err)
			}
			if !wiped || !failed {
				t.Fatalf("%q: wiped %v failed %v", e, wiped, failed)
			}
			errs = append(errs, e)
		}
		if len(errs) != 2 || errs[0] != "550 no such user" || errs[1] == "" {
			t.Fatalf("errors %q", errs)
		}
	})
}

// Two stores on one database are two instances: their claims never
// overlap, so no message is handed out twice.
func TestConcurrentClaimersNeverShareAMessage(t *testing.T) {
	for _, d := range testutil.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			url := testutil.DatabaseURL(t, d)
			ctx := context.Background()
			var stores []*sqlstore.Store
			for range 2 {
				st, err := sqlstore.Open(ctx, url, testutil.StoreOptions(t, d, url))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := st.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				stores = append(stores, st)
			}
			u, _, _ := newUser(t, stores[0], "many@example.com")
			const n = 60
			for range n {
				if err := stores[0].EnqueueMail(ctx, newMail(u, now)); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := map[uuid.UUID]int{}
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st := stores[w%2]
					for {
						got, err := st.ClaimMail(ctx, now, time.Hour, 3, 5)
						if errors.Is(err, context.Canceled) || (err != nil && domain.IsCode(err, domain.CodeUnavailable)) {
							continue // SQLite busy: try again
						}
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, m := range got {
							seen[m.ID]++
						}
						mu.Unlock()
						for _, m := range got {
							if err := st.MarkMailSent(ctx, m.ID, m.ClaimID, now); err != nil {
								t.Error(err)
							}
						}
					}
				}()
			}
			wg.Wait()
			if len(seen) != n {
				t.Fatalf("%d messages claimed, want %d", len(seen), n)
			}
			for id, c := range seen {
				if c != 1 {
					t.Fatalf("message %s claimed %d times", id, c)
				}
			}
		})
	}
}

func TestPrune(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, live, liveRaw := newUser(t, s, "prune@example.com")
		// A revoked session with a family of 5 refresh tokens.
		dead := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		_ = s.CreateSession(ctx, dead, &domain.RefreshToken{ID: uuid.New(), SessionID: dead.ID, Hash: hash(randBytes()), CreatedAt: now})
		if err := s.RevokeSession(ctx, u.ID, dead.ID, now); err != nil {
			t.Fatal(err)
		}
		// The live session's spent tokens stay: they detect reuse.
		if _, _, err := rotate(s, liveRaw, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		used, _ := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		expired, _ := newToken(u, domain.PurposePasswordReset, now.Add(-2*time.Hour), time.Hour)
		fresh, freshRaw := newToken(u, domain.PurposePasswordReset, now, time.Hour)
		for _, tk := range []*domain.RecoveryToken{used, expired, fresh} {
			_ = s.CreateRecoveryToken(ctx, tk, newMail(u, now))
		}
		for i := range 7 {
			_ = s.RecordEvent(ctx, &domain.Event{ID: uuid.New(), Type: domain.EventLogout, UserID: &u.ID, CreatedAt: now.Add(-time.Duration(100+i) * 24 * time.Hour)})
		}
		_ = s.RecordEvent(ctx, &domain.Event{ID: uuid.New(), Type: domain.EventLogout, UserID: &u.ID, CreatedAt: now})

		// The cutoffs: rows that ended before now+1s, events older than 90
		// days, mails sent before now+2h.
		cut := map[string]time.Time{
			domain.PruneRefreshTokens: now.Add(time.Second), domain.PruneSessions: now.Add(time.Second),
			domain.PruneRecoveryTokens: now.Add(time.Second), domain.PruneEvents: now.Add(-90 * 24 * time.Hour),
			domain.PruneOutbox: now.Add(2 * time.Hour),
		}
		if _, err := s.DB().Exec(`UPDATE recovery_tokens SET used_at = created_at WHERE id = '` + used.ID.String() + `'`); err != nil {
			t.Fatal(err)
		}
		total := func(kind string, batch int) int {
			sum := 0
			for {
				n, err := s.Prune(ctx, kind, cut[kind], batch)
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if n > batch {
					t.Fatalf("%s: %d deleted with a batch of %d", kind, n, batch)
				}
				sum += n
				if n < batch {
					return sum
				}
			}
		}
		// A session is not deleted while it still has refresh tokens.
		if n, _ := s.Prune(ctx, domain.PruneSessions, cut[domain.PruneSessions], 10); n != 0 {
			t.Fatalf("deleted %d sessions that still have tokens", n)
		}
		if n := total(domain.PruneRefreshTokens, 1); n != 1 {
			t.Fatalf("refresh tokens pruned: %d", n)
		}
		if n := total(domain.PruneSessions, 1); n != 1 {
			t.Fatalf("sessions pruned: %d", n)
		}
		if n := total(domain.PruneRecoveryTokens, 1); n != 2 {
			t.Fatalf("recovery tokens pruned: %d", n)
		}
		if n := total(domain.PruneEvents, 3); n != 7 {
			t.Fatalf("events pruned: %d", n)
		}
		if _, err := s.SessionByID(ctx, dead.ID); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("dead session: %v", err)
		}
		if n := countTokens(t, s, live.ID); n != 2 {
			t.Fatalf("live session has %d tokens, want 2", n)
		}
		if _, err := s.RecoveryToken(ctx, domain.PurposePasswordReset, hash(freshRaw), now); err != nil {
			t.Fatalf("live token pruned: %v", err)
		}
		if ev, _ := s.ListEvents(ctx, u.ID, domain.EventCursor{}, 100); len(ev) != 1 {
			t.Fatalf("%d events left", len(ev))
		}
		// Outbox: only sent or abandoned messages go.
		got, _ := s.ClaimMail(ctx, now, time.Minute, 2, 5)
		for _, m := range got {
			_ = s.MarkMailSent(ctx, m.ID, m.ClaimID, now)
		}
		if n := total(domain.PruneOutbox, 1); n != len(got) || n != 2 {
			t.Fatalf("outbox pruned %d, sent %d", n, len(got))
		}
		if _, err := s.Prune(ctx, "users", now, 10); err == nil {
			t.Fatal("unknown kind accepted")
		}
	})
}

func TestClaimMailSendsAccountMailFirst(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "prio@example.com")
		org := uuid.New()
		// A flood of older invitations, then one reset mail.
		for i := range 5 {
			m := newMail(u, now.Add(-time.Hour+time.Duration(i)*time.Second))
			m.Template, m.Priority, m.OrgID = domain.MailInvitation, domain.MailPriorityNotification, &org
			if err := s.EnqueueMail(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		reset := newMail(u, now)
		if err := s.EnqueueMail(ctx, reset); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimMail(ctx, now, time.Minute, 1, 3)
		if err != nil || len(got) != 1 || got[0].ID != reset.ID {
			t.Fatalf("first claim: %+v %v, want the reset mail", got, err)
		}
		if n, err := s.CountMail(ctx, "", &org, now.Add(-2*time.Hour)); err != nil || n != 5 {
			t.Fatalf("the organization's mails: %d %v", n, err)
		}
		if n, err := s.CountMail(ctx, u.Email, nil, now.Add(-2*time.Hour)); err != nil || n != 6 {
			t.Fatalf("the recipient's mails: %d %v", n, err)
		}
	})
}
