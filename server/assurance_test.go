package server_test

import (
	"bytes"
	"context"
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
	"github.com/latchauth/latch/client"
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
		s := testutil.Start(t, d)
		_, _, aal1 := userWithFactor(t, s, "walker@example.com")
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
	stores := map[string]func(t *testing.T, c *app.Config){
		"memory":   func(t *testing.T, c *app.Config) { c.RateLimitStore = "memory" },
		"postgres": func(t *testing.T, c *app.Config) { c.RateLimitStore = "postgres" },
		"redis": func(t *testing.T, c *app.Config) {
			c.RateLimitStore = "redis"
			c.RedisURL = testutil.RedisURL(t)
			c.RedisPrefix = "latch-test-" + uuid.NewString() + ":"
		},
	}
	for name, set := range stores {
		t.Run(name, func(t *testing.T) {
			d := "sqlite"
			if name == "postgres" {
				d = "postgres"
			}
			s := testutil.Start(t, d, func(c *app.Config) {
				set(t, c)
				c.RateLimits = true
				c.Limits.MFAAccount = ratelimit.Rule{Burst: 5, Per: time.Hour}
				c.Limits.MFAIP = ratelimit.Rule{Burst: 1000, Per: time.Minute}
				c.Limits.LoginAccount = ratelimit.Rule{Burst: 1000, Per: time.Minute}
			})
			secret, _, aal1 := userWithFactor(t, s, "guess-"+name+"@example.com")
			wrong := "000000"
			for _, at := range []time.Time{s.Clock.Now().Add(-30 * time.Second), s.Clock.Now(), s.Clock.Now().Add(30 * time.Second)} {
				if totpAt(t, secret, at) == wrong {
					wrong = "999999"
				}
			}
			var mu sync.Mutex
			counts := map[int]int{}
			var wg sync.WaitGroup
			for range 30 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := verifyCode(s, aal1, "totp", wrong)
					mu.Lock()
					counts[r.StatusCode()]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if counts[http.StatusBadRequest] > 5 || counts[http.StatusBadRequest]+counts[http.StatusTooManyRequests] != 30 {
				t.Fatalf("30 concurrent wrong codes against a burst of 5: %v", counts)
			}
		})
	}
}

// Successful second factors give their token back: a user who verifies
// more often than the burst is never refused.
func TestSuccessfulFactorsAreNotCounted(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.MFAAccount = ratelimit.Rule{Burst: 2, Per: time.Hour}
		c.Limits.LoginAccount = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	secret, _, _ := userWithFactor(t, s, "often@example.com")
	for i := range 5 {
		s.Clock.Advance(31 * time.Second) // a fresh TOTP step each time
		l := login(s, "often@example.com", goodPassword)
		if l.JSON200 == nil {
			t.Fatalf("login %d: %d %s", i, l.StatusCode(), l.Body)
		}
		if v := verifyCode(s, l.JSON200.AccessToken, "totp", totpAt(t, secret, s.Clock.Now())); v.JSON200 == nil {
			t.Fatalf("verify %d: %d %s", i, v.StatusCode(), v.Body)
		}
	}
}
