package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

// impersonate opens an impersonation session of userID for the operator's
// credentials.
func impersonate(t *testing.T, s *testutil.Server, auth client.RequestEditorFn, userID uuid.UUID) *client.ImpersonateUserResponse {
	t.Helper()
	r, err := s.Client.ImpersonateUserWithResponse(context.Background(), userID, auth)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestImpersonation: an operator's impersonation token acts as the user on
// /auth/me with act naming the operator, aal1 (even for a user with a
// second factor) and no refresh token; it is refused on password change,
// MFA enrolment, key creation and step-up; the user sees it in their
// events and sessions and can end it; it expires with its session.
func TestImpersonation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ctx := context.Background()
		ops := signup(t, s, opsEmail)
		_, en, _ := userWithFactor(t, s, "target@example.com")
		target := en.Tokens
		targetID := tokenClaims(t, target.AccessToken)["sub"].(string)
		r := impersonate(t, s, testutil.Bearer(ops.AccessToken), uuid.MustParse(targetID))
		check(t, "impersonate", r.StatusCode(), r.Body, 200)
		imp := r.JSON200
		if strings.Contains(string(r.Body), "refresh_token") || imp.ExpiresIn > 900 || imp.ExpiresIn <= 0 || imp.UserId.String() != targetID {
			t.Fatalf("impersonation answer: %s", r.Body)
		}
		c := tokenClaims(t, imp.AccessToken)
		act, _ := c["act"].(map[string]any)
		if act == nil || act["sub"] != ops.User.Id.String() || c["sub"] != targetID || c["aal"] != "aal1" ||
			len(c["amr"].([]any)) != 1 || c["amr"].([]any)[0] != "impersonation" || c["sid"] != imp.SessionId.String() {
			t.Fatalf("claims: %v", c)
		}
		if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat > 900 {
			t.Fatalf("token lives %v s", exp-iat)
		}
		tok := testutil.Bearer(imp.AccessToken)
		if m, st := me(t, s, tok); st != 200 || m.JSON200.Id.String() != targetID {
			t.Fatalf("me: %d", st)
		}
		// Introspection shows it too.
		rs := createKey(t, s, testutil.Bearer(target.AccessToken), "rs", "tokens:introspect")
		if in := active(t, "impersonation token", s, imp.AccessToken, testutil.APIKey(rs.Key)); in.Act == nil ||
			in.Act.Sub != ops.User.Id.String() || in.Aal == nil || string(*in.Aal) != "aal1" {
			t.Fatalf("introspection: %+v", in)
		}
		// Credentials cannot change, nor assurance rise.
		cp, _ := s.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: goodPassword, NewPassword: "another good password"}, tok)
		wantError(t, "password change", cp.StatusCode(), cp.Body, client.ErrorCodeInsufficientPermissions)
		en2, _ := s.Client.EnrollTOTPWithResponse(ctx, client.EnrollTOTPJSONRequestBody{}, tok)
		wantError(t, "TOTP enrolment", en2.StatusCode(), en2.Body, client.ErrorCodeInsufficientPermissions)
		ck, _ := s.Client.CreateAPIKeyWithResponse(ctx, client.CreateAPIKeyJSONRequestBody{Label: "k", Scopes: []client.Scope{}}, tok)
		wantError(t, "API key", ck.StatusCode(), ck.Body, client.ErrorCodeInsufficientPermissions)
		v := verifyCode(s, imp.AccessToken, "totp", "123456")
		wantError(t, "step-up", v.StatusCode(), v.Body, client.ErrorCodeInsufficientPermissions)
		ip := impersonate(t, s, tok, uuid.MustParse(targetID))
		wantError(t, "impersonating from an impersonation", ip.StatusCode(), ip.Body, client.ErrorCodeInsufficientPermissions)
		// The user sees it, naming the operator.
		ev, _ := s.Client.ListEventsWithResponse(ctx, &client.ListEventsParams{}, testutil.Bearer(target.AccessToken))
		found := false
		for _, e := range ev.JSON200.Events {
			if e.Type == "impersonation_started" {
				found = e.SessionId != nil && *e.SessionId == imp.SessionId && e.Detail != nil &&
					(*e.Detail)["actor_id"] == ops.User.Id.String() && (*e.Detail)["actor_email"] == opsEmail
			}
		}
		if !found {
			t.Fatalf("no impersonation_started event naming the operator: %s", ev.Body)
		}
		ls, _ := s.Client.ListSessionsWithResponse(ctx, &client.ListSessionsParams{}, testutil.Bearer(target.AccessToken))
		listed := false
		for _, x := range ls.JSON200.Sessions {
			listed = listed || x.Id == imp.SessionId && x.ActorId != nil && *x.ActorId == ops.User.Id
		}
		if !listed {
			t.Fatalf("the session is not listed with its operator: %s", ls.Body)
		}
		// An operator's personal key with admin:users:write impersonates too.
		opsKey := createKey(t, s, testutil.Bearer(ops.AccessToken), "ops", "admin:users:write")
		rk := impersonate(t, s, testutil.APIKey(opsKey.Key), uuid.MustParse(targetID))
		check(t, "impersonate with a key", rk.StatusCode(), rk.Body, 200)
		if act, _ := tokenClaims(t, rk.JSON200.AccessToken)["act"].(map[string]any); act == nil || act["sub"] != ops.User.Id.String() {
			t.Fatalf("act of a key's impersonation: %v", act)
		}
		// The user can end one.
		r2 := impersonate(t, s, testutil.Bearer(ops.AccessToken), uuid.MustParse(targetID))
		check(t, "impersonate again", r2.StatusCode(), r2.Body, 200)
		rv, _ := s.Client.RevokeSessionWithResponse(ctx, r2.JSON200.SessionId, testutil.Bearer(target.AccessToken))
		if rv.StatusCode() != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", rv.StatusCode(), rv.Body)
		}
		if _, st := me(t, s, testutil.Bearer(r2.JSON200.AccessToken)); st != 401 {
			t.Fatalf("me after the user revoked it: %d", st)
		}
		// It expires with its session, whatever the access TTL.
		s.Clock.Advance(15*time.Minute + time.Second)
		if _, st := me(t, s, tok); st != 401 {
			t.Fatalf("me after 15 minutes: %d", st)
		}
		ops.AccessToken = login(s, opsEmail, goodPassword).JSON200.AccessToken
		// Only operators impersonate; unknown users are 404.
		other := signup(t, s, "other@example.com")
		r = impersonate(t, s, testutil.Bearer(other.AccessToken), uuid.MustParse(targetID))
		wantError(t, "non-operator", r.StatusCode(), r.Body, client.ErrorCodeInsufficientPermissions)
		r = impersonate(t, s, testutil.Bearer(ops.AccessToken), uuid.New())
		wantError(t, "unknown user", r.StatusCode(), r.Body, client.ErrorCodeNotFound)
	})
}

// TestImpersonationIsReadOnlyEverywhere walks openapi.yaml with an
// impersonation token: every operation that needs aal2, and every other
// operation that is not a GET, answers 403 insufficient_permissions before
// any handler; the aal1 reads do not; logging out this session works. A
// new operation is covered the day it is declared.
func TestImpersonationIsReadOnlyEverywhere(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator)
		ops := signup(t, s, opsEmail)
		target := signup(t, s, "target@example.com")
		imp := impersonate(t, s, testutil.Bearer(ops.AccessToken), target.User.Id).JSON200.AccessToken
		refused, reads := 0, 0
		for _, o := range specOperations(t) {
			// No security of its own: the document's, a bearer token. An
			// operation that also admits anonymous callers (RFC 7009
			// revocation) answers a refused token as it answers anyone.
			bearer, anonymous := o.op.Security == nil, false
			for _, req := range o.securityOrNone() {
				if _, ok := req["bearerAuth"]; ok {
					bearer = true
				}
				anonymous = anonymous || len(req) == 0
			}
			if !bearer || anonymous {
				continue
			}
			level, _ := o.op.Extensions["x-latch-assurance"].(string)
			_, exempt := o.op.Extensions["x-latch-assurance-exempt"]
			query := ""
			if exempt {
				query = "?scope=global"
			}
			res, body := o.callAs(t, s, query, imp)
			if level == "aal2" || o.method != http.MethodGet {
				if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"insufficient_permissions"`) {
					t.Errorf("%s %s%s with an impersonation token: %d %s, want 403 insufficient_permissions", o.method, o.path, query, res.StatusCode, body)
				}
				refused++
				continue
			}
			if strings.Contains(string(body), `"insufficient_permissions"`) || res.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s %s is an aal1 read but answered %d %s", o.method, o.path, res.StatusCode, body)
			}
			reads++
		}
		if refused < 30 || reads < 10 {
			t.Fatalf("walked %d refusals and %d reads", refused, reads)
		}
		// Ending its own session is allowed.
		r, _ := s.Client.LogoutWithResponse(context.Background(), &client.LogoutParams{}, testutil.Bearer(imp))
		if r.StatusCode() != http.StatusNoContent {
			t.Fatalf("local logout: %d %s", r.StatusCode(), r.Body)
		}
		if _, st := me(t, s, testutil.Bearer(imp)); st != 401 {
			t.Fatalf("me after logout: %d", st)
		}
	})
}

func (o specOp) securityOrNone() openapi3.SecurityRequirements {
	if o.op.Security == nil {
		return nil
	}
	return *o.op.Security
}

// callAs is call with a body of the operation's own media type: a form
// with a token for an operation that takes only forms.
func (o specOp) callAs(t *testing.T, s *testutil.Server, query, tok string) (*http.Response, []byte) {
	t.Helper()
	if o.op.RequestBody == nil || o.op.RequestBody.Value.Content.Get("application/json") != nil {
		return o.call(t, s, query, tok)
	}
	u := s.URL + pathParam.ReplaceAllStringFunc(o.path, func(string) string { return uuid.NewString() }) + query
	req, err := http.NewRequest(o.method, u, strings.NewReader("token=x"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

// TestImpersonationEndsNoSessionOfTheUser: at the session quota, an
// impersonation does not end the user's oldest session (a login would).
func TestImpersonationEndsNoSessionOfTheUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, withOperator, func(c *app.Config) { c.Quotas.Sessions = 1 })
		ops := signup(t, s, opsEmail)
		target := signup(t, s, "target@example.com")
		r := impersonate(t, s, testutil.Bearer(ops.AccessToken), target.User.Id)
		check(t, "impersonate", r.StatusCode(), r.Body, 200)
		if _, st := me(t, s, testutil.Bearer(target.AccessToken)); st != 200 {
			t.Fatalf("the user's own session after an impersonation at the quota: %d", st)
		}
		if _, st := me(t, s, testutil.Bearer(r.JSON200.AccessToken)); st != 200 {
			t.Fatalf("the impersonation: %d", st)
		}
	})
}
