package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	latch "github.com/latchauth/latch"
	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// specOperations returns every operation of openapi.yaml.
func specOperations(t *testing.T) []specOp {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(latch.SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	var ops []specOp
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, specOp{method: method, path: path, op: op})
		}
	}
	return ops
}

type specOp struct {
	method, path string
	op           *openapi3.Operation
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// call sends the operation with every path parameter a fresh UUID and an
// empty JSON object as its body, with the bearer token.
func (o specOp) call(t *testing.T, s *testutil.Server, query, tok string) (*http.Response, []byte) {
	t.Helper()
	u := s.URL + pathParam.ReplaceAllStringFunc(o.path, func(string) string { return uuid.NewString() }) + query
	var body *bytes.Reader
	if o.op.RequestBody != nil {
		body = bytes.NewReader([]byte(`{}`))
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(o.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if o.op.RequestBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return res, buf.Bytes()
}

// userWithFactor signs up email, enrols a TOTP factor and returns its
// secret, the aal2 tokens of that enrolment and a fresh aal1 login.
func userWithFactor(t *testing.T, s *testutil.Server, email string) (string, *client.MFAEnrollment, string) {
	t.Helper()
	first := signup(t, s, email)
	secret, en := enrollTOTP(t, s, first.AccessToken)
	aal1 := login(s, email, goodPassword).JSON200.AccessToken
	return secret, en, aal1
}

// TestEveryAAL2OperationRefusesAAL1 walks openapi.yaml: every operation
// that declares x-latch-assurance: aal2 answers an aal1 session of a user
// with a factor 403 mfa_required with RFC 9470's challenge, whatever its
// path and body, because the one gate runs before any handler. An aal1
// operation does not. A new operation is covered the day it is declared.
func TestEveryAAL2OperationRefusesAAL1(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		// The walker is an operator, so that the admin operations reach the
		// assurance gate (anyone else stops at the operator gate first).
		s := testutil.Start(t, d, func(c *app.Config) { c.APIKeys.OperatorEmails = []string{"walker@example.com"} })
		_, _, aal1 := userWithFactor(t, s, "walker@example.com")
		s.MarkVerified(t, "walker@example.com")
		n := 0
		for _, o := range specOperations(t) {
			level, _ := o.op.Extensions["x-latch-assurance"].(string)
			switch level {
			case "aal2":
				query := ""
				if _, ok := o.op.Extensions["x-latch-assurance-exempt"]; ok {
					query = "?scope=global"
				}
				res, body := o.call(t, s, query, aal1)
				if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"mfa_required"`) {
					t.Errorf("%s %s at aal1: %d %s, want 403 mfa_required", o.method, o.path, res.StatusCode, body)
					continue
				}
				if h := res.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) || !strings.Contains(h, "max_age=43200") {
					t.Errorf("%s %s: WWW-Authenticate %q", o.method, o.path, h)
				}
				var e client.ErrorBody
				if json.Unmarshal(body, &e) != nil || e.MaxAge == nil || *e.MaxAge != 43200 {
					t.Errorf("%s %s: max_age missing: %s", o.method, o.path, body)
				}
				n++
			case "aal1":
				if o.method != http.MethodGet {
					continue
				}
				res, body := o.call(t, s, "", aal1)
				if strings.Contains(string(body), `"mfa_required"`) {
					t.Errorf("%s %s is aal1 but answered %d %s", o.method, o.path, res.StatusCode, body)
				}
			}
		}
		if n < 25 {
			t.Fatalf("only %d aal2 operations walked", n)
		}
	})
}

// Logout of this session alone is exempt from aal2 (signing out always
// works); ending the other sessions is not.
func TestLogoutAssurance(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		_, _, aal1 := userWithFactor(t, s, "lou@example.com")
		global := client.Global
		r, _ := s.Client.LogoutWithResponse(ctx, &client.LogoutParams{Scope: &global}, testutil.Bearer(aal1))
		wantError(t, "global logout at aal1", r.StatusCode(), r.Body, client.ErrorCodeMfaRequired)
		r, _ = s.Client.LogoutWithResponse(ctx, &client.LogoutParams{}, testutil.Bearer(aal1))
		if r.StatusCode() != http.StatusNoContent {
			t.Fatalf("local logout at aal1: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// Issue 21, item 8: aal2 ages. A second factor verified more than
// LATCH_MFA_MAX_AGE ago no longer passes an aal2 operation; verifying
// again does, and the new tokens' auth_time is the verification.
func TestAAL2Ages(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.AccessTTL = 24 * time.Hour })
		ctx := context.Background()
		secret, en, _ := userWithFactor(t, s, "ada-ages@example.com")
		aal2 := en.Tokens.AccessToken
		create := func(tok string) *client.CreateAPIKeyResponse {
			r, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "k", Scopes: []client.Scope{}}, testutil.Bearer(tok))
			return r
		}
		if r := create(aal2); r.JSON201 == nil {
			t.Fatalf("fresh aal2: %d %s", r.StatusCode(), r.Body)
		}
		s.Clock.Advance(11 * time.Hour)
		if r := create(aal2); r.JSON201 == nil {
			t.Fatalf("aal2 of 11 hours: %d %s", r.StatusCode(), r.Body)
		}
		s.Clock.Advance(time.Hour + time.Minute)
		r := create(aal2)
		wantError(t, "aal2 of 12 hours", r.StatusCode(), r.Body, client.ErrorCodeMfaRequired)
		if h := r.HTTPResponse.Header.Get("WWW-Authenticate"); !strings.Contains(h, "max_age=43200") {
			t.Fatalf("WWW-Authenticate = %q", h)
		}
		// A refresh keeps the level but not the age.
		rf, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: en.Tokens.RefreshToken})
		if rf.JSON200 == nil {
			t.Fatalf("refresh: %d %s", rf.StatusCode(), rf.Body)
		}
		r = create(rf.JSON200.AccessToken)
		wantError(t, "refreshed stale aal2", r.StatusCode(), r.Body, client.ErrorCodeMfaRequired)
		v := verifyCode(s, rf.JSON200.AccessToken, "totp", totpAt(t, secret, s.Clock.Now()))
		if v.JSON200 == nil {
			t.Fatalf("verify again: %d %s", v.StatusCode(), v.Body)
		}
		if at := tokenClaims(t, v.JSON200.AccessToken)["auth_time"].(float64); int64(at) != s.Clock.Now().Unix() {
			t.Fatalf("auth_time %v, want the verification %d", at, s.Clock.Now().Unix())
		}
		if r := create(v.JSON200.AccessToken); r.JSON201 == nil {
			t.Fatalf("after verifying again: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// Issue 21, item 1: a TOTP enrolment planted with the password alone while
// the account had no factor cannot be confirmed later. Confirming needs
// the enrolling session (and aal2 once the account has a factor), within
// the enrolment's 10 minutes; the owner's first factor deletes it.
func TestPlantedEnrolmentCannotBeConfirmed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		owner := signup(t, s, "plant@example.com")
		// The attacker, with the password, starts an enrolment.
		attacker := login(s, "plant@example.com", goodPassword).JSON200.AccessToken
		en, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, testutil.Bearer(attacker))
		if en.JSON201 == nil {
			t.Fatalf("planted enrolment: %d %s", en.StatusCode(), en.Body)
		}
		planted, plantedSecret := en.JSON201.Factor.Id, en.JSON201.Secret
		// Another session cannot confirm it, even with the right code.
		c, _ := s.Client.ConfirmTOTPWithResponse(ctx, planted, client.ConfirmTOTPJSONRequestBody{Code: totpAt(t, plantedSecret, s.Clock.Now())}, testutil.Bearer(owner.AccessToken))
		wantError(t, "confirm from another session", c.StatusCode(), c.Body, client.ErrorCodeNotFound)
		// The owner turns MFA on; the planted enrolment goes.
		enrollTOTP(t, s, owner.AccessToken)
		fl, _ := s.Client.ListMFAFactorsWithResponse(ctx, testutil.Bearer(login(s, "plant@example.com", goodPassword).JSON200.AccessToken))
		if fl.JSON200 == nil || len(fl.JSON200.Factors) != 1 || fl.JSON200.Factors[0].Id == planted {
			t.Fatalf("factors after the owner's enrolment: %d %s", fl.StatusCode(), fl.Body)
		}
		// The attacker logs in again (aal1) and tries to confirm it.
		again := login(s, "plant@example.com", goodPassword).JSON200.AccessToken
		c, _ = s.Client.ConfirmTOTPWithResponse(ctx, planted, client.ConfirmTOTPJSONRequestBody{Code: totpAt(t, plantedSecret, s.Clock.Now())}, testutil.Bearer(again))
		wantError(t, "confirm the planted factor at aal1", c.StatusCode(), c.Body, client.ErrorCodeMfaRequired)
		c, _ = s.Client.ConfirmTOTPWithResponse(ctx, planted, client.ConfirmTOTPJSONRequestBody{Code: totpAt(t, plantedSecret, s.Clock.Now())}, testutil.Bearer(attacker))
		// Its own session ended when the owner's first factor revoked every
		// other session.
		wantError(t, "confirm the planted factor from its own session", c.StatusCode(), c.Body, client.ErrorCodeInvalidToken)
	})
}

// An enrolment older than LATCH_MFA_ENROLLMENT_TTL cannot be confirmed,
// even by its own session.
func TestStaleEnrolmentCannotBeConfirmed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) { c.AccessTTL = time.Hour })
		ctx := context.Background()
		u := signup(t, s, "stale@example.com")
		en, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, testutil.Bearer(u.AccessToken))
		if en.JSON201 == nil {
			t.Fatalf("enrol: %d %s", en.StatusCode(), en.Body)
		}
		s.Clock.Advance(10*time.Minute + time.Second)
		c, _ := s.Client.ConfirmTOTPWithResponse(ctx, en.JSON201.Factor.Id, client.ConfirmTOTPJSONRequestBody{Code: totpAt(t, en.JSON201.Secret, s.Clock.Now())}, testutil.Bearer(u.AccessToken))
		wantError(t, "confirm after 10 minutes", c.StatusCode(), c.Body, client.ErrorCodeNotFound)
	})
}

// Issue 21, item 3: concurrent wrong codes get no more checks than the
// account's bucket holds, on every limiter store: the token is taken
// atomically before the code is checked.
func TestConcurrentGuessesStayWithinTheLimit(t *testing.T) {
	forEachLimiterStore(t, func(t *testing.T, name, d string, set func(*app.Config)) {
		s := testutil.Start(t, d, func(c *app.Config) {
			set(c)
			c.RateLimits = true
			c.Limits.MFAAccount = ratelimit.Rule{Burst: 5, Per: time.Hour}
			c.Limits.MFAIP = ratelimit.Rule{Burst: 1000, Per: time.Minute}
			c.Limits.LoginAccount = ratelimit.Rule{Burst: 1000, Per: time.Minute}
		})
		secret, _, aal1 := userWithFactor(t, s, "guess-"+name+"@example.com")
		wrong := wrongCode(t, secret, s.Clock.Now())
		counts := concurrently(30, func() int { return verifyCode(s, aal1, "totp", wrong).StatusCode() })
		if counts[http.StatusBadRequest] > 5 || counts[http.StatusBadRequest]+counts[http.StatusTooManyRequests] != 30 {
			t.Fatalf("30 concurrent wrong codes against a burst of 5: %v", counts)
		}
	})
}

// forEachLimiterStore runs f on each rate-limit store: memory (on
// SQLite), PostgreSQL, and Redis (on SQLite).
func forEachLimiterStore(t *testing.T, f func(t *testing.T, name, dialect string, set func(*app.Config))) {
	stores := map[string]func(t *testing.T) func(*app.Config){
		"memory":   func(*testing.T) func(*app.Config) { return func(c *app.Config) { c.RateLimitStore = "memory" } },
		"postgres": func(*testing.T) func(*app.Config) { return func(c *app.Config) { c.RateLimitStore = "postgres" } },
		"redis": func(t *testing.T) func(*app.Config) {
			url := testutil.RedisURL(t)
			prefix := "latch-test-" + uuid.NewString() + ":"
			return func(c *app.Config) { c.RateLimitStore, c.RedisURL, c.RedisPrefix = "redis", url, prefix }
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			d := "sqlite"
			if name == "postgres" {
				d = "postgres"
			}
			f(t, name, d, mk(t))
		})
	}
}

// Successful second factors give their token back: a user who verifies
// more often than the burst is never refused.
func TestSuccessfulFactorsAreNotCounted(t *testing.T) {
	forEachLimiterStore(t, func(t *testing.T, name, d string, set func(*app.Config)) {
		successfulFactorsAreNotCounted(t, name, d, set)
	})
}

func successfulFactorsAreNotCounted(t *testing.T, name, d string, set func(*app.Config)) {
	s := testutil.Start(t, d, func(c *app.Config) {
		set(c)
		c.RateLimits = true
		c.Limits.MFAAccount = ratelimit.Rule{Burst: 2, Per: time.Hour}
		c.Limits.LoginAccount = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	email := "often-" + name + "@example.com"
	secret, _, _ := userWithFactor(t, s, email)
	for i := range 5 {
		s.Clock.Advance(31 * time.Second) // a fresh TOTP step each time
		l := login(s, email, goodPassword)
		if l.JSON200 == nil {
			t.Fatalf("login %d: %d %s", i, l.StatusCode(), l.Body)
		}
		if v := verifyCode(s, l.JSON200.AccessToken, "totp", totpAt(t, secret, s.Clock.Now())); v.JSON200 == nil {
			t.Fatalf("verify %d: %d %s", i, v.StatusCode(), v.Body)
		}
	}
}

// Issue 21, item 3 (NIST SP 800-63B-4): after 100 consecutive failed
// second factors the account's TOTP and WebAuthn factors are locked (a
// security event and a mail) until a recovery step: a recovery code
// unlocks them, and so does a password reset.
func TestSecondFactorsLockAfterConsecutiveFailures(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		secret, en, aal1 := userWithFactor(t, s, "locked@example.com")
		flush(t, s, box)
		wrong := wrongCode(t, secret, s.Clock.Now())
		for i := range 100 {
			r := verifyCode(s, aal1, "totp", wrong)
			if r.StatusCode() != http.StatusBadRequest {
				t.Fatalf("wrong code %d: %d %s", i, r.StatusCode(), r.Body)
			}
		}
		r := verifyCode(s, aal1, "totp", totpAt(t, secret, s.Clock.Now()))
		wantError(t, "the right code after 100 failures", r.StatusCode(), r.Body, client.ErrorCodeMfaLocked)
		msgs := flush(t, s, box)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "locked") {
			t.Fatalf("lock mail: %d mails", len(msgs))
		}
		var locks int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM security_events WHERE type = 'mfa_locked'`).Scan(&locks); err != nil || locks != 1 {
			t.Fatalf("mfa_locked events: %d %v", locks, err)
		}
		// A recovery code is the recovery step: it is still checked, and it
		// unlocks.
		v := verifyCode(s, aal1, "recovery_code", (*en.RecoveryCodes)[0])
		if v.JSON200 == nil {
			t.Fatalf("recovery code while locked: %d %s", v.StatusCode(), v.Body)
		}
		aal1 = login(s, "locked@example.com", goodPassword).JSON200.AccessToken
		s.Clock.Advance(31 * time.Second)
		if v := verifyCode(s, aal1, "totp", totpAt(t, secret, s.Clock.Now())); v.JSON200 == nil {
			t.Fatalf("TOTP after the recovery code: %d %s", v.StatusCode(), v.Body)
		}
		// Lock again; a password reset unlocks.
		aal1 = login(s, "locked@example.com", goodPassword).JSON200.AccessToken
		for range 100 {
			verifyCode(s, aal1, "totp", wrong)
		}
		r = verifyCode(s, aal1, "totp", totpAt(t, secret, s.Clock.Now()))
		wantError(t, "locked again", r.StatusCode(), r.Body, client.ErrorCodeMfaLocked)
		flush(t, s, box)
		if res := reset(s, resetMail(t, s, box, "locked@example.com"), newPassword); res.StatusCode() != http.StatusNoContent {
			t.Fatalf("reset: %d %s", res.StatusCode(), res.Body)
		}
		aal1 = login(s, "locked@example.com", newPassword).JSON200.AccessToken
		s.Clock.Advance(31 * time.Second)
		if v := verifyCode(s, aal1, "totp", totpAt(t, secret, s.Clock.Now())); v.JSON200 == nil {
			t.Fatalf("TOTP after the reset: %d %s", v.StatusCode(), v.Body)
		}
	})
}

// Issue 21, item 4, the attack replayed: someone who knows the password of
// an account without factors registers a passkey; the owner reclaims the
// account with a password reset; the passkey no longer signs in alone
// (whoever held the account before keeps nothing), though it still works
// as a second factor after the new password. The reset mail lists the
// account's factors.
func TestPasskeyDoesNotSurvivePasswordReset(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		signup(t, s, "reclaim@example.com")
		flush(t, s, box)
		attacker := login(s, "reclaim@example.com", goodPassword).JSON200.AccessToken
		auth := testutil.NewAuthenticator(t)
		begin, _ := s.Client.BeginWebAuthnRegistrationWithResponse(ctx, testutil.Bearer(attacker))
		if begin.JSON200 == nil {
			t.Fatalf("begin registration: %d %s", begin.StatusCode(), begin.Body)
		}
		name := "Attacker's key"
		fin, _ := s.Client.FinishWebAuthnRegistrationWithResponse(ctx, client.FinishWebAuthnRegistrationJSONRequestBody{Name: &name, Credential: auth.Create(begin.JSON200.Options, webOrigin)}, testutil.Bearer(attacker))
		if fin.JSON200 == nil {
			t.Fatalf("finish registration: %d %s", fin.StatusCode(), fin.Body)
		}
		passkey := func() *client.PasskeyLoginResponse {
			pb, _ := s.Client.BeginPasskeyLoginWithResponse(ctx)
			pl, _ := s.Client.PasskeyLoginWithResponse(ctx, client.PasskeyLoginJSONRequestBody{Credential: auth.Get(pb.JSON200.Options, webOrigin)})
			return pl
		}
		if pl := passkey(); pl.JSON200 == nil {
			t.Fatalf("passkey before the reset: %d %s", pl.StatusCode(), pl.Body)
		}
		flush(t, s, box) // the factor-added notice
		forgot(t, s, "reclaim@example.com")
		msgs := flush(t, s, box)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "Attacker's key (passkey or security key)") || !strings.Contains(msgs[0].HTML, "Attacker&#39;s key") {
			t.Fatalf("the reset mail does not list the factors:\n%s", msgs[0].Text)
		}
		if res := reset(s, tokenIn(t, msgs[0]), newPassword); res.StatusCode() != http.StatusNoContent {
			t.Fatalf("reset: %d %s", res.StatusCode(), res.Body)
		}
		pl := passkey()
		wantError(t, "passkey alone after the reset", pl.StatusCode(), pl.Body, client.ErrorCodeInvalidCredentials)
		// As a second factor after the new password it still counts.
		l := login(s, "reclaim@example.com", newPassword).JSON200
		if l.Mfa == nil || l.Mfa.Factors[0].Type != client.MFAFactorTypeWebauthn {
			t.Fatalf("login after the reset: %+v", l.Mfa)
		}
		vb, _ := s.Client.BeginWebAuthnVerificationWithResponse(ctx, testutil.Bearer(l.AccessToken))
		cred := client.WebAuthnCredential(auth.Get(vb.JSON200.Options, webOrigin))
		v, _ := s.Client.VerifyMFAWithResponse(ctx, client.VerifyMFAJSONRequestBody{Method: client.MFAVerifyRequestMethodWebauthn, Credential: &cred}, testutil.Bearer(l.AccessToken))
		if v.JSON200 == nil {
			t.Fatalf("the key as a second factor after the reset: %d %s", v.StatusCode(), v.Body)
		}
	})
}

// Issue 21, item 7: recovery codes carry 120 bits (24 characters in six
// groups); a 16-character code issued before keeps working once.
func TestRecoveryCodesCarry120Bits(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		_, en, aal1 := userWithFactor(t, s, "codes@example.com")
		codes := *en.RecoveryCodes
		valid := regexp.MustCompile(`^[a-z2-7]{4}(-[a-z2-7]{4}){5}$`)
		for _, c := range codes {
			if !valid.MatchString(c) {
				t.Fatalf("recovery code %q is not six groups of four", c)
			}
		}
		// A code of the previous format, stored as the previous release did.
		old := "abcd-efgh-ijkl-mnop"
		h := sha256.Sum256([]byte("abcdefghijklmnop"))
		var uid string
		if err := s.App.Store.DB().QueryRow(rebind(d, `SELECT id FROM users WHERE email = ?`), "codes@example.com").Scan(&uid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Store.DB().Exec(rebind(d, `INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`),
			uid, h[:], s.Clock.Now().UTC().Format("2006-01-02 15:04:05.000000+00:00")); err != nil {
			t.Fatal(err)
		}
		if v := verifyCode(s, aal1, "recovery_code", old); v.JSON200 == nil {
			t.Fatalf("an 80-bit code of the previous release: %d %s", v.StatusCode(), v.Body)
		}
		aal1 = login(s, "codes@example.com", goodPassword).JSON200.AccessToken
		r := verifyCode(s, aal1, "recovery_code", old)
		wantError(t, "the old code twice", r.StatusCode(), r.Body, client.ErrorCodeMfaVerificationFailed)
	})
}

// An organization can require a second factor of its members, as GitHub's
// "require two-factor authentication": a member without one cannot create
// keys or manage the organization (403 org_mfa_required); an owner
// without one cannot turn it on.
func TestOrganizationRequiresMFA(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		ctx := context.Background()
		bare := signup(t, s, "bare-owner@example.com")
		org0, _ := s.Client.CreateOrganizationWithResponse(ctx, client.CreateOrganizationJSONRequestBody{Name: "NoMFA"}, testutil.Bearer(bare.AccessToken))
		on := true
		u, _ := s.Client.UpdateOrganizationWithResponse(ctx, org0.JSON201.Id, client.UpdateOrganizationJSONRequestBody{RequireMfa: &on}, testutil.Bearer(bare.AccessToken))
		wantError(t, "an owner without a factor turns require_mfa on", u.StatusCode(), u.Body, client.ErrorCodeOrgMfaRequired)

		_, en, _ := userWithFactor(t, s, "mfa-owner@example.com")
		owner := en.Tokens.AccessToken
		org, _ := s.Client.CreateOrganizationWithResponse(ctx, client.CreateOrganizationJSONRequestBody{Name: "Strict"}, testutil.Bearer(owner))
		if org.JSON201 == nil {
			t.Fatalf("create org: %d %s", org.StatusCode(), org.Body)
		}
		u, _ = s.Client.UpdateOrganizationWithResponse(ctx, org.JSON201.Id, client.UpdateOrganizationJSONRequestBody{RequireMfa: &on}, testutil.Bearer(owner))
		if u.JSON200 == nil || u.JSON200.RequireMfa == nil || !*u.JSON200.RequireMfa {
			t.Fatalf("require_mfa on: %d %s", u.StatusCode(), u.Body)
		}
		// An admin without a factor joins.
		admin := signup(t, s, "bare-admin@example.com")
		inv, _ := s.Client.InviteMemberWithResponse(ctx, org.JSON201.Id, client.InviteMemberJSONRequestBody{Email: "bare-admin@example.com", Role: client.RoleAdmin}, testutil.Bearer(owner))
		if inv.StatusCode() != http.StatusAccepted {
			t.Fatalf("invite: %d %s", inv.StatusCode(), inv.Body)
		}
		if _, err := s.App.Store.DB().Exec(rebind(d, `INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, 'admin', ?)`),
			org.JSON201.Id.String(), admin.User.Id.String(), s.Clock.Now().UTC().Format("2006-01-02 15:04:05.000000+00:00")); err != nil {
			t.Fatal(err)
		}
		k, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "x", Scopes: []client.Scope{}}, testutil.Bearer(admin.AccessToken))
		wantError(t, "an admin without a factor creates an org key", k.StatusCode(), k.Body, client.ErrorCodeOrgMfaRequired)
		i2, _ := s.Client.InviteMemberWithResponse(ctx, org.JSON201.Id, client.InviteMemberJSONRequestBody{Email: "someone@example.com", Role: client.RoleMember}, testutil.Bearer(admin.AccessToken))
		wantError(t, "an admin without a factor invites", i2.StatusCode(), i2.Body, client.ErrorCodeOrgMfaRequired)
		// Reading stays open, and the owner with a factor manages as before.
		if g, _ := s.Client.GetOrganizationWithResponse(ctx, org.JSON201.Id, testutil.Bearer(admin.AccessToken)); g.JSON200 == nil || !*g.JSON200.RequireMfa {
			t.Fatalf("get org: %d %s", g.StatusCode(), g.Body)
		}
		if k, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "y", Scopes: []client.Scope{}}, testutil.Bearer(owner)); k.JSON201 == nil {
			t.Fatalf("the owner creates an org key: %d %s", k.StatusCode(), k.Body)
		}
		// Once the admin sets up a factor, they may.
		_, aen := enrollTOTP(t, s, admin.AccessToken)
		if k, _ := s.Client.CreateOrgAPIKeyWithResponse(ctx, org.JSON201.Id, client.CreateAPIKeyJSONRequestBody{Label: "z", Scopes: []client.Scope{}}, testutil.Bearer(aen.Tokens.AccessToken)); k.JSON201 == nil {
			t.Fatalf("the admin with a factor: %d %s", k.StatusCode(), k.Body)
		}
		// Only owners change the organization.
		u, _ = s.Client.UpdateOrganizationWithResponse(ctx, org.JSON201.Id, client.UpdateOrganizationJSONRequestBody{RequireMfa: &on}, testutil.Bearer(aen.Tokens.AccessToken))
		wantError(t, "an admin changes the organization", u.StatusCode(), u.Body, client.ErrorCodeInsufficientPermissions)
		// Another tenant's owner (at aal2) does not even see it.
		_, sen, _ := userWithFactor(t, s, "stranger@example.com")
		off := false
		u, _ = s.Client.UpdateOrganizationWithResponse(ctx, org.JSON201.Id, client.UpdateOrganizationJSONRequestBody{RequireMfa: &off}, testutil.Bearer(sen.Tokens.AccessToken))
		wantError(t, "another tenant changes the organization", u.StatusCode(), u.Body, client.ErrorCodeNotFound)
		// A name the spec refuses is a 400 before any handler.
		empty := ""
		u, _ = s.Client.UpdateOrganizationWithResponse(ctx, org.JSON201.Id, client.UpdateOrganizationJSONRequestBody{Name: &empty}, testutil.Bearer(owner))
		wantError(t, "an empty name", u.StatusCode(), u.Body, client.ErrorCodeInvalidRequest)
	})
}

// Password login takes the account's token before it hashes: concurrent
// wrong passwords get no more checks than the bucket holds, on every
// limiter store.
func TestConcurrentWrongPasswordsStayWithinTheLimit(t *testing.T) {
	forEachLimiterStore(t, func(t *testing.T, name, d string, set func(*app.Config)) {
		s := testutil.Start(t, d, func(c *app.Config) {
			set(c)
			c.RateLimits = true
			c.Limits.LoginAccount = ratelimit.Rule{Burst: 3, Per: time.Hour}
			c.Limits.LoginIP = ratelimit.Rule{Burst: 1000, Per: time.Minute}
		})
		email := "pw-" + name + "@example.com"
		signup(t, s, email)
		counts := concurrently(20, func() int { return login(s, email, "not the password at all").StatusCode() })
		if counts[http.StatusUnauthorized] > 3 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 20 {
			t.Fatalf("20 concurrent wrong passwords against a burst of 3: %v", counts)
		}
	})
}

// concurrently calls f n times at once and counts the statuses it returns.
func concurrently(n int, f func() int) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := f()
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

// wrongCode returns a 6-digit code that is none of the secret's codes
// accepted at now (a step either side).
func wrongCode(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "999999", "123456"} {
		if c != totpAt(t, secret, now.Add(-30*time.Second)) && c != totpAt(t, secret, now) && c != totpAt(t, secret, now.Add(30*time.Second)) {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}
