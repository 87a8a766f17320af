package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchauth/latch/client"
)

// The SDK surfaces the second factor as a typed step: SignIn says which
// factors are pending, aal2-only operations fail with ErrMFARequired, and a
// verified code upgrades the Client's own session.
func TestSignInWithSecondFactor(t *testing.T) {
	l := start(t)
	ctx := context.Background()
	c, err := client.New(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignUp(ctx, "sofia@example.com", password); err != nil {
		t.Fatal(err)
	}
	en, err := c.MFA().EnrollTOTP(ctx, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	now := l.Clock.Now()
	code, _ := totp.GenerateCode(en.Secret, now)
	conf, err := c.MFA().ConfirmTOTP(ctx, en.Factor.Id, code)
	if err != nil || conf.RecoveryCodes == nil || len(*conf.RecoveryCodes) != 10 || conf.Tokens.Aal != client.Aal2 {
		t.Fatalf("confirm: %v %+v", err, conf)
	}

	other, err := client.New(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := other.SignIn(ctx, "sofia@example.com", password)
	if err != nil || res.MFA == nil || !res.MFA.Has(client.MFAFactorTypeTotp) || res.Tokens.Aal != client.Aal1 {
		t.Fatalf("sign in: %v %+v", err, res)
	}
	_, err = other.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Label: "ci", Scopes: []client.Scope{}})
	if !errors.Is(err, client.ErrMFARequired) {
		t.Fatalf("create a key at aal1: %v", err)
	}
	next, _ := totp.GenerateCode(en.Secret, now.Add(30*time.Second))
	prev, _ := totp.GenerateCode(en.Secret, now.Add(-30*time.Second))
	wrong := "000000"
	for wrong == code || wrong == next || wrong == prev {
		wrong = string(rune(wrong[0]+1)) + wrong[1:]
	}
	if _, err := other.MFA().VerifyTOTP(ctx, wrong); !errors.Is(err, client.ErrMFAVerificationFailed) {
		t.Fatalf("a wrong code: %v", err)
	}
	up, err := other.MFA().VerifyTOTP(ctx, next)
	if err != nil || up.Aal != client.Aal2 || up.SessionId != res.Tokens.SessionId {
		t.Fatalf("verify: %v %+v", err, up)
	}
	if _, err := other.CreateAPIKey(ctx, client.CreateAPIKeyRequest{Label: "ci", Scopes: []client.Scope{}}); err != nil {
		t.Fatalf("create a key at aal2 (the Client holds the new tokens): %v", err)
	}
	list, err := other.MFA().Factors(ctx)
	if err != nil || len(list.Factors) != 1 || list.Aal != client.Aal2 {
		t.Fatalf("factors: %v %+v", err, list)
	}
	codes, err := other.MFA().RegenerateRecoveryCodes(ctx)
	if err != nil || len(codes) != 10 {
		t.Fatalf("regenerate: %v %d", err, len(codes))
	}
	if err := other.MFA().RemoveFactor(ctx, en.Factor.Id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if res, err := other.SignIn(ctx, "sofia@example.com", password); err != nil || res.MFA != nil {
		t.Fatalf("sign in without factors: %v %+v", err, res)
	}
}
