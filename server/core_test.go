package server_test

import (
	"context"
	"net/http"
	"testing"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

const goodPassword = "correct horse battery staple"

// signup creates an account and marks its email verified (API keys need
// it); signupUnverified leaves it unverified.
func signup(t *testing.T, s *testutil.Server, email string) *client.SignupSession {
	t.Helper()
	tok := signupUnverified(t, s, email)
	s.MarkVerified(t, email)
	return tok
}

func signupUnverified(t *testing.T, s *testutil.Server, email string) *client.SignupSession {
	t.Helper()
	res, err := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: client.Email(email), Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != http.StatusCreated {
		t.Fatalf("signup: %d %s", res.StatusCode(), res.Body)
	}
	return signupSession(t, res)
}

// signupSession returns the session of a 201 signup answer, narrowed by
// its discriminator as a generated client would.
func signupSession(t *testing.T, res *client.SignupResponse) *client.SignupSession {
	t.Helper()
	if res.JSON201 == nil {
		t.Fatalf("signup: %d %s", res.StatusCode(), res.Body)
	}
	v, err := res.JSON201.ValueByDiscriminator()
	tok, ok := v.(client.SignupSession)
	if err != nil || !ok || tok.Status != client.SessionCreated {
		t.Fatalf("signup answered %T %v: %s", v, err, res.Body)
	}
	return &tok
}

func forEachDialect(t *testing.T, f func(t *testing.T, dialect string)) {
	for _, d := range testutil.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			f(t, d)
		})
	}
}

func TestSignupMeRefreshLogout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		tok := signup(t, s, "  Ada@Example.COM ")
		if tok.User.Email == nil || string(*tok.User.Email) != "ada@example.com" {
			t.Fatalf("email not normalised: %v", tok.User.Email)
		}
		me, err := s.Client.GetMeWithResponse(ctx, testutil.Bearer(tok.AccessToken))
		if err != nil || me.StatusCode() != 200 || me.JSON200.Id != tok.User.Id {
			t.Fatalf("me: %v %d %s", err, me.StatusCode(), me.Body)
		}
		ref, err := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
		if err != nil || ref.StatusCode() != 200 {
			t.Fatalf("refresh: %v %d %s", err, ref.StatusCode(), ref.Body)
		}
		if ref.JSON200.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate the refresh token")
		}
		out, err := s.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(ref.JSON200.AccessToken))
		if err != nil || out.StatusCode() != 204 {
			t.Fatalf("logout: %v %d %s", err, out.StatusCode(), out.Body)
		}
		me, _ = s.Client.GetMeWithResponse(ctx, testutil.Bearer(ref.JSON200.AccessToken))
		if me.StatusCode() != 401 || me.JSON401.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("me after logout: %d %s", me.StatusCode(), me.Body)
		}
	})
}
