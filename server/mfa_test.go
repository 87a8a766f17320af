package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp/totp"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/testutil"
)

// The origin of the ceremonies: testutil's public URL is
// http://127.0.0.1:8080, whose WebAuthn defaults are RP id localhost and
// this origin among others.
const webOrigin = "http://localhost:8080"

// tokenClaims decodes an access token's claims without checking it (the
// server checks it; the test reads what it carries).
func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// assurance returns a token's aal and amr.
func assurance(t *testing.T, tok string) (string, []string) {
	t.Helper()
	c := tokenClaims(t, tok)
	aal, _ := c["aal"].(string)
	var amr []string
	list, _ := c["amr"].([]any)
	for _, a := range list {
		s, _ := a.(string)
		amr = append(amr, s)
	}
	return aal, amr
}

func wantAssurance(t *testing.T, tok, aal string, amr ...string) {
	t.Helper()
	gotAAL, gotAMR := assurance(t, tok)
	if gotAAL != aal || !slices.Equal(gotAMR, amr) {
		t.Fatalf("token assurance = %s %v, want %s %v", gotAAL, gotAMR, aal, amr)
	}
}

// enrollTOTP enrols and confirms a TOTP factor for the session and returns
// the secret and the confirmation (aal2 tokens, recovery codes).
func enrollTOTP(t *testing.T, s *testutil.Server, access string) (string, *client.MFAEnrollment) {
	t.Helper()
	ctx := context.Background()
	name := "Phone"
	en, err := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{Name: &name}, testutil.Bearer(access))
	if err != nil || en.JSON201 == nil {
		t.Fatalf("enroll: %v %d %s", err, en.StatusCode(), en.Body)
	}
	if !strings.HasPrefix(en.JSON201.OtpauthUri, "otpauth://totp/") || !strings.HasPrefix(en.JSON201.QrCode, "data:image/png;base64,iVBOR") {
		t.Fatalf("enrolment: %+v", en.JSON201)
	}
	code, err := totp.GenerateCode(en.JSON201.Secret, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Client.ConfirmTOTPWithResponse(ctx, en.JSON201.Factor.Id, client.ConfirmTOTPJSONRequestBody{Code: code}, testutil.Bearer(access))
	if err != nil || c.JSON200 == nil {
		t.Fatalf("confirm: %v %d %s", err, c.StatusCode(), c.Body)
	}
	return en.JSON201.Secret, c.JSON200
}

func verifyCode(s *testutil.Server, access, method, code string) *client.VerifyMFAResponse {
	res, err := s.Client.VerifyMFAWithResponse(context.Background(),
		client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethod(method), Code: &code}, testutil.Bearer(access))
	if err != nil {
		panic(err)
	}
	return res
}

func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func wantError(t *testing.T, what string, status int, body []byte, code client.ErrorCode) {
	t.Helper()
	var e client.ErrorBody
	_ = json.Unmarshal(body, &e)
	if e.Error != code {
		t.Fatalf("%s: %d %s, want %s", what, status, body, code)
	}
}

// TOTP: enrolment needs a correct code, the login of a user with a factor
// is aal1 with the pending factors, a code upgrades the same session, a
// step of drift either way is accepted, a used code is refused, and a
// refresh keeps the level.
func TestMFATOTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		first := signup(t, s, "tina@example.com")
		wantAssurance(t, first.AccessToken, "aal1", "pwd")
		if first.Aal != client.Aal1 || first.Mfa != nil {
			t.Fatalf("signup without factors: aal %s mfa %v", first.Aal, first.Mfa)
		}

		en, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, testutil.Bearer(first.AccessToken))
		if en.JSON201 == nil || en.JSON201.Factor.Verified || en.JSON201.Factor.Name != "Authenticator app" {
			t.Fatalf("enroll: %d %s", en.StatusCode(), en.Body)
		}
		wrong := "000000"
		if wrong == totpAt(t, en.JSON201.Secret, s.Clock.Now()) {
			wrong = "111111"
		}
		c, _ := s.Client.ConfirmTOTPWithResponse(ctx, en.JSON201.Factor.Id, client.ConfirmTOTPJSONRequestBody{Code: wrong}, testutil.Bearer(first.AccessToken))
		wantError(t, "confirm with a wrong code", c.StatusCode(), c.Body, client.ErrorCodeMfaVerificationFailed)
		c, _ = s.Client.ConfirmTOTPWithResponse(ctx, en.JSON201.Factor.Id,
			client.ConfirmTOTPJSONRequestBody{Code: totpAt(t, en.JSON201.Secret, s.Clock.Now())}, testutil.Bearer(first.AccessToken))
		if c.JSON200 == nil || c.JSON200.RecoveryCodes == nil || len(*c.JSON200.RecoveryCodes) != 10 || !c.JSON200.Factor.Verified {
			t.Fatalf("confirm: %d %s", c.StatusCode(), c.Body)
		}
		if c.JSON200.Tokens.SessionId != first.SessionId || c.JSON200.Tokens.Aal != client.Aal2 {
			t.Fatalf("confirm upgrades the same session: %+v", c.JSON200.Tokens)
		}
		wantAssurance(t, c.JSON200.Tokens.AccessToken, "aal2", "pwd", "otp", "mfa")
		secret := en.JSON201.Secret

		// A login is aal1 with the factor pending.
		l := login(s, "tina@example.com", goodPassword)
		if l.JSON200 == nil || l.JSON200.Aal != client.Aal1 || l.JSON200.Mfa == nil || len(l.JSON200.Mfa.Factors) != 1 ||
			l.JSON200.Mfa.Factors[0].Type != client.MFAFactorTypeTotp {
			t.Fatalf("login of a user with a factor: %d %s", l.StatusCode(), l.Body)
		}
		aal1 := l.JSON200
		wantAssurance(t, aal1.AccessToken, "aal1", "pwd")
		// The code the enrolment used is spent (same step): refused.
		r := verifyCode(s, aal1.AccessToken, "totp", totpAt(t, secret, s.Clock.Now()))
		wantError(t, "replayed code", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		// Two steps ahead is too far; one step behind (drift) is accepted.
		s.Clock.Advance(2 * time.Minute)
		r = verifyCode(s, aal1.AccessToken, "totp", totpAt(t, secret, s.Clock.Now().Add(60*time.Second)))
		wantError(t, "code two steps ahead", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		r = verifyCode(s, aal1.AccessToken, "totp", totpAt(t, secret, s.Clock.Now().Add(-30*time.Second)))
		if r.JSON200 == nil || r.JSON200.SessionId != aal1.SessionId || r.JSON200.Aal != client.Aal2 {
			t.Fatalf("verify with a code one step behind: %d %s", r.StatusCode(), r.Body)
		}
		wantAssurance(t, r.JSON200.AccessToken, "aal2", "pwd", "otp", "mfa")
		// The old refresh token was replaced; the new one keeps aal2.
		ref, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: r.JSON200.RefreshToken})
		if ref.JSON200 == nil || ref.JSON200.Aal != client.Aal2 {
			t.Fatalf("refresh of an aal2 session: %d %s", ref.StatusCode(), ref.Body)
		}
		wantAssurance(t, ref.JSON200.AccessToken, "aal2", "pwd", "otp", "mfa")

		// The same code again, on another session, one step ahead: refused.
		l2 := login(s, "tina@example.com", goodPassword).JSON200
		r = verifyCode(s, l2.AccessToken, "totp", totpAt(t, secret, s.Clock.Now().Add(-30*time.Second)))
		wantError(t, "code used by another session", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		r = verifyCode(s, l2.AccessToken, "totp", totpAt(t, secret, s.Clock.Now().Add(30*time.Second)))
		if r.JSON200 == nil {
			t.Fatalf("code one step ahead: %d %s", r.StatusCode(), r.Body)
		}

		// Failed attempts are security events.
		ev, _ := s.Client.ListEventsWithResponse(ctx, &client.ListEventsParams{}, testutil.Bearer(r.JSON200.AccessToken))
		var failed, verified int
		for _, e := range ev.JSON200.Events {
			switch e.Type {
			case client.EventTypeMfaVerificationFailed:
				failed++
			case client.EventTypeMfaVerified:
				verified++
			}
		}
		if failed != 4 || verified != 2 {
			t.Fatalf("events: %d failed, %d verified", failed, verified)
		}
	})
}

// Recovery codes: each works once, in any format, and regenerating them
// spends the old set.
func TestMFARecoveryCodes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		first := signup(t, s, "rita@example.com")
		_, en := enrollTOTP(t, s, first.AccessToken)
		codes := *en.RecoveryCodes
		aal1 := login(s, "rita@example.com", goodPassword).JSON200
		r := verifyCode(s, aal1.AccessToken, "recovery_code", strings.ToUpper(strings.ReplaceAll(codes[0], "-", " ")))
		if r.JSON200 == nil || r.JSON200.Aal != client.Aal2 {
			t.Fatalf("recovery code: %d %s", r.StatusCode(), r.Body)
		}
		wantAssurance(t, r.JSON200.AccessToken, "aal2", "pwd", "otp", "mfa")
		other := login(s, "rita@example.com", goodPassword).JSON200
		r = verifyCode(s, other.AccessToken, "recovery_code", codes[0])
		wantError(t, "used recovery code", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		list, _ := s.Client.ListMFAFactorsWithResponse(ctx, testutil.Bearer(other.AccessToken))
		if list.JSON200 == nil || list.JSON200.RecoveryCodesRemaining != 9 || list.JSON200.Aal != client.Aal1 {
			t.Fatalf("factors: %d %s", list.StatusCode(), list.Body)
		}
		// Regenerating needs aal2, then replaces the set.
		reg, _ := s.Client.RegenerateRecoveryCodesWithResponse(ctx, testutil.Bearer(other.AccessToken))
		wantError(t, "regenerate at aal1", reg.StatusCode(), reg.Body, client.ErrorCodeMfaRequired)
		reg, _ = s.Client.RegenerateRecoveryCodesWithResponse(ctx, testutil.Bearer(en.Tokens.AccessToken))
		if reg.JSON200 == nil || len(reg.JSON200.Codes) != 10 {
			t.Fatalf("regenerate: %d %s", reg.StatusCode(), reg.Body)
		}
		third := login(s, "rita@example.com", goodPassword).JSON200
		r = verifyCode(s, third.AccessToken, "recovery_code", codes[1])
		wantError(t, "old recovery code after regeneration", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		if r = verifyCode(s, third.AccessToken, "recovery_code", reg.JSON200.Codes[1]); r.JSON200 == nil {
			t.Fatalf("new recovery code: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// Every sensitive operation answers 403 mfa_required to an aal1 session of
// a user with a factor, and works at aal2; a user without factors is not
// held to aal2.
func TestMFAGatesSensitiveOperations(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		first := signup(t, s, "gina@example.com")
		// No factor yet: nothing is gated.
		k, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "before", Scopes: []client.Scope{}}, testutil.Bearer(first.AccessToken))
		if k.JSON201 == nil {
			t.Fatalf("create key without factors: %d %s", k.StatusCode(), k.Body)
		}
		org, _ := s.Client.CreateOrganizationWithResponse(ctx, client.CreateOrganizationJSONRequestBody{Name: "Acme"}, testutil.Bearer(first.AccessToken))
		if org.JSON201 == nil {
			t.Fatalf("create org: %d %s", org.StatusCode(), org.Body)
		}
		ok, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "org", Scopes: []client.Scope{}}, testutil.Bearer(first.AccessToken))
		if ok.JSON201 == nil {
			t.Fatalf("create org key: %d %s", ok.StatusCode(), ok.Body)
		}
		_, en := enrollTOTP(t, s, first.AccessToken)
		aal2 := en.Tokens.AccessToken
		aal1 := login(s, "gina@example.com", goodPassword).JSON200.AccessToken
		factor := en.Factor.Id

		ops := map[string]func(tok string) (int, []byte){
			"change password": func(tok string) (int, []byte) {
				r, _ := s.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: goodPassword, NewPassword: goodPassword + "!"}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"create API key": func(tok string) (int, []byte) {
				r, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []client.Scope{}}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"roll API key": func(tok string) (int, []byte) {
				r, _ := s.Client.RollAPIKeyWithResponse(ctx, k.JSON201.Id, client.RollAPIKeyJSONRequestBody{}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"create org API key": func(tok string) (int, []byte) {
				r, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "y", Scopes: []client.Scope{}}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"roll org API key": func(tok string) (int, []byte) {
				r, _ := s.Client.RollOrgAPIKeyWithResponse(ctx, org.JSON201.Id, ok.JSON201.Id, client.RollOrgAPIKeyJSONRequestBody{}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"add TOTP factor": func(tok string) (int, []byte) {
				r, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"add WebAuthn factor": func(tok string) (int, []byte) {
				r, _ := s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
			"regenerate recovery codes": func(tok string) (int, []byte) {
				r, _ := s.Client.RegenerateRecoveryCodesWithResponse(ctx, testutil.Bearer(tok))
				return r.StatusCode(), r.Body
			},
		}
		for name, op := range ops {
			status, body := op(aal1)
			if status != http.StatusForbidden {
				t.Fatalf("%s at aal1: %d %s", name, status, body)
			}
			wantError(t, name+" at aal1", status, body, client.ErrorCodeMfaRequired)
		}
		del, _ := s.Client.DeleteMFAFactorWithResponse(ctx, factor, testutil.Bearer(aal1))
		wantError(t, "remove factor at aal1", del.StatusCode(), del.Body, client.ErrorCodeMfaRequired)
		for name, op := range ops {
			if name == "change password" {
				continue // it would sign out the aal1 session the loop does not need
			}
			if status, body := op(aal2); status >= 300 {
				t.Fatalf("%s at aal2: %d %s", name, status, body)
			}
		}
		if status, body := ops["change password"](aal2); status != http.StatusNoContent {
			t.Fatalf("change password at aal2: %d %s", status, body)
		}
	})
}

// Wrong codes are limited per account before any work: once over, even
// the right code is refused with 429 until the bucket refills.
func TestMFARateLimited(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) {
			c.RateLimits = true
			c.Limits.MFAAccount = ratelimit.Rule{Burst: 3, Per: time.Hour}
		})
		first := signup(t, s, "lara@example.com")
		secret, _ := enrollTOTP(t, s, first.AccessToken)
		aal1 := login(s, "lara@example.com", goodPassword).JSON200.AccessToken
		right := totpAt(t, secret, s.Clock.Now().Add(30*time.Second))
		wrong := "000000"
		if wrong == right || wrong == totpAt(t, secret, s.Clock.Now()) || wrong == totpAt(t, secret, s.Clock.Now().Add(-30*time.Second)) {
			wrong = "999999"
		}
		for i := 0; i < 3; i++ {
			r := verifyCode(s, aal1, "totp", wrong)
			wantError(t, "wrong code", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
		}
		r := verifyCode(s, aal1, "totp", right)
		if r.StatusCode() != http.StatusTooManyRequests || r.HTTPResponse.Header.Get("Retry-After") == "" {
			t.Fatalf("over the limit: %d %s", r.StatusCode(), r.Body)
		}
		s.Clock.Advance(time.Hour)
		aal1 = login(s, "lara@example.com", goodPassword).JSON200.AccessToken
		if r := verifyCode(s, aal1, "totp", totpAt(t, secret, s.Clock.Now())); r.JSON200 == nil {
			t.Fatalf("after the refill: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// Adding and removing a factor revoke every other session of the user,
// are events, and are mailed; removing the last one ends the aal1 login's
// pending step.
func TestMFAFactorChangesRevokeOtherSessions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		first := signup(t, s, "nora@example.com")
		second := login(s, "nora@example.com", goodPassword).JSON200
		flush(t, s, box)
		_, en := enrollTOTP(t, s, first.AccessToken)
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(second.AccessToken)); me.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("other session after adding a factor: %d", me.StatusCode())
		}
		third := login(s, "nora@example.com", goodPassword).JSON200
		del, _ := s.Client.DeleteMFAFactorWithResponse(ctx, en.Factor.Id, testutil.Bearer(en.Tokens.AccessToken))
		if del.StatusCode() != http.StatusNoContent {
			t.Fatalf("remove factor: %d %s", del.StatusCode(), del.Body)
		}
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(third.AccessToken)); me.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("other session after removing the factor: %d", me.StatusCode())
		}
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(en.Tokens.AccessToken)); me.StatusCode() != http.StatusOK {
			t.Fatalf("the removing session: %d", me.StatusCode())
		}
		l := login(s, "nora@example.com", goodPassword).JSON200
		if l.Mfa != nil {
			t.Fatalf("login after the last factor went: %+v", l.Mfa)
		}
		msgs := flush(t, s, box)
		var subjects []string
		for _, m := range msgs {
			if m.To == "nora@example.com" {
				subjects = append(subjects, m.Subject)
			}
		}
		if !slices.Contains(subjects, "A second factor was added to your account") || !slices.Contains(subjects, "A second factor was removed from your account") {
			t.Fatalf("mails: %q", subjects)
		}
		ev, _ := s.Client.ListEventsWithResponse(ctx, &client.ListEventsParams{}, testutil.Bearer(l.AccessToken))
		var added, removed bool
		for _, e := range ev.JSON200.Events {
			added = added || e.Type == client.EventTypeMfaFactorAdded
			removed = removed || e.Type == client.EventTypeMfaFactorRemoved
		}
		if !added || !removed {
			t.Fatalf("events: added %v removed %v", added, removed)
		}
	})
}

// WebAuthn with a software authenticator: registration (the session
// becomes aal2 with hwk), passwordless sign-in with the discoverable
// credential (aal2 with user verification, aal1 without), the key as the
// second factor of a password login; a replayed challenge, a wrong origin
// and another session's challenge are refused.
func TestMFAWebAuthn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		first := signup(t, s, "wanda@example.com")
		auth := testutil.NewAuthenticator(t)

		begin, _ := s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(first.AccessToken))
		if begin.JSON200 == nil {
			t.Fatalf("begin registration: %d %s", begin.StatusCode(), begin.Body)
		}
		pk := testutil.PublicKey(t, begin.JSON200.Options)
		if rp, _ := pk["rp"].(map[string]any); rp["id"] != "localhost" {
			t.Fatalf("rp: %v", pk["rp"])
		}
		// From another origin: refused, and the challenge is spent.
		evil := auth.Create(begin.JSON200.Options, "http://evil.example")
		fin, _ := s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Credential: evil}, testutil.Bearer(first.AccessToken))
		wantError(t, "registration from another origin", fin.StatusCode(), fin.Body, client.ErrorCodeMfaVerificationFailed)
		good := auth.Create(begin.JSON200.Options, webOrigin)
		fin, _ = s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Credential: good}, testutil.Bearer(first.AccessToken))
		wantError(t, "registration with a spent challenge", fin.StatusCode(), fin.Body, client.ErrorCodeMfaVerificationFailed)

		begin, _ = s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(first.AccessToken))
		// Another session of the same user cannot finish this ceremony.
		other := login(s, "wanda@example.com", goodPassword).JSON200
		fin, _ = s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Credential: auth.Create(begin.JSON200.Options, webOrigin)}, testutil.Bearer(other.AccessToken))
		wantError(t, "another session's ceremony", fin.StatusCode(), fin.Body, client.ErrorCodeMfaVerificationFailed)
		begin, _ = s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(first.AccessToken))
		name := "Laptop"
		fin, _ = s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Name: &name, Credential: auth.Create(begin.JSON200.Options, webOrigin)}, testutil.Bearer(first.AccessToken))
		if fin.JSON200 == nil || fin.JSON200.Factor.Type != client.MFAFactorTypeWebauthn || fin.JSON200.Factor.Name != "Laptop" ||
			fin.JSON200.RecoveryCodes == nil || fin.JSON200.Tokens.SessionId != first.SessionId {
			t.Fatalf("finish registration: %d %s", fin.StatusCode(), fin.Body)
		}
		wantAssurance(t, fin.JSON200.Tokens.AccessToken, "aal2", "pwd", "hwk", "mfa")

		// Passwordless: the passkey alone, with user verification, is aal2.
		pb, _ := s.Client.BeginPasskeyLoginWithResponse(ctx)
		if pb.JSON200 == nil {
			t.Fatalf("begin passkey: %d %s", pb.StatusCode(), pb.Body)
		}
		assertion := auth.Get(pb.JSON200.Options, webOrigin)
		pl, _ := s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: assertion})
		if pl.JSON200 == nil || pl.JSON200.Aal != client.Aal2 || pl.JSON200.User.Id != first.User.Id || pl.JSON200.Mfa != nil {
			t.Fatalf("passkey login: %d %s", pl.StatusCode(), pl.Body)
		}
		wantAssurance(t, pl.JSON200.AccessToken, "aal2", "hwk", "mfa")
		// The same assertion again: its challenge is spent.
		pl, _ = s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: assertion})
		wantError(t, "replayed passkey assertion", pl.StatusCode(), pl.Body, client.ErrorCodeInvalidCredentials)
		// From another origin: refused.
		pb, _ = s.Client.BeginPasskeyLoginWithResponse(ctx)
		pl, _ = s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: auth.Get(pb.JSON200.Options, "http://evil.example")})
		wantError(t, "passkey from another origin", pl.StatusCode(), pl.Body, client.ErrorCodeInvalidCredentials)
		// Without user verification the passkey is one factor: aal1. A
		// second factor must be a different factor (issue 21, item 5): no
		// WebAuthn credential is pending (this user has no TOTP), and the
		// same key presented to /auth/mfa/verify is refused.
		auth.NoUV = true
		pb, _ = s.Client.BeginPasskeyLoginWithResponse(ctx)
		pl, _ = s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: auth.Get(pb.JSON200.Options, webOrigin)})
		if pl.JSON200 == nil || pl.JSON200.Aal != client.Aal1 || pl.JSON200.Mfa != nil {
			t.Fatalf("passkey without user verification: %d %s", pl.StatusCode(), pl.Body)
		}
		wantAssurance(t, pl.JSON200.AccessToken, "aal1", "hwk")
		hb, _ := s.Client.BeginWebAuthnVerificationWithResponse(ctx, testutil.Bearer(pl.JSON200.AccessToken))
		if hb.JSON200 == nil {
			t.Fatalf("begin verification on a passkey session: %d %s", hb.StatusCode(), hb.Body)
		}
		same := client.WebAuthnCredential(auth.Get(hb.JSON200.Options, webOrigin))
		sv, _ := s.Client.VerifyMFAWithResponse(ctx, client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethodWebauthn, Credential: &same}, testutil.Bearer(pl.JSON200.AccessToken))
		wantError(t, "the passkey again as the second factor", sv.StatusCode(), sv.Body, client.ErrorCodeInvalidRequest)
		auth.NoUV = false

		// The key as the second factor of a password login.
		l := login(s, "wanda@example.com", goodPassword).JSON200
		if l.Mfa == nil || l.Mfa.Factors[0].Type != client.MFAFactorTypeWebauthn {
			t.Fatalf("login: %+v", l.Mfa)
		}
		vb, _ := s.Client.BeginWebAuthnVerificationWithResponse(ctx, testutil.Bearer(l.AccessToken))
		if vb.JSON200 == nil {
			t.Fatalf("begin verification: %d %s", vb.StatusCode(), vb.Body)
		}
		cred := client.WebAuthnCredential(auth.Get(vb.JSON200.Options, webOrigin))
		v, _ := s.Client.VerifyMFAWithResponse(ctx, client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethodWebauthn, Credential: &cred}, testutil.Bearer(l.AccessToken))
		if v.JSON200 == nil || v.JSON200.SessionId != l.SessionId {
			t.Fatalf("verify with the key: %d %s", v.StatusCode(), v.Body)
		}
		wantAssurance(t, v.JSON200.AccessToken, "aal2", "pwd", "hwk", "mfa")
		v, _ = s.Client.VerifyMFAWithResponse(ctx, client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethodWebauthn, Credential: &cred}, testutil.Bearer(l.AccessToken))
		wantError(t, "replayed second-factor assertion", v.StatusCode(), v.Body, client.ErrorCodeMfaVerificationFailed)

		// A synced passkey is swk; list and rename.
		synced := testutil.NewAuthenticator(t)
		synced.Synced = true
		begin, _ = s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(fin.JSON200.Tokens.AccessToken))
		fin2, _ := s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Credential: synced.Create(begin.JSON200.Options, webOrigin)}, testutil.Bearer(fin.JSON200.Tokens.AccessToken))
		if fin2.JSON200 == nil || fin2.JSON200.RecoveryCodes != nil || fin2.JSON200.Factor.BackupEligible == nil || !*fin2.JSON200.Factor.BackupEligible {
			t.Fatalf("second key: %d %s", fin2.StatusCode(), fin2.Body)
		}
		wantAssurance(t, fin2.JSON200.Tokens.AccessToken, "aal2", "pwd", "hwk", "mfa", "swk")
		// Adding it signed out every other session (l among them).
		if me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(l.AccessToken)); me.StatusCode() != http.StatusUnauthorized {
			t.Fatalf("other session after adding a key: %d", me.StatusCode())
		}
		tok := fin2.JSON200.Tokens.AccessToken
		rn, _ := s.Client.RenameMFAFactorWithResponse(ctx, fin2.JSON200.Factor.Id, client.RenameMFAFactorJSONRequestBody{Name: "Phone passkey"}, testutil.Bearer(tok))
		if rn.JSON200 == nil || rn.JSON200.Name != "Phone passkey" {
			t.Fatalf("rename: %d %s", rn.StatusCode(), rn.Body)
		}
		if rn, _ := s.Client.RenameMFAFactorWithResponse(ctx, uuid.New(), client.RenameMFAFactorJSONRequestBody{Name: "x"}, testutil.Bearer(tok)); rn.StatusCode() != http.StatusNotFound {
			t.Fatalf("rename an unknown factor: %d", rn.StatusCode())
		}
		pb, _ = s.Client.BeginPasskeyLoginWithResponse(ctx)
		pl, _ = s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: synced.Get(pb.JSON200.Options, webOrigin)})
		if pl.JSON200 == nil {
			t.Fatalf("synced passkey login: %d %s", pl.StatusCode(), pl.Body)
		}
		wantAssurance(t, pl.JSON200.AccessToken, "aal2", "swk", "mfa")
	})
}

// TestIntrospectionShowsAssurance: introspection tells a resource server a
// session's assurance as the token carries it (an access token's claims,
// a refresh token's session), and nothing of it for an API key.
func TestIntrospectionShowsAssurance(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ada := signup(t, s, "assured@example.com")
		rs := createKey(t, s, testutil.Bearer(ada.AccessToken), "resource server", "tokens:introspect")
		caller := basic("my-resource-server", rs.Key)
		want := func(what, tok, aal string, amr ...string) {
			t.Helper()
			in := active(t, what, s, tok, caller)
			var gotAAL string
			var gotAMR []string
			if in.Aal != nil {
				gotAAL = string(*in.Aal)
			}
			if in.Amr != nil {
				gotAMR = *in.Amr
			}
			if gotAAL != aal || !slices.Equal(gotAMR, amr) {
				t.Fatalf("%s: introspected assurance %q %v, want %q %v", what, gotAAL, gotAMR, aal, amr)
			}
		}
		want("password session's access token", ada.AccessToken, "aal1", "pwd")
		want("password session's refresh token", ada.RefreshToken, "aal1", "pwd")
		want("API key", rs.Key, "")

		_, conf := enrollTOTP(t, s, ada.AccessToken)
		want("aal2 access token", conf.Tokens.AccessToken, "aal2", "pwd", "otp", "mfa")
		want("aal2 refresh token", conf.Tokens.RefreshToken, "aal2", "pwd", "otp", "mfa")
		l := login(s, "assured@example.com", goodPassword)
		if l.JSON200 == nil {
			t.Fatalf("login: %d %s", l.StatusCode(), l.Body)
		}
		want("new login before its second factor", l.JSON200.RefreshToken, "aal1", "pwd")
	})
}

// TestUnconfirmedEnrolmentIsPruned: a TOTP enrolment never confirmed stays
// listed (unverified) for service.UnconfirmedFactorTTL, then pruning
// removes it; a confirmed factor stays.
func TestUnconfirmedEnrolmentIsPruned(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		u := signup(t, s, "abandons@example.com")
		_, conf := enrollTOTP(t, s, u.AccessToken)
		aal2 := testutil.Bearer(conf.Tokens.AccessToken)
		en, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, aal2)
		if en.JSON201 == nil {
			t.Fatalf("second enrolment: %d %s", en.StatusCode(), en.Body)
		}
		// The access token has long expired by then: read the store.
		factors := func() []domain.Factor {
			t.Helper()
			if _, err := s.App.Service.Pruner().Prune(ctx); err != nil {
				t.Fatal(err)
			}
			f, err := s.App.Store.ListFactors(ctx, u.User.Id)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		s.Clock.Advance(service.UnconfirmedFactorTTL - time.Minute)
		if f := factors(); len(f) != 2 {
			t.Fatalf("before the TTL: %+v", f)
		}
		s.Clock.Advance(2 * time.Minute)
		if f := factors(); len(f) != 1 || f[0].ID == en.JSON201.Factor.Id || !f[0].Verified() {
			t.Fatalf("after the TTL: %+v", f)
		}
	})
}
