package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// askOTP asks for a sign-in mail and returns the answer's status and body.
func askOTP(t *testing.T, s *testutil.Server, email string, createUser bool, redirect string) (int, []byte) {
	t.Helper()
	body := client.SignInWithOtpJSONRequestBody{Email: client.Email(email)}
	if createUser {
		body.CreateUser = &createUser
	}
	if redirect != "" {
		body.RedirectTo = &redirect
	}
	res, err := s.Client.SignInWithOtpWithResponse(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode(), res.Body
}

var otpCode = regexp.MustCompile(`\b([0-9]{6})\b`)

// otpIn returns the code and, when the mail has a link, its token; both
// parts carry them.
func otpIn(t *testing.T, m *mail.Message) (code, tok string) {
	t.Helper()
	if m.Subject != "Your sign-in code" {
		t.Fatalf("not a sign-in mail: %q", m.Subject)
	}
	sub := otpCode.FindStringSubmatch(m.Text)
	if sub == nil || !strings.Contains(m.HTML, sub[1]) {
		t.Fatalf("no code in the mail:\n%s", m.Text)
	}
	if linkToken.MatchString(m.Text) {
		tok = tokenIn(t, m)
	}
	return sub[1], tok
}

// otpMail asks for a sign-in mail for email and returns the code and the
// token of the one mail it sends.
func otpMail(t *testing.T, s *testutil.Server, box *mailbox, email string, createUser bool) (code, tok string) {
	t.Helper()
	if st, body := askOTP(t, s, email, createUser, "https://app.example.com/callback"); st != 202 {
		t.Fatalf("ask: %d %s", st, body)
	}
	msgs := flush(t, s, box)
	if len(msgs) != 1 || msgs[0].To != email {
		t.Fatalf("%d mails after the request", len(msgs))
	}
	return otpIn(t, msgs[0])
}

func verifyOTPCode(s *testutil.Server, email, code string) *client.VerifyOtpResponse {
	e := client.Email(email)
	res, err := s.Client.VerifyOtpWithResponse(context.Background(), client.VerifyOtpJSONRequestBody{Email: &e, Code: &code})
	if err != nil {
		panic(err)
	}
	return res
}

func verifyOTPToken(s *testutil.Server, tok string) *client.VerifyOtpResponse {
	res, err := s.Client.VerifyOtpWithResponse(context.Background(), client.VerifyOtpJSONRequestBody{Token: &tok})
	if err != nil {
		panic(err)
	}
	return res
}

// otherCode returns a code that is not code.
func otherCode(code string, i int) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1+i)%1_000_000)
}

func otpConfig(c *app.Config) {
	c.OTP.RedirectURLs = []string{"https://app.example.com/callback", "https://app.example.com/magic/*"}
}

// TestOTPAcrossInstances: a code and a link asked for on one instance sign
// in once on another; replays are refused on both; a new request replaces
// the pending challenge.
func TestOTPAcrossInstances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		url := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, url, otpConfig)
		b := testutil.StartURL(t, url, otpConfig)
		box := &mailbox{}
		signup(t, a, "ada@example.com")
		flush(t, a, box)

		code, tok := otpMail(t, a, box, "ada@example.com", false)
		r := verifyOTPCode(b, "ada@example.com", code)
		if r.JSON200 == nil || r.JSON200.Aal != client.Aal1 || r.JSON200.Mfa != nil || r.JSON200.User.Email == nil ||
			string(*r.JSON200.User.Email) != "ada@example.com" {
			t.Fatalf("code on b: %d %s", r.StatusCode(), r.Body)
		}
		wantAssurance(t, r.JSON200.AccessToken, "aal1", "otp")
		if _, st := me(t, a, testutil.Bearer(r.JSON200.AccessToken)); st != 200 {
			t.Fatalf("the session on a: %d", st)
		}
		for name, s := range map[string]*testutil.Server{"a": a, "b": b} {
			x := verifyOTPCode(s, "ada@example.com", code)
			wantError(t, "code replayed on "+name, x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
			x = verifyOTPToken(s, tok)
			wantError(t, "link of a spent challenge on "+name, x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		}

		// The link works once, across instances.
		_, tok = otpMail(t, a, box, "ada@example.com", false)
		if x := verifyOTPToken(b, tok); x.JSON200 == nil {
			t.Fatalf("link on b: %d %s", x.StatusCode(), x.Body)
		}
		x := verifyOTPToken(a, tok)
		wantError(t, "link replayed on a", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)

		// A new request replaces the pending challenge: the first mail's
		// code and link no longer work.
		oldCode, oldTok := otpMail(t, a, box, "ada@example.com", false)
		newCode, newTok := otpMail(t, b, box, "ada@example.com", false)
		if oldCode != newCode {
			x = verifyOTPCode(a, "ada@example.com", oldCode)
			wantError(t, "the replaced challenge's code", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		}
		x = verifyOTPToken(a, oldTok)
		wantError(t, "the replaced challenge's link", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		if x := verifyOTPToken(a, newTok); x.JSON200 == nil {
			t.Fatalf("the new link: %d %s", x.StatusCode(), x.Body)
		}
		x = verifyOTPCode(b, "ada@example.com", newCode)
		wantError(t, "the code of a challenge its link spent", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)

		// A code is bound to its address.
		signup(t, a, "bob@example.com")
		flush(t, a, box)
		code, _ = otpMail(t, a, box, "ada@example.com", false)
		x = verifyOTPCode(b, "bob@example.com", code)
		wantError(t, "ada's code for bob", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
	})
}

// TestOTPWrongCodesEndTheChallenge: five wrong codes end the challenge,
// its link included, also when they arrive at once on two instances.
func TestOTPWrongCodesEndTheChallenge(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		url := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, url, otpConfig)
		b := testutil.StartURL(t, url, otpConfig)
		box := &mailbox{}
		signup(t, a, "guess@example.com")
		flush(t, a, box)

		code, tok := otpMail(t, a, box, "guess@example.com", false)
		for i := range 4 {
			x := verifyOTPCode(b, "guess@example.com", otherCode(code, i))
			wantError(t, "wrong code", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		}
		// Four wrong codes leave the challenge alive.
		if x := verifyOTPCode(a, "guess@example.com", code); x.JSON200 == nil {
			t.Fatalf("the right code after four wrong ones: %d %s", x.StatusCode(), x.Body)
		}

		code, tok = otpMail(t, a, box, "guess@example.com", false)
		for i := range 5 {
			verifyOTPCode(b, "guess@example.com", otherCode(code, i))
		}
		x := verifyOTPCode(a, "guess@example.com", code)
		wantError(t, "the right code after five wrong ones", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		x = verifyOTPToken(a, tok)
		wantError(t, "the link after five wrong codes", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)

		// Concurrent wrong codes take at most five attempts.
		code, tok = otpMail(t, a, box, "guess@example.com", false)
		i := 0
		var mu = make(chan struct{}, 1)
		mu <- struct{}{}
		counts := concurrently(16, func() int {
			<-mu
			n := i
			i++
			mu <- struct{}{}
			s := a
			if n%2 == 1 {
				s = b
			}
			return verifyOTPCode(s, "guess@example.com", otherCode(code, n)).StatusCode()
		})
		if counts[400] != 16 {
			t.Fatalf("concurrent wrong codes: %v", counts)
		}
		var attempts int
		if err := a.App.Store.DB().QueryRow(`SELECT attempts FROM otp_challenges`).Scan(&attempts); err != nil || attempts != domain.OTPMaxAttempts {
			t.Fatalf("attempts %d (%v), want %d", attempts, err, domain.OTPMaxAttempts)
		}
		x = verifyOTPToken(b, tok)
		wantError(t, "the link after concurrent wrong codes", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)

		// Concurrent uses of one link: one wins.
		_, tok = otpMail(t, a, box, "guess@example.com", false)
		n := 0
		counts = concurrently(8, func() int {
			<-mu
			n++
			s := a
			if n%2 == 0 {
				s = b
			}
			mu <- struct{}{}
			return verifyOTPToken(s, tok).StatusCode()
		})
		if counts[200] != 1 || counts[400] != 7 {
			t.Fatalf("concurrent uses of one link: %v", counts)
		}
	})
}

// TestOTPExpires: a challenge works for LATCH_OTP_TTL (10 minutes) on the
// injected clock, not after.
func TestOTPExpires(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig)
		box := &mailbox{}
		signup(t, s, "late@example.com")
		flush(t, s, box)
		code, _ := otpMail(t, s, box, "late@example.com", false)
		s.Clock.Advance(10*time.Minute - time.Second)
		if x := verifyOTPCode(s, "late@example.com", code); x.JSON200 == nil {
			t.Fatalf("a second before the expiry: %d %s", x.StatusCode(), x.Body)
		}
		code, tok := otpMail(t, s, box, "late@example.com", false)
		s.Clock.Advance(10 * time.Minute)
		x := verifyOTPCode(s, "late@example.com", code)
		wantError(t, "an expired code", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		x = verifyOTPToken(s, tok)
		wantError(t, "an expired link", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
		// Pruning removes it.
		s.Clock.Advance(time.Second)
		if _, err := s.App.Service.Pruner().Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM otp_challenges`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d challenges after pruning (%v)", n, err)
		}
	})
}

// TestOTPDoesNotRevealAccounts: the answer is the same for a known and an
// unknown address; nothing is mailed to an unknown address and no account
// is created without create_user.
func TestOTPDoesNotRevealAccounts(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig)
		box := &mailbox{}
		signup(t, s, "known@example.com")
		flush(t, s, box)
		type answer struct {
			status int
			body   string
			header http.Header
		}
		ask := func(email string) answer {
			b, _ := json.Marshal(map[string]string{"email": email})
			res, body := do(t, s, "POST", "/auth/otp", "application/json", b, nil)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("body %s", body)
			}
			return answer{res.StatusCode, string(body), headersWithout(res.Header, "X-Request-Id", "Date")}
		}
		known := ask("known@example.com")
		if known.status != 202 || known.body != `{"status":"accepted"}`+"\n" && known.body != `{"status":"accepted"}` {
			t.Fatalf("known: %+v", known)
		}
		if msgs := flush(t, s, box); len(msgs) != 1 {
			t.Fatalf("%d mails for a known address", len(msgs))
		}
		unknown := ask("nobody@example.com")
		if unknown.status != known.status || unknown.body != known.body || !equalHeaders(unknown.header, known.header) {
			t.Fatalf("unknown: %+v, known: %+v", unknown, known)
		}
		if msgs := flush(t, s, box); len(msgs) != 0 {
			t.Fatalf("%d mails for an unknown address", len(msgs))
		}
		var users, challenges int
		db := s.App.Store.DB()
		if err := db.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users); err != nil || users != 1 {
			t.Fatalf("%d users (%v)", users, err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM otp_challenges WHERE email = 'nobody@example.com'`).Scan(&challenges); err != nil || challenges != 0 {
			t.Fatalf("%d challenges for an unknown address (%v)", challenges, err)
		}
		x := verifyOTPCode(s, "nobody@example.com", "123456")
		wantError(t, "a code for an unknown address", x.StatusCode(), x.Body, client.ErrorCodeInvalidToken)
	})
}

// TestOTPCreatesUser: with create_user an unknown address gets a mail and
// the verification creates the account, its email verified; an existing
// unverified account's email becomes verified.
func TestOTPCreatesUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig, func(c *app.Config) { c.RequireVerifiedEmail = true })
		box := &mailbox{}
		code, _ := otpMail(t, s, box, "new@example.com", true)
		x := verifyOTPCode(s, "new@example.com", code)
		if x.JSON200 == nil || !x.JSON200.User.EmailVerified {
			t.Fatalf("create_user: %d %s", x.StatusCode(), x.Body)
		}
		wantAssurance(t, x.JSON200.AccessToken, "aal1", "otp")
		u, st := me(t, s, testutil.Bearer(x.JSON200.AccessToken))
		if st != 200 || !u.JSON200.EmailVerified || u.JSON200.Id != x.JSON200.User.Id {
			t.Fatalf("me: %d %+v", st, u)
		}
		// The account has no password: a login with any is refused.
		if l := login(s, "new@example.com", goodPassword); l.StatusCode() != 401 {
			t.Fatalf("password login of an account created by email: %d", l.StatusCode())
		}
		// create_user again signs the account in, creating nothing.
		code, _ = otpMail(t, s, box, "new@example.com", true)
		if y := verifyOTPCode(s, "new@example.com", code); y.JSON200 == nil || y.JSON200.User.Id != x.JSON200.User.Id {
			t.Fatalf("second sign-in: %d %s", y.StatusCode(), y.Body)
		}

		// An unverified account (login refused) is verified by a code.
		res, _ := s.Client.SignupWithResponse(context.Background(), client.SignupJSONRequestBody{Email: "pending@example.com", Password: goodPassword})
		if res.StatusCode() != 202 {
			t.Fatalf("signup: %d", res.StatusCode())
		}
		flush(t, s, box)
		if l := login(s, "pending@example.com", goodPassword); l.StatusCode() != 403 {
			t.Fatalf("login before verification: %d %s", l.StatusCode(), l.Body)
		}
		code, _ = otpMail(t, s, box, "pending@example.com", false)
		if y := verifyOTPCode(s, "pending@example.com", code); y.JSON200 == nil || !y.JSON200.User.EmailVerified {
			t.Fatalf("code of an unverified account: %d %s", y.StatusCode(), y.Body)
		}
		if l := login(s, "pending@example.com", goodPassword); l.StatusCode() != 200 {
			t.Fatalf("login after the code verified the email: %d %s", l.StatusCode(), l.Body)
		}
		var users int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users); err != nil || users != 2 {
			t.Fatalf("%d users (%v)", users, err)
		}
	})
}

// TestOTPSecondFactor: a user with a verified factor gets an aal1 session
// with the pending factors, which the factor raises, as after a login.
func TestOTPSecondFactor(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig)
		box := &mailbox{}
		tok := signup(t, s, "two@example.com")
		secret, _ := enrollTOTP(t, s, tok.AccessToken)
		flush(t, s, box)
		code, _ := otpMail(t, s, box, "two@example.com", false)
		x := verifyOTPCode(s, "two@example.com", code)
		if x.JSON200 == nil || x.JSON200.Aal != client.Aal1 || x.JSON200.Mfa == nil || len(x.JSON200.Mfa.Factors) != 1 ||
			x.JSON200.Mfa.Factors[0].Type != client.MFAFactorTypeTotp {
			t.Fatalf("code of a user with a factor: %d %s", x.StatusCode(), x.Body)
		}
		wantAssurance(t, x.JSON200.AccessToken, "aal1", "otp")
		s.Clock.Advance(time.Minute)
		r := verifyCode(s, x.JSON200.AccessToken, "totp", totpAt(t, secret, s.Clock.Now()))
		if r.JSON200 == nil || r.JSON200.SessionId != x.JSON200.SessionId || r.JSON200.Aal != client.Aal2 {
			t.Fatalf("second factor: %d %s", r.StatusCode(), r.Body)
		}
		wantAssurance(t, r.JSON200.AccessToken, "aal2", "otp", "mfa")
	})
}

// TestOTPLimits: requests are limited per address (for every address
// alike) and per client IP, verifications per client IP, with 429 and
// Retry-After.
func TestOTPLimits(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig, func(c *app.Config) {
			c.RateLimits = true
			c.Limits.OTPIP = ratelimit.Rule{Burst: 4, Per: time.Hour}
			c.Limits.OTPVerifyIP = ratelimit.Rule{Burst: 3, Per: time.Hour}
		})
		box := &mailbox{}
		signup(t, s, "limit@example.com")
		flush(t, s, box)
		want429 := func(what string, st int, body []byte) {
			t.Helper()
			wantError(t, what, st, body, client.ErrorCodeRateLimited)
		}
		for _, e := range []string{"limit@example.com", "nobody@example.com"} {
			if st, body := askOTP(t, s, e, false, ""); st != 202 {
				t.Fatalf("%s: %d %s", e, st, body)
			}
			st, body := askOTP(t, s, e, false, "")
			want429("second request for "+e+" within the minute", st, body)
		}
		if msgs := flush(t, s, box); len(msgs) != 1 {
			t.Fatalf("%d mails", len(msgs))
		}
		// The IP's fourth token is the last.
		s.Clock.Advance(time.Minute)
		askOTP(t, s, "other@example.com", false, "")
		st, body := askOTP(t, s, "third@example.com", false, "")
		want429("over the IP limit", st, body)
		res, _ := do(t, s, "POST", "/auth/otp", "application/json", []byte(`{"email":"fourth@example.com"}`), nil)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("over the IP limit: %d %v", res.StatusCode, res.Header)
		}
		for range 3 {
			x := verifyOTPCode(s, "limit@example.com", "000000")
			if x.StatusCode() != 400 {
				t.Fatalf("verify: %d %s", x.StatusCode(), x.Body)
			}
		}
		x := verifyOTPCode(s, "limit@example.com", "000000")
		want429("verifications over the IP limit", x.StatusCode(), x.Body)
		if x.HTTPResponse.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}

// TestOTPRedirect: redirect_to must be in LATCH_OTP_REDIRECT_URLS; the
// link is redirect_to with the token in its query, else LATCH_OTP_URL,
// else the mail carries the code alone.
func TestOTPRedirect(t *testing.T) {
	s := testutil.Start(t, "sqlite", otpConfig)
	box := &mailbox{}
	signup(t, s, "go@example.com")
	flush(t, s, box)
	for _, bad := range []string{"https://evil.example/callback", "https://app.example.com/callback/x", "https://app.example.com.evil.example/magic/x",
		"http://app.example.com/callback", "https://app.example.com/magic/../admin", "https://app.example.com/magic/%2e%2e/admin", `https://app.example.com/magic\x`, "javascript:alert(1)", "https://user@app.example.com/callback"} {
		st, body := askOTP(t, s, "go@example.com", false, bad)
		wantError(t, bad, st, body, client.ErrorCodeInvalidRequest)
	}
	if msgs := flush(t, s, box); len(msgs) != 0 {
		t.Fatalf("%d mails for refused redirects", len(msgs))
	}
	askOTP(t, s, "go@example.com", false, "https://app.example.com/magic/in?state=x")
	msgs := flush(t, s, box)
	if len(msgs) != 1 || !regexp.MustCompile(`https://app\.example\.com/magic/in\?state=x&amp;token=|https://app\.example\.com/magic/in\?state=x&token=`).MatchString(msgs[0].Text) {
		t.Fatalf("link of a wildcard redirect:\n%s", msgs[0].Text)
	}
	_, tok := otpIn(t, msgs[0])
	if x := verifyOTPToken(s, tok); x.JSON200 == nil {
		t.Fatalf("the link's token: %d %s", x.StatusCode(), x.Body)
	}
	// No redirect_to and no LATCH_OTP_URL: the code alone.
	askOTP(t, s, "go@example.com", false, "")
	msgs = flush(t, s, box)
	if code, tok := otpIn(t, msgs[0]); tok != "" || strings.Contains(msgs[0].Text, "http") {
		t.Fatalf("a link without redirect_to or LATCH_OTP_URL:\n%s", msgs[0].Text)
	} else if x := verifyOTPCode(s, "go@example.com", code); x.JSON200 == nil {
		t.Fatalf("code: %d %s", x.StatusCode(), x.Body)
	}

	u := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.Recovery.PublicURL = "https://accounts.example.com"
		c.OTP.URL = "/sign-in#token={token}"
	})
	signup(t, u, "default@example.com")
	flush(t, u, box)
	askOTP(t, u, "default@example.com", false, "")
	msgs = flush(t, u, box)
	if !strings.Contains(msgs[0].Text, "https://accounts.example.com/sign-in#token=") {
		t.Fatalf("link from LATCH_OTP_URL:\n%s", msgs[0].Text)
	}
}

// TestOTPSecretsAreNotStoredInPlain: the challenge keeps the SHA-256 of the
// token and a keyed hash of the code; the outbox keeps them only sealed,
// and not once the mail is sent; the log transport redacts both.
func TestOTPSecretsAreNotStoredInPlain(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig)
		box := &mailbox{}
		signup(t, s, "plain@example.com")
		flush(t, s, box)
		askOTP(t, s, "plain@example.com", false, "https://app.example.com/callback")
		s.App.Service.WaitBackground()
		db := s.App.Store.DB()
		tables := []string{"otp_challenges", "mail_outbox", "security_events", "users", "server_secrets"}
		queued := dump(t, db, tables...)
		var payload []byte
		if err := db.QueryRow(`SELECT payload FROM mail_outbox WHERE template = 'email_otp'`).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		msgs := flush(t, s, box)
		if len(msgs) != 1 {
			t.Fatalf("%d mails", len(msgs))
		}
		code, tok := otpIn(t, msgs[0])
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		sent := dump(t, db, tables...)
		for _, f := range []string{tok, string(raw), hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), "token="} {
			if strings.Contains(queued, f) || strings.Contains(sent, f) {
				t.Fatalf("the token is stored in plain form (%q)", f)
			}
		}
		if strings.Contains(string(payload), code) || strings.Contains(string(payload), `"code"`) {
			t.Fatal("the code is in the outbox payload in plain form")
		}
		var tokenHash, codeHash []byte
		if err := db.QueryRow(`SELECT token_hash, code_hash FROM otp_challenges`).Scan(&tokenHash, &codeHash); err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(raw); string(tokenHash) != string(want[:]) {
			t.Fatal("the token's SHA-256 is not what is stored")
		}
		for _, unkeyed := range [][32]byte{sha256.Sum256([]byte(code)), sha256.Sum256([]byte("plain@example.com\x00" + code)),
			sha256.Sum256([]byte("plain@example.com" + code))} {
			if string(codeHash) == string(unkeyed[:]) {
				t.Fatal("the code's hash is not keyed")
			}
		}
		if strings.Contains(string(codeHash), code) {
			t.Fatal("the code is stored in plain form")
		}
		var payloads int
		if err := db.QueryRow(`SELECT COUNT(*) FROM mail_outbox WHERE payload IS NOT NULL`).Scan(&payloads); err != nil || payloads != 0 {
			t.Fatalf("%d payloads kept after sending", payloads)
		}
		if strings.Contains(s.Log.String(), code) || strings.Contains(s.Log.String(), tok) {
			t.Fatal("the code or the token reached the log")
		}
	})
}

// TestOTPRefusesBannedUsers: a banned user's code opens no session (403
// user_banned), as a login would.
func TestOTPRefusesBannedUsers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, otpConfig)
		box := &mailbox{}
		ada := signup(t, s, "banned@example.com")
		flush(t, s, box)
		if _, err := s.App.Store.DB().Exec(rebind(d, `UPDATE users SET banned_until = ? WHERE id = ?`),
			s.Clock.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05.000000+00:00"), ada.User.Id); err != nil {
			t.Fatal(err)
		}
		code, _ := otpMail(t, s, box, "banned@example.com", false)
		x := verifyOTPCode(s, "banned@example.com", code)
		if x.StatusCode() != 403 {
			t.Fatalf("a banned user's code: %d %s", x.StatusCode(), x.Body)
		}
		wantError(t, "a banned user's code", x.StatusCode(), x.Body, client.ErrorCodeUserBanned)
	})
}
