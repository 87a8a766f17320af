package contract

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchauth/latch/internal/testutil"
)

// webOrigin is an origin of the run's WebAuthn defaults (the public URL
// http://127.0.0.1:8080 gives RP id localhost and this origin).
const webOrigin = "http://localhost:8080"

// mfaFlow exercises the MFA operations on the flow's own session: a TOTP
// factor (enrol, confirm: the session becomes aal2), a second login at
// aal1 with the factor pending, verification with a TOTP code, a WebAuthn
// key (registration, second factor, passwordless sign-in), rename, the
// recovery codes, and the removal of every factor, so that the malformed
// phase meets a user without factors. It updates f's tokens.
func mfaFlow(t *testing.T, l *latchd, f *fixture, op func(string)) {
	t.Helper()
	cred := map[string]any{"email": "flow@example.com", "password": "correct horse battery staple"}
	en := l.json(t, "POST", "/auth/mfa/totp", map[string]any{"name": "Phone"}, bearer(f.access), 201)
	op("enrollTOTP")
	factor := en["factor"].(map[string]any)["id"].(string)
	secret := en["secret"].(string)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := l.json(t, "POST", "/auth/mfa/totp/"+factor+"/confirm", map[string]any{"code": code}, bearer(f.access), 200)
	op("confirmTOTP")
	tokens := c["tokens"].(map[string]any)
	f.access, f.refresh = tokens["access_token"].(string), tokens["refresh_token"].(string)

	second := l.json(t, "POST", "/auth/login", cred, nil, 200)
	if second["aal"] != "aal1" || second["mfa"] == nil {
		t.Fatalf("login with a factor: %v", second)
	}
	aal1 := second["access_token"].(string)
	l.json(t, "GET", "/auth/mfa/factors", nil, bearer(aal1), 200)
	op("listMFAFactors")
	// The next step's code: the confirmation spent this step's.
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	v := l.json(t, "POST", "/auth/mfa/verify", map[string]any{"method": "totp", "code": next}, bearer(aal1), 200)
	op("verifyMFA")
	if v["aal"] != "aal2" {
		t.Fatalf("verify: %v", v)
	}

	// A WebAuthn key, registered from the flow's aal2 session.
	auth := testutil.NewAuthenticator(t)
	reg := l.json(t, "POST", "/auth/mfa/webauthn/registration", nil, bearer(f.access), 200)
	op("beginWebAuthnRegistration")
	fin := l.json(t, "POST", "/auth/mfa/webauthn/registration/finish",
		map[string]any{"name": "Laptop", "credential": auth.Create(reg["options"].(map[string]any), webOrigin)}, bearer(f.access), 200)
	op("finishWebAuthnRegistration")
	tokens = fin["tokens"].(map[string]any)
	f.access, f.refresh = tokens["access_token"].(string), tokens["refresh_token"].(string)
	key := fin["factor"].(map[string]any)["id"].(string)
	l.json(t, "PATCH", "/auth/mfa/factors/"+key, map[string]any{"name": "Work laptop"}, bearer(f.access), 200)
	op("renameMFAFactor")

	third := l.json(t, "POST", "/auth/login", cred, nil, 200)
	ch := l.json(t, "POST", "/auth/mfa/webauthn/challenge", nil, bearer(third["access_token"].(string)), 200)
	op("beginWebAuthnVerification")
	l.json(t, "POST", "/auth/mfa/verify", map[string]any{"method": "webauthn",
		"credential": auth.Get(ch["options"].(map[string]any), webOrigin)}, bearer(third["access_token"].(string)), 200)
	pc := l.json(t, "POST", "/auth/passkey/challenge", nil, nil, 200)
	op("beginPasskeyLogin")
	l.json(t, "POST", "/auth/passkey/login", map[string]any{"credential": auth.Get(pc["options"].(map[string]any), webOrigin)}, nil, 200)
	op("passkeyLogin")
	// Factors with a use (last_used_at) and a WebAuthn key's backup flags.
	l.json(t, "GET", "/auth/mfa/factors", nil, bearer(f.access), 200)

	l.json(t, "POST", "/auth/mfa/recovery-codes", nil, bearer(f.access), 200)
	op("regenerateRecoveryCodes")
	l.json(t, "DELETE", "/auth/mfa/factors/"+key, nil, bearer(f.access), 204)
	l.json(t, "DELETE", "/auth/mfa/factors/"+factor, nil, bearer(f.access), 204)
	op("deleteMFAFactor")
}
