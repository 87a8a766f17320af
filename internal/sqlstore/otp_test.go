package sqlstore_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/sqlstore"
)

func newOTP(email string, createUser bool, at time.Time) (*domain.OTPChallenge, []byte) {
	raw := randBytes()
	return &domain.OTPChallenge{ID: uuid.New(), Email: email, TokenHash: hash(raw), CodeHash: randBytes(), CreateUser: createUser,
		CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}, raw
}

func otpMail(email string, at time.Time) *domain.OutboxMessage {
	exp := at.Add(10 * time.Minute)
	return &domain.OutboxMessage{ID: uuid.New(), Template: domain.MailOTP, Recipient: email, Payload: []byte("sealed"),
		CreatedAt: at, NextAttemptAt: at, ExpiresAt: &exp}
}

// TestOTPChallenges: one challenge per address (a new one replaces it), a
// link spent once, wrong codes taken atomically up to the maximum, and the
// account created only when asked, its email verified.
func TestOTPChallenges(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		u, _, _ := newUser(t, s, "otp@example.com")
		first, raw1 := newOTP(u.Email, false, now)
		second, raw2 := newOTP(u.Email, false, now)
		for _, c := range []*domain.OTPChallenge{first, second} {
			if err := s.CreateOTPChallenge(ctx, c, otpMail(u.Email, now)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.RedeemOTP(ctx, domain.OTPRedeem{TokenHash: hash(raw1), Now: now}); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("the replaced challenge's link: %v", err)
		}
		res, err := s.RedeemOTP(ctx, domain.OTPRedeem{TokenHash: hash(raw2), Now: now})
		if err != nil || res.User.ID != u.ID || !res.User.EmailVerified || res.User.VerifiedAt == nil || !res.Verified || res.Created {
			t.Fatalf("redeem: %v %+v", err, res)
		}
		if _, err := s.RedeemOTP(ctx, domain.OTPRedeem{TokenHash: hash(raw2), Now: now}); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("the link again: %v", err)
		}

		// Concurrent wrong codes take at most the maximum; then even the
		// right one is refused.
		c, _ := newOTP(u.Email, false, now)
		if err := s.CreateOTPChallenge(ctx, c, otpMail(u.Email, now)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		checked := 0
		var wg sync.WaitGroup
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RedeemOTP(ctx, domain.OTPRedeem{Email: u.Email, Now: now, Check: func(*domain.OTPChallenge) bool {
					mu.Lock()
					checked++
					mu.Unlock()
					return false
				}})
				if !domain.IsCode(err, domain.CodeInvalidToken) {
					t.Errorf("wrong code: %v", err)
				}
			}()
		}
		wg.Wait()
		if checked != domain.OTPMaxAttempts {
			t.Fatalf("%d codes checked, want %d", checked, domain.OTPMaxAttempts)
		}
		right := func(x *domain.OTPChallenge) bool { return bytes.Equal(x.CodeHash, c.CodeHash) }
		if _, err := s.RedeemOTP(ctx, domain.OTPRedeem{Email: u.Email, Now: now, Check: right}); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("the right code after the maximum: %v", err)
		}

		// Without create_user an unknown address signs nobody in; with it
		// the account is created, verified.
		nobody, _ := newOTP("nobody@example.com", false, now)
		if err := s.CreateOTPChallenge(ctx, nobody, otpMail(nobody.Email, now)); err != nil {
			t.Fatal(err)
		}
		newUser := &domain.User{ID: uuid.New(), CreatedAt: now, UpdatedAt: now}
		if _, err := s.RedeemOTP(ctx, domain.OTPRedeem{Email: nobody.Email, Now: now, NewUser: newUser,
			Check: func(x *domain.OTPChallenge) bool { return bytes.Equal(x.CodeHash, nobody.CodeHash) }}); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("unknown address without create_user: %v", err)
		}
		if _, err := s.UserByEmail(ctx, nobody.Email); !domain.IsCode(err, domain.CodeNotFound) {
			t.Fatalf("an account was created: %v", err)
		}
		fresh, _ := newOTP("fresh@example.com", true, now)
		if err := s.CreateOTPChallenge(ctx, fresh, otpMail(fresh.Email, now)); err != nil {
			t.Fatal(err)
		}
		res, err = s.RedeemOTP(ctx, domain.OTPRedeem{Email: fresh.Email, Now: now, NewUser: newUser,
			Check: func(x *domain.OTPChallenge) bool { return bytes.Equal(x.CodeHash, fresh.CodeHash) }})
		if err != nil || !res.Created || res.User.ID != newUser.ID || res.User.Email != fresh.Email || !res.User.EmailVerified {
			t.Fatalf("create_user: %v %+v", err, res)
		}

		// An expired challenge is refused.
		late, rawLate := newOTP(u.Email, false, now)
		if err := s.CreateOTPChallenge(ctx, late, otpMail(u.Email, now)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemOTP(ctx, domain.OTPRedeem{TokenHash: hash(rawLate), Now: late.ExpiresAt}); !domain.IsCode(err, domain.CodeInvalidToken) {
			t.Fatalf("expired: %v", err)
		}
	})
}
