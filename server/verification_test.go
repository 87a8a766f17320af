package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

func verify(s *testutil.Server, tok string) *client.VerifyEmailResponse {
	res, err := s.Client.VerifyEmailWithResponse(context.Background(), client.VerifyEmailJSONRequestBody{Token: tok})
	if err != nil {
		panic(err)
	}
	return res
}

func TestEmailVerification(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		tok := signupUnverified(t, s, "eve@example.com")
		if tok.User.EmailVerified {
			t.Fatal("verified at signup")
		}
		// GET /auth/me caches the user; the verification below must show
		// at once all the same (the service's user cache forgets a user
		// this instance changes).
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(tok.AccessToken)); me.StatusCode() != 200 || me.JSON200.EmailVerified {
			t.Fatalf("me before verify: %d %s", me.StatusCode(), me.Body)
		}
		msgs := flush(t, s, box)
		if len(msgs) != 1 || msgs[0].To != "eve@example.com" || !strings.Contains(msgs[0].Subject, "Confirm") {
			t.Fatalf("signup mails: %d", len(msgs))
		}
		if !strings.Contains(msgs[0].Text, "http://127.0.0.1:8080/verify-email#token=") {
			t.Fatalf("default verification link:\n%s", msgs[0].Text)
		}
		vt := tokenIn(t, msgs[0])
		// A verification token is not a reset token, nor the other way round.
		if r := reset(s, vt, newPassword); r.StatusCode() != 400 {
			t.Fatalf("verification token used for a reset: %d", r.StatusCode())
		}
		if r := verify(s, vt); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
		}
		me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(tok.AccessToken))
		if me.StatusCode() != 200 || !me.JSON200.EmailVerified {
			t.Fatalf("me after verify: %d %s", me.StatusCode(), me.Body)
		}
		if r := verify(s, vt); r.StatusCode() != 400 || r.JSON400.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("verify twice: %d %s", r.StatusCode(), r.Body)
		}
		if r := verify(s, "not-a-token"); r.StatusCode() != 400 || r.JSON400.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("garbage: %d %s", r.StatusCode(), r.Body)
		}
		// Verified: resend queues nothing.
		rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(tok.AccessToken))
		if rs.StatusCode() != 202 || rs.JSON202.Status != client.AcceptedStatusAccepted {
			t.Fatalf("resend: %d %s", rs.StatusCode(), rs.Body)
		}
		if msgs := flush(t, s, box); len(msgs) != 0 {
			t.Fatalf("%d mails for a verified address", len(msgs))
		}
	})
}

func TestVerificationExpiresAndResend(t *testing.T) {
	s := testutil.Start(t, "sqlite")
	box := &mailbox{}
	ctx := context.Background()
	tok := signupUnverified(t, s, "late@example.com")
	old := tokenIn(t, flush(t, s, box)[0])
	s.Clock.Advance(48*time.Hour + time.Second)
	if r := verify(s, old); r.StatusCode() != 400 {
		t.Fatalf("expired verification token: %d", r.StatusCode())
	}
	// The access token expired too: log in again, then ask for a new mail.
	fresh := login(s, "late@example.com", goodPassword).JSON200
	rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(fresh.AccessToken))
	if rs.StatusCode() != 202 {
		t.Fatalf("resend: %d %s", rs.StatusCode(), rs.Body)
	}
	msgs := flush(t, s, box)
	if len(msgs) != 1 {
		t.Fatalf("%d mails after resend", len(msgs))
	}
	if r := verify(s, tokenIn(t, msgs[0])); r.StatusCode() != 204 {
		t.Fatalf("verify: %d", r.StatusCode())
	}
	// Without a session: 401.
	rs, _ = s.Client.ResendVerificationWithResponse(ctx)
	if rs.StatusCode() != 401 {
		t.Fatalf("resend without a token: %d", rs.StatusCode())
	}
	_ = tok
}

func TestResendVerificationLimitedPerUser(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.ResendUser = ratelimit.Rule{Burst: 1, Per: time.Minute}
	})
	box := &mailbox{}
	tok := signupUnverified(t, s, "spam@example.com")
	flush(t, s, box)
	ctx := context.Background()
	if rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(tok.AccessToken)); rs.StatusCode() != 202 {
		t.Fatalf("first resend: %d", rs.StatusCode())
	}
	rs, _ := s.Client.ResendVerificationWithResponse(ctx, testutil.Bearer(tok.AccessToken))
	if rs.StatusCode() != 429 || rs.JSON429.Error != client.ErrorCodeRateLimited {
		t.Fatalf("second resend: %d %s", rs.StatusCode(), rs.Body)
	}
	if msgs := flush(t, s, box); len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
}

func TestVerifyLimitedPerIP(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.VerifyIP = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	for range 2 {
		verify(s, strings.Repeat("B", 43))
	}
	if r := verify(s, strings.Repeat("B", 43)); r.StatusCode() != 429 {
		t.Fatalf("over the limit: %d", r.StatusCode())
	}
}

func TestLoginRequiresVerifiedEmail(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.RequireVerifiedEmail = true })
		box := &mailbox{}
		// Signup creates the account but opens no session: login would refuse one.
		su, err := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: "strict@example.com", Password: goodPassword})
		if err != nil || su.StatusCode() != 202 || su.JSON202 == nil {
			t.Fatalf("signup with verification required: %v %d %s", err, su.StatusCode(), su.Body)
		}
		if p, err := su.JSON202.AsSignupPending(); err != nil || p.Status != client.VerificationRequired || p.User.Email == nil || *p.User.Email != "strict@example.com" {
			t.Fatalf("signup with verification required: %v %d %s", err, su.StatusCode(), su.Body)
		}
		if strings.Contains(string(su.Body), "token") {
			t.Fatalf("signup handed out a token before verification: %s", su.Body)
		}
		var sessions int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&sessions); err != nil || sessions != 0 {
			t.Fatalf("%d sessions after signup (%v)", sessions, err)
		}
		vt := tokenIn(t, flush(t, s, box)[0])
		// The right password on an unverified account: 403 email_not_verified.
		r := login(s, "strict@example.com", goodPassword)
		if r.StatusCode() != 403 || r.JSON403.Error != client.ErrorCodeEmailNotVerified {
			t.Fatalf("unverified login: %d %s", r.StatusCode(), r.Body)
		}
		// A wrong password learns nothing about verification.
		r = login(s, "strict@example.com", "not the password at all")
		if r.StatusCode() != 401 || r.JSON401.Error != client.ErrorCodeInvalidCredentials {
			t.Fatalf("wrong password: %d %s", r.StatusCode(), r.Body)
		}
		if v := verify(s, vt); v.StatusCode() != 204 {
			t.Fatalf("verify: %d", v.StatusCode())
		}
		if r := login(s, "strict@example.com", goodPassword); r.StatusCode() != 200 || !r.JSON200.User.EmailVerified {
			t.Fatalf("verified login: %d %s", r.StatusCode(), r.Body)
		}
	})
}

func TestNoMailWhenMailIsOff(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) { c.Recovery.MailTransport = app.MailNone })
	if s.App.Mail != nil {
		t.Fatal("a mail worker with mail off")
	}
	signupUnverified(t, s, "quiet@example.com")
	forgot(t, s, "quiet@example.com")
	s.App.Service.WaitBackground()
	var n int
	if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM mail_outbox`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d mails queued with mail off (%v)", n, err)
	}
}
