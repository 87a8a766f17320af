package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
)

// The storage contract: every test here runs on SQLite and on PostgreSQL,
// each on a fresh database.
func forEachStore(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	forEachStoreWith(t, false, f)
}

// forEachRotationPath runs f like forEachStore, and on PostgreSQL once more
// with every rotation run alone (sqlstore.Options.NoRotateBatch), so that
// both paths of RotateRefreshToken meet the same contract. SQLite always
// rotates alone.
func forEachRotationPath(t *testing.T, f func(t *testing.T, s *sqlstore.Store)) {
	forEachStoreWith(t, false, f)
	t.Run("alone", func(t *testing.T) { forEachStoreWith(t, true, f) })
}

func forEachStoreWith(t *testing.T, alone bool, f func(t *testing.T, s *sqlstore.Store)) {
	for _, d := range testutil.Dialects {
		if alone && d == "sqlite" {
			continue
		}
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			u := testutil.DatabaseURL(t, d)
			opt := testutil.StoreOptions(t, d, u)
			opt.NoRotateBatch = alone
			s, err := sqlstore.Open(context.Background(), u, opt)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatalf("second migrate: %v", err)
			}
			f(t, s)
		})
	}
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func hash(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func randBytes() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func newUser(t *testing.T, s *sqlstore.Store, email string) (*domain.User, *domain.Session, []byte) {
	t.Helper()
	u := &domain.User{ID: uuid.New(), Email: email, PasswordHash: "$argon2id$x", CreatedAt: now, UpdatedAt: now}
	sess := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour), IP: "127.0.0.1", UserAgent: "test"}
	raw := randBytes()
	rt := &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash(raw), CreatedAt: now}
	if err := s.CreateUser(context.Background(), u, sess, rt); err != nil {
		t.Fatal(err)
	}
	return u, sess, raw
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "ada@example.com")
		got, err := s.UserByEmail(ctx, "ada@example.com")
		if err != nil || got.ID != u.ID || !got.CreatedAt.Equal(now) {
			t.Fatalf("UserByEmail = %+v, %v", got, err)
		}
		if _, err := s.UserByEmail(ctx, "nobody@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("unknown email: %v", err)
		}
		if _, err := s.UserByID(ctx, uuid.New()); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("unknown id: %v", err)
		}
		u2 := &domain.User{ID: uuid.New(), Email: "ada@example.com", CreatedAt: now, UpdatedAt: now}
		sess := &domain.Session{ID: uuid.New(), UserID: u2.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now, AbsoluteExpiresAt: now}
		if err := s.CreateUser(ctx, u2, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: randBytes(), CreatedAt: now}); domain.ErrorCode(err) != domain.CodeEmailTaken {
			t.Fatalf("duplicate email: %v", err)
		}
		if _, err := s.SessionByID(ctx, sess.ID); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatal("a failed signup left its session behind")
		}
		if err := s.SetPasswordHash(ctx, u.ID, "$argon2id$x", "$argon2id$y", now); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordHash(ctx, u.ID, "$argon2id$x", "$argon2id$z", now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("stale compare-and-set succeeded: %v", err)
		}
		got, _ = s.UserByID(ctx, u.ID)
		if got.PasswordHash != "$argon2id$y" {
			t.Fatalf("hash = %q", got.PasswordHash)
		}
	})
}

func TestConcurrentSignupsOfOneEmail(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		var wg sync.WaitGroup
		results := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := &domain.User{ID: uuid.New(), Email: "race@example.com", CreatedAt: now, UpdatedAt: now}
				sess := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now, AbsoluteExpiresAt: now}
				results <- s.CreateUser(context.Background(), u, sess, &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: randBytes(), CreatedAt: now})
			}()
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case domain.ErrorCode(err) != domain.CodeEmailTaken:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d signups succeeded, want 1", ok)
		}
	})
}

func rotate(s *sqlstore.Store, raw []byte, at time.Time) (*domain.RotateResult, []byte, error) {
	next := hash(append([]byte("next"), raw...))
	res, err := s.RotateRefreshToken(context.Background(), domain.RotateRequest{
		PresentedHash: hash(raw), SuccessorHash: hash(next), Now: at, IdleTTL: time.Hour, Grace: 10 * time.Second,
	})
	return res, next, err
}

func TestRotation(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, sess, raw := newUser(t, s, "rot@example.com")
		res, next, err := rotate(s, raw, now.Add(time.Minute))
		if err != nil || res.Outcome != domain.Rotated || res.User.ID != u.ID {
			t.Fatalf("rotate = %+v, %v", res, err)
		}
		if !res.Session.ExpiresAt.Equal(now.Add(time.Minute + time.Hour)) {
			t.Fatalf("idle expiry not moved: %v", res.Session.ExpiresAt)
		}
		// A retry of the same token within the grace window: same successor.
		res, _, err = rotate(s, raw, now.Add(time.Minute+5*time.Second))
		if err != nil || res.Outcome != domain.Replayed {
			t.Fatalf("replay = %+v, %v", res, err)
		}
		// The successor rotates normally.
		res, _, err = rotate(s, next, now.Add(2*time.Minute))
		if err != nil || res.Outcome != domain.Rotated {
			t.Fatalf("rotate successor = %+v, %v", res, err)
		}
		// The first token again, now two generations old: reuse revokes all.
		res, _, err = rotate(s, raw, now.Add(2*time.Minute+time.Second))
		if err != nil || res.Outcome != domain.ReuseDetected || res.Session.ID != sess.ID {
			t.Fatalf("reuse = %+v, %v", res, err)
		}
		got, _ := s.SessionByID(ctx, sess.ID)
		if got.RevokedAt == nil {
			t.Fatal("reuse did not revoke the session")
		}
		if _, _, err := rotate(s, next, now.Add(3*time.Minute)); domain.ErrorCode(err) != domain.CodeInvalidGrant {
			t.Fatalf("token of a revoked session: %v", err)
		}
		if _, _, err := rotate(s, randBytes(), now); domain.ErrorCode(err) != domain.CodeInvalidGrant {
			t.Fatalf("unknown token: %v", err)
		}
	})
}

func TestReplayOutsideGraceIsReuse(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		_, _, raw := newUser(t, s, "grace@example.com")
		if _, _, err := rotate(s, raw, now); err != nil {
			t.Fatal(err)
		}
		res, _, err := rotate(s, raw, now.Add(11*time.Second))
		if err != nil || res.Outcome != domain.ReuseDetected {
			t.Fatalf("late replay = %+v, %v", res, err)
		}
	})
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		_, _, raw := newUser(t, s, "idle@example.com")
		if _, _, err := rotate(s, raw, now.Add(time.Hour+time.Second)); domain.ErrorCode(err) != domain.CodeInvalidGrant {
			t.Fatalf("rotation after idle expiry: %v", err)
		}
		_, sess, raw2 := newUser(t, s, "abs@example.com")
		at := now
		for i := 0; i < 30; i++ { // keep using it every 50 minutes
			at = at.Add(50 * time.Minute)
			res, next, err := rotate(s, raw2, at)
			if at.After(sess.AbsoluteExpiresAt) || at.Equal(sess.AbsoluteExpiresAt) {
				if domain.ErrorCode(err) != domain.CodeInvalidGrant {
					t.Fatalf("rotation after absolute expiry: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rotation %d: %v", i, err)
			}
			if res.Session.ExpiresAt.After(sess.AbsoluteExpiresAt) {
				t.Fatal("idle expiry moved past the absolute expiry")
			}
			// The SQL rule and the Go rule agree.
			if want := domain.IdleExpiry(at, time.Hour, sess.AbsoluteExpiresAt); !res.Session.ExpiresAt.Equal(want) {
				t.Fatalf("idle expiry %v, want %v (domain.IdleExpiry)", res.Session.ExpiresAt, want)
			}
			raw2 = next
		}
		t.Fatal("the session never reached its absolute expiry")
	})
}

func TestRotationRaceHasOneWinner(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		_, sess, raw := newUser(t, s, "race@example.com")
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[domain.RotateOutcome]int{}
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, _, err := rotate(s, raw, now.Add(time.Second))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("rotation failed: %v", err)
					return
				}
				outcomes[res.Outcome]++
			}()
		}
		wg.Wait()
		if outcomes[domain.Rotated] != 1 || outcomes[domain.Replayed] != 49 {
			t.Fatalf("outcomes = %v, want 1 rotated and 49 replayed", outcomes)
		}
		if n := countTokens(t, s, sess.ID); n != 2 {
			t.Fatalf("%d tokens in the family, want 2", n)
		}
	})
}

func TestRotationRacingRevocation(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		for i := 0; i < 10; i++ {
			u, sess, raw := newUser(t, s, uuid.NewString()+"@example.com")
			var wg sync.WaitGroup
			var next []byte
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, next, _ = rotate(s, raw, now.Add(time.Second))
			}()
			go func() {
				defer wg.Done()
				if _, err := s.RevokeUserSessions(context.Background(), u.ID, uuid.Nil, now.Add(time.Second)); err != nil {
					t.Error(err)
				}
			}()
			wg.Wait()
			if _, _, err := rotate(s, next, now.Add(2*time.Second)); domain.ErrorCode(err) != domain.CodeInvalidGrant {
				t.Fatalf("a token minted in the race survived: %v", err)
			}
			got, _ := s.SessionByID(context.Background(), sess.ID)
			if got.RevokedAt == nil {
				t.Fatal("the session survived its revocation")
			}
		}
	})
}

func countTokens(t *testing.T, s *sqlstore.Store, sessionID uuid.UUID) int {
	t.Helper()
	n, err := s.CountRefreshTokens(context.Background(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, s1, _ := newUser(t, s, "sess@example.com")
		s2 := &domain.Session{ID: uuid.New(), UserID: u.ID, CreatedAt: now.Add(time.Second), LastUsedAt: now,
			ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour)}
		if err := s.CreateSession(ctx, s2, &domain.RefreshToken{ID: uuid.New(), SessionID: s2.ID, Hash: randBytes(), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		other, _, _ := newUser(t, s, "other@example.com")
		list, err := s.ListSessions(ctx, u.ID, now, nil, 1000)
		if err != nil || len(list) != 2 || list[0].ID != s2.ID {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if err := s.RevokeSession(ctx, other.ID, s1.ID, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("revoking another user's session: %v", err)
		}
		r, err := s.RenewSession(ctx, u.ID, s2.ID, now.Add(90*time.Minute-time.Second), time.Hour)
		if err == nil {
			t.Fatalf("renewed an idle-expired session: %+v", r)
		}
		r, err = s.RenewSession(ctx, u.ID, s2.ID, now.Add(30*time.Minute), 4*time.Hour)
		if err != nil || !r.ExpiresAt.Equal(s2.AbsoluteExpiresAt) {
			t.Fatalf("renew = %+v, %v (want capped at absolute)", r, err)
		}
		if _, err := s.RenewSession(ctx, other.ID, s2.ID, now, time.Hour); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("renewing another user's session: %v", err)
		}
		ids, err := s.RevokeUserSessions(ctx, u.ID, s2.ID, now)
		if err != nil || len(ids) != 1 || ids[0] != s1.ID {
			t.Fatalf("revoke others = %v, %v", ids, err)
		}
		if err := s.RevokeSession(ctx, u.ID, s2.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, u.ID, s2.ID, now); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("revoking twice: %v", err)
		}
		if list, _ := s.ListSessions(ctx, u.ID, now, nil, 1000); len(list) != 0 {
			t.Fatalf("revoked sessions listed: %+v", list)
		}
	})
}

func TestSigningKeysAndSecrets(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		k1 := domain.SigningKey{KID: "k1", Alg: "ES256", PrivatePEM: []byte("pem1"), CreatedAt: now}
		var wg sync.WaitGroup
		added := make(chan bool, 5)
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				k := k1
				k.KID = uuid.NewString()
				ok, err := s.EnsureSigningKey(ctx, k)
				if err != nil {
					t.Error(err)
				}
				added <- ok
			}(i)
		}
		wg.Wait()
		close(added)
		n := 0
		for ok := range added {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d first starts created a key, want 1", n)
		}
		if err := s.AddSigningKey(ctx, domain.SigningKey{KID: "k2", Alg: "ES256", PrivatePEM: []byte("pem2"), CreatedAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		keys, err := s.SigningKeys(ctx, now.Add(30*time.Minute))
		if err != nil || len(keys) != 2 || keys[0].KID != "k2" || keys[0].RetiredAt != nil || keys[1].RetiredAt == nil {
			t.Fatalf("keys = %+v, %v", keys, err)
		}
		if keys, _ := s.SigningKeys(ctx, now.Add(2*time.Hour)); len(keys) != 1 {
			t.Fatalf("long-retired key still loaded: %+v", keys)
		}
		a, err := s.Secret(ctx, "x", []byte("first"), now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Secret(ctx, "x", []byte("second"), now.Add(time.Hour))
		if string(a) != "first" || string(b) != "first" {
			t.Fatalf("secret = %q then %q", a, b)
		}
		// The secret is stamped with the caller's clock, not the wall clock.
		var stamp string
		if err := s.DB().QueryRow(`SELECT created_at FROM server_secrets WHERE name = 'x'`).Scan(&stamp); err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, stamp) // PostgreSQL's timestamptz
		if err != nil {
			at, err = time.Parse("2006-01-02 15:04:05.000000+00:00", stamp) // SQLite's text
		}
		if err != nil || !at.Equal(now) {
			t.Fatalf("secret created at %q (%v), want %v", stamp, err, now)
		}
	})
}

func TestEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		uid := uuid.New()
		for i := 0; i < 5; i++ {
			if err := s.RecordEvent(ctx, &domain.Event{ID: uuid.New(), Type: domain.EventLoginSucceeded, UserID: &uid,
				IP: "1.2.3.4", Detail: map[string]any{"i": i}, CreatedAt: now.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := s.ListEvents(ctx, uid, domain.EventCursor{}, 3)
		if err != nil || len(page) != 3 || page[0].Detail["i"].(float64) != 4 {
			t.Fatalf("page 1 = %+v, %v", page, err)
		}
		last := page[2]
		page, _ = s.ListEvents(ctx, uid, domain.EventCursor{CreatedAt: last.CreatedAt, ID: last.ID}, 3)
		if len(page) != 2 || page[0].Detail["i"].(float64) != 1 {
			t.Fatalf("page 2 = %+v", page)
		}
	})
}

func TestHealthWhenClosed(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		s.Close()
		if err := s.Ping(context.Background()); domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Fatalf("ping after close: %v", err)
		}
	})
}

// Rotations that arrive while the store closes, or after, are answered
// (with an error), never left waiting.
func TestRotationsDuringCloseAreAnswered(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		_, _, raw := newUser(t, s, "closing@example.com")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.RotateRefreshToken(ctx, domain.RotateRequest{
					PresentedHash: hash(append([]byte{byte(i)}, raw...)), SuccessorHash: hash(randBytes()),
					Now: now.Add(time.Second), IdleTTL: time.Hour, Grace: 10 * time.Second,
				})
			}()
			if i == len(errs)/2 {
				s.Close()
			}
		}
		wg.Wait()
		for i, err := range errs {
			if err == nil || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Fatalf("rotation %d around Close: %v (context: %v)", i, err, ctx.Err())
			}
		}
	})
}

// Many rotations at once, of different sessions and with every outcome
// mixed together (on PostgreSQL they share group-committed statements):
// each caller gets its own session and user and its own outcome, and a
// rotation whose statement fails takes nobody else's with it.
func TestConcurrentRotationsKeepTheirOwnOutcomes(t *testing.T) {
	forEachRotationPath(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const n = 48
		type acct struct {
			u    *domain.User
			sess *domain.Session
			raw  []byte // live token
			old  []byte // its spent predecessor, replayable within grace
		}
		accts := make([]acct, n)
		for i := range accts {
			u, sess, raw := newUser(t, s, fmt.Sprintf("many%d@example.com", i))
			_, next, err := rotate(s, raw, now.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			accts[i] = acct{u: u, sess: sess, raw: next, old: raw}
		}
		// Ended sessions: every fourth account's.
		for i := 3; i < n; i += 4 {
			if err := s.RevokeSession(ctx, accts[i].u.ID, accts[i].sess.ID, now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		at := now.Add(2 * time.Second)
		type outcome struct {
			res  *domain.RotateResult
			next []byte
			err  error
		}
		live := make([]outcome, n)
		replay := make([]outcome, n)
		unknown := make([]error, n)
		var collided error
		var wg sync.WaitGroup
		for i := range accts {
			wg.Add(3)
			go func() {
				defer wg.Done()
				live[i].res, live[i].next, live[i].err = rotate(s, accts[i].raw, at)
			}()
			go func() {
				defer wg.Done()
				// The predecessor, spent a second ago: a replay, or reuse
				// once the live token has rotated too.
				replay[i].res, replay[i].next, replay[i].err = rotate(s, accts[i].old, at)
			}()
			go func() {
				defer wg.Done()
				_, _, unknown[i] = rotate(s, randBytes(), at)
			}()
		}
		// A rotation whose successor hash is already stored: its insert
		// violates the unique index, which fails its statement.
		u, _, raw := newUser(t, s, "collide@example.com")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, collided = s.RotateRefreshToken(ctx, domain.RotateRequest{
				PresentedHash: hash(raw), SuccessorHash: hash(accts[0].old), Now: at, IdleTTL: time.Hour, Grace: 10 * time.Second,
			})
		}()
		wg.Wait()
		if collided == nil {
			t.Fatal("a rotation to an existing token hash succeeded")
		}
		for i, a := range accts {
			if unknown[i] == nil || domain.ErrorCode(unknown[i]) != domain.CodeInvalidGrant {
				t.Fatalf("unknown token %d: %v", i, unknown[i])
			}
			if i%4 == 3 {
				if domain.ErrorCode(live[i].err) != domain.CodeInvalidGrant || domain.ErrorCode(replay[i].err) != domain.CodeInvalidGrant {
					t.Fatalf("account %d: rotations of a revoked session: %v, %v", i, live[i].err, replay[i].err)
				}
				continue
			}
			// The live token rotates, whatever the replay did.
			r := live[i]
			if r.err != nil || r.res.Outcome != domain.Rotated || r.res.Session.ID != a.sess.ID || r.res.Session.UserID != a.u.ID {
				t.Fatalf("account %d: live rotation = %+v, %v", i, r.res, r.err)
			}
			if r.res.User.ID != uuid.Nil && r.res.User.ID != a.u.ID {
				t.Fatalf("account %d: rotation returned user %s, want %s", i, r.res.User.ID, a.u.ID)
			}
			if !r.res.Session.LastUsedAt.Equal(at) {
				t.Fatalf("account %d: session last used %v, want %v", i, r.res.Session.LastUsedAt, at)
			}
			// The replay got its successor back (the live token) when it
			// ran first, or was found to be reuse (which ends the session)
			// when it ran after the live token rotated. Either way no
			// second successor exists.
			switch {
			case replay[i].err == nil && replay[i].res.Outcome == domain.Replayed:
			case replay[i].err == nil && replay[i].res.Outcome == domain.ReuseDetected && replay[i].res.Session.RevokedAt != nil:
			default:
				t.Fatalf("account %d: replay = %+v, %v", i, replay[i].res, replay[i].err)
			}
			if c := countTokens(t, s, a.sess.ID); c != 3 {
				t.Fatalf("account %d: %d tokens after two rotations, want 3", i, c)
			}
		}
		// The colliding rotation left its token unspent.
		if res, _, err := rotate(s, raw, at); err != nil || res.Outcome != domain.Rotated || res.Session.UserID != u.ID {
			t.Fatalf("token of the failed rotation: %+v, %v", res, err)
		}
	})
}

// Instances that start together on one fresh PostgreSQL database all
// migrate it: every one succeeds, each migration is applied once, and the
// index built outside a transaction (CONCURRENTLY) ends up valid. (Goose
// already applied each migration once without its session lock in this
// test; the lock is there for the migrations that run outside a
// transaction, which no transaction serialises.)
func TestConcurrentMigrationsOnPostgres(t *testing.T) {
	for _, d := range testutil.Dialects {
		if d == "sqlite" {
			continue
		}
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			u := testutil.DatabaseURL(t, d)
			const n = 3
			stores := make([]*sqlstore.Store, n)
			for i := range stores {
				s, err := sqlstore.Open(ctx, u, testutil.StoreOptions(t, d, u))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				stores[i] = s
			}
			errs := make(chan error, n)
			for _, s := range stores {
				go func() { errs <- s.Migrate(ctx) }()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatalf("a concurrent migration failed: %v", err)
				}
			}
			inspect := u // through PgBouncer, the server itself: the catalogue is the same
			if o := testutil.StoreOptions(t, d, u); o.DirectURL != "" {
				inspect = o.DirectURL
			}
			db, err := sql.Open("postgres", inspect)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var valid bool
			err = db.QueryRowContext(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
				WHERE c.relname = 'outbound_events_created_idx'`).Scan(&valid)
			if err != nil || !valid {
				t.Fatalf("outbound_events_created_idx valid=%v: %v", valid, err)
			}
			// Each migration ran once: goose records a row per application.
			var twice int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT version_id FROM goose_db_version
				WHERE is_applied GROUP BY version_id HAVING count(*) > 1) d`).Scan(&twice); err != nil || twice != 0 {
				t.Fatalf("%d migrations applied more than once (%v)", twice, err)
			}
		})
	}
}
