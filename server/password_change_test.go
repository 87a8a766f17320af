package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

func change(s *testutil.Server, access, current, next string) *client.ChangePasswordResponse {
	res, err := s.Client.ChangePasswordWithResponse(context.Background(),
		client.ChangePasswordJSONRequestBody{CurrentPassword: current, NewPassword: next}, testutil.Bearer(access))
	if err != nil {
		panic(err)
	}
	return res
}

func TestChangePassword(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		here := signup(t, s, "carol@example.com")
		there := login(s, "carol@example.com", goodPassword).JSON200
		flush(t, s, box)
		pending := resetMail(t, s, box, "carol@example.com")

		if r := change(s, here.AccessToken, "not my password", newPassword); r.StatusCode() != 401 || r.JSON401.Error != client.ErrorCodeInvalidCredentials {
			t.Fatalf("wrong current password: %d %s", r.StatusCode(), r.Body)
		}
		if r := change(s, here.AccessToken, goodPassword, "password"); r.StatusCode() != 400 || r.JSON400.Error != client.ErrorCodeWeakPassword {
			t.Fatalf("weak new password: %d %s", r.StatusCode(), r.Body)
		}
		if r := change(s, here.AccessToken, goodPassword, newPassword); r.StatusCode() != http.StatusNoContent {
			t.Fatalf("change: %d %s", r.StatusCode(), r.Body)
		}
		// This session lives on...
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(here.AccessToken)); me.StatusCode() != 200 {
			t.Fatalf("current session after change: %d", me.StatusCode())
		}
		if r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: here.RefreshToken}); r.StatusCode() != 200 {
			t.Fatalf("current refresh token after change: %d", r.StatusCode())
		}
		// ...every other one is revoked.
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(there.AccessToken)); me.StatusCode() != 401 {
			t.Fatalf("other session's access token: %d", me.StatusCode())
		}
		if r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: there.RefreshToken}); r.StatusCode() != 401 || r.JSON401.Error != client.ErrorCodeInvalidGrant {
			t.Fatalf("other session's refresh token: %d", r.StatusCode())
		}
		if r := login(s, "carol@example.com", newPassword); r.StatusCode() != 200 {
			t.Fatalf("login with the new password: %d", r.StatusCode())
		}
		if r := login(s, "carol@example.com", goodPassword); r.StatusCode() != 401 {
			t.Fatalf("login with the old password: %d", r.StatusCode())
		}
		// A reset link mailed before the change no longer works.
		if r := reset(s, pending, "attacker chosen passphrase"); r.StatusCode() != 400 {
			t.Fatalf("old reset link after a change: %d", r.StatusCode())
		}
		// No bearer: 401.
		res, _ := s.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: newPassword, NewPassword: goodPassword})
		if res.StatusCode() != 401 {
			t.Fatalf("without a token: %d", res.StatusCode())
		}
	})
}

func TestChangePasswordRateLimitedLikeLogin(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.LoginAccount = ratelimit.Rule{Burst: 3, Per: time.Minute}
	})
	tok := signup(t, s, "guess@example.com")
	for i := range 3 {
		if r := change(s, tok.AccessToken, "guess number "+string(rune('a'+i)), newPassword); r.StatusCode() != 401 {
			t.Fatalf("guess %d: %d", i, r.StatusCode())
		}
	}
	r := change(s, tok.AccessToken, goodPassword, newPassword)
	if r.StatusCode() != 429 || r.JSON429.Error != client.ErrorCodeRateLimited {
		t.Fatalf("after 3 wrong passwords: %d %s", r.StatusCode(), r.Body)
	}
	// The same budget guards login.
	if l := login(s, "guess@example.com", goodPassword); l.StatusCode() != 429 {
		t.Fatalf("login after 3 wrong passwords in change: %d", l.StatusCode())
	}
}
