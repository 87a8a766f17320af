package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

const newPassword = "a brand new passphrase 42"

// mailbox is a mail transport that keeps every message it is given.
type mailbox struct {
	mu   sync.Mutex
	msgs []*mail.Message
	down bool
}

func (b *mailbox) Send(_ context.Context, m *mail.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errors.New("connection refused")
	}
	b.msgs = append(b.msgs, m)
	return nil
}

func (b *mailbox) count() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.msgs) }

// flush finishes the requests' background work, sends every due mail to
// box, and returns the mails this flush delivered.
func flush(t *testing.T, s *testutil.Server, box *mailbox) []*mail.Message {
	t.Helper()
	s.App.Service.WaitBackground()
	before := box.count()
	if _, err := s.App.Mail.WithTransport(box).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	return append([]*mail.Message(nil), box.msgs[before:]...)
}

var linkToken = regexp.MustCompile(`token=([A-Za-z0-9_-]{43})\b`)

// tokenIn returns the token of the link in a mail's text, checking that the
// HTML part carries the same link.
func tokenIn(t *testing.T, m *mail.Message) string {
	t.Helper()
	sub := linkToken.FindStringSubmatch(m.Text)
	if sub == nil {
		t.Fatalf("no link in the mail:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, sub[0]) {
		t.Fatal("the HTML part has another link")
	}
	return sub[1]
}

func forgot(t *testing.T, s *testutil.Server, email string) {
	t.Helper()
	res, err := s.Client.ForgotPasswordWithResponse(context.Background(), client.ForgotPasswordJSONRequestBody{Email: client.Email(email)})
	if err != nil || res.StatusCode() != http.StatusAccepted || res.JSON202.Status != client.AcceptedStatusAccepted {
		t.Fatalf("forgot: %v %d %s", err, res.StatusCode(), res.Body)
	}
}

// resetMail asks for a reset of email and returns the token of the one mail.
func resetMail(t *testing.T, s *testutil.Server, box *mailbox, email string) string {
	t.Helper()
	forgot(t, s, email)
	msgs := flush(t, s, box)
	if len(msgs) != 1 || msgs[0].To != email {
		t.Fatalf("%d mails after forgot", len(msgs))
	}
	return tokenIn(t, msgs[0])
}

func reset(s *testutil.Server, tok, pw string) *client.ResetPasswordResponse {
	res, err := s.Client.ResetPasswordWithResponse(context.Background(), client.ResetPasswordJSONRequestBody{Token: tok, Password: pw})
	if err != nil {
		panic(err)
	}
	return res
}

func login(s *testutil.Server, email, pw string) *client.LoginResponse {
	res, err := s.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: client.Email(email), Password: pw})
	if err != nil {
		panic(err)
	}
	return res
}

func TestPasswordResetFlow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		ctx := context.Background()
		first := signup(t, s, "ada@example.com")
		second := login(s, "ada@example.com", goodPassword).JSON200
		flush(t, s, box) // the verification mail

		// The mail is queued, never sent inline: nothing reaches the transport
		// until the worker runs.
		forgot(t, s, "ada@example.com")
		s.App.Service.WaitBackground()
		if box.count() != 1 {
			t.Fatal("a mail was sent inline")
		}
		var queued int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL`).Scan(&queued); err != nil || queued != 1 {
			t.Fatalf("%d mails queued (%v)", queued, err)
		}
		msgs := flush(t, s, box)
		if len(msgs) != 1 {
			t.Fatalf("%d mails", len(msgs))
		}
		tok := tokenIn(t, msgs[0])
		res := reset(s, tok, newPassword)
		if res.StatusCode() != http.StatusNoContent {
			t.Fatalf("reset: %d %s", res.StatusCode(), res.Body)
		}
		// No automatic login: 204 and nothing else.
		if len(res.Body) != 0 {
			t.Fatalf("reset answered a body: %s", res.Body)
		}
		if r := login(s, "ada@example.com", goodPassword); r.StatusCode() != 401 {
			t.Fatalf("old password: %d", r.StatusCode())
		}
		if r := login(s, "ada@example.com", newPassword); r.StatusCode() != 200 {
			t.Fatalf("new password: %d %s", r.StatusCode(), r.Body)
		}
		// Every session is revoked: old refresh tokens are refused...
		for _, old := range []struct{ RefreshToken, AccessToken string }{{first.RefreshToken, first.AccessToken}, {second.RefreshToken, second.AccessToken}} {
			r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: old.RefreshToken})
			if r.StatusCode() != 401 || r.JSON401.Error != client.ErrorCodeInvalidGrant {
				t.Fatalf("old refresh token after reset: %d %s", r.StatusCode(), r.Body)
			}
			// ...and so are their access tokens, at once on this instance.
			me, _ := s.Client.GetMeWithResponse(ctx, testutil.Bearer(old.AccessToken))
			if me.StatusCode() != 401 {
				t.Fatalf("old access token after reset: %d", me.StatusCode())
			}
		}
		// The token works once.
		res = reset(s, tok, "yet another passphrase")
		if res.StatusCode() != 400 || res.JSON400.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("second use: %d %s", res.StatusCode(), res.Body)
		}
		// Following the link proved the address.
		me := login(s, "ada@example.com", newPassword).JSON200
		if !me.User.EmailVerified {
			t.Fatal("the address is not verified after a reset through it")
		}
		for _, secret := range []string{tok, newPassword} {
			if strings.Contains(s.Log.String(), secret) {
				t.Fatal("a secret reached the log")
			}
		}
	})
}

func TestResetTokenRules(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		signup(t, s, "bob@example.com")
		flush(t, s, box)

		// Unknown, malformed and empty-looking tokens: 400 invalid_token.
		for _, tok := range []string{strings.Repeat("A", 43), "short", strings.Repeat("*", 43), strings.Repeat("A", 44)} {
			res := reset(s, tok, newPassword)
			if res.StatusCode() != 400 || res.JSON400.Error != client.ErrorCodeInvalidToken {
				t.Fatalf("%q: %d %s", tok, res.StatusCode(), res.Body)
			}
		}
		// A weak password is refused without spending the token.
		t1 := resetMail(t, s, box, "bob@example.com")
		if res := reset(s, t1, "password"); res.StatusCode() != 400 || res.JSON400.Error != client.ErrorCodeWeakPassword {
			t.Fatalf("weak: %d %s", res.StatusCode(), res.Body)
		}
		// Using one token spends every other outstanding one.
		t2 := resetMail(t, s, box, "bob@example.com")
		t3 := resetMail(t, s, box, "bob@example.com")
		if t1 == t2 || t2 == t3 {
			t.Fatal("tokens repeat")
		}
		if res := reset(s, t2, newPassword); res.StatusCode() != 204 {
			t.Fatalf("reset: %d %s", res.StatusCode(), res.Body)
		}
		for _, tok := range []string{t1, t3} {
			if res := reset(s, tok, "another good passphrase"); res.StatusCode() != 400 || res.JSON400.Error != client.ErrorCodeInvalidToken {
				t.Fatalf("other token after a reset: %d %s", res.StatusCode(), res.Body)
			}
		}
		// Expiry: one hour by default.
		t4 := resetMail(t, s, box, "bob@example.com")
		s.Clock.Advance(time.Hour + time.Second)
		if res := reset(s, t4, "another good passphrase"); res.StatusCode() != 400 || res.JSON400.Error != client.ErrorCodeInvalidToken {
			t.Fatalf("expired token: %d %s", res.StatusCode(), res.Body)
		}
	})
}

func TestResetTTLIsConfigurable(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) { c.Recovery.ResetTTL = 10 * time.Minute })
	box := &mailbox{}
	signup(t, s, "ttl@example.com")
	flush(t, s, box)
	tok := resetMail(t, s, box, "ttl@example.com")
	if !strings.Contains(box.msgs[len(box.msgs)-1].Text, "10 minutes") {
		t.Fatal("the mail does not tell the lifetime")
	}
	s.Clock.Advance(10*time.Minute + time.Second)
	if res := reset(s, tok, newPassword); res.StatusCode() != 400 {
		t.Fatalf("reset after the TTL: %d", res.StatusCode())
	}
}

func TestConcurrentResetsWithOneToken(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		signup(t, s, "race@example.com")
		flush(t, s, box)
		tok := resetMail(t, s, box, "race@example.com")
		const n = 2
		var wg sync.WaitGroup
		codes := make([]int, n)
		passwords := []string{"first concurrent passphrase", "second concurrent passphrase"}
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i] = reset(s, tok, passwords[i]).StatusCode()
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		winner := ""
		for i, c := range codes {
			switch c {
			case 204:
				wins++
				winner = passwords[i]
			case 400:
			default:
				t.Fatalf("status %d", c)
			}
		}
		if wins != 1 {
			t.Fatalf("statuses %v, want exactly one 204", codes)
		}
		if r := login(s, "race@example.com", winner); r.StatusCode() != 200 {
			t.Fatalf("the winner's password does not work: %d", r.StatusCode())
		}
	})
}

// headersWithout returns the response headers minus the ones that differ by
// nature between two requests.
func headersWithout(h http.Header, drop ...string) http.Header {
	c := h.Clone()
	for _, k := range drop {
		c.Del(k)
	}
	return c
}

func TestForgotPasswordDoesNotRevealAccounts(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d, func(c *app.Config) {
			c.RateLimits = true
			c.Limits.ForgotIP = ratelimit.Rule{Burst: 1000, Per: time.Minute}
		})
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
			res, body := do(t, s, "POST", "/auth/password/forgot", "application/json", b, nil)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("body %s", body)
			}
			delete(m, "request_id")
			j, _ := json.Marshal(m)
			return answer{res.StatusCode, string(j), headersWithout(res.Header, "X-Request-Id", "Date")}
		}
		known := ask("known@example.com")
		if known.status != 202 || known.body != `{"status":"accepted"}` {
			t.Fatalf("known: %+v", known)
		}
		if msgs := flush(t, s, box); len(msgs) != 1 {
			t.Fatalf("%d mails for a known address", len(msgs))
		}
		cases := map[string]answer{
			"unknown":                ask("nobody@example.com"),
			"unknown, other case":    ask("Nobody@Example.com"),
			"known, limit reached":   ask("known@example.com"), // one mail a minute
			"unknown, limit reached": ask("nobody@example.com"),
		}
		for name, a := range cases {
			if a.status != known.status || a.body != known.body {
				t.Errorf("%s: %d %s, known: %d %s", name, a.status, a.body, known.status, known.body)
			}
			if !equalHeaders(a.header, known.header) {
				t.Errorf("%s: headers %v, known: %v", name, a.header, known.header)
			}
		}
		if msgs := flush(t, s, box); len(msgs) != 0 {
			t.Fatalf("%d mails past the limit", len(msgs))
		}
		// A minute later the limit has refilled.
		s.Clock.Advance(time.Minute)
		ask("known@example.com")
		if msgs := flush(t, s, box); len(msgs) != 1 {
			t.Fatalf("%d mails after the limit refilled", len(msgs))
		}
	})
}

func equalHeaders(a, b http.Header) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestForgotPasswordLimitedPerIP(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.ForgotIP = ratelimit.Rule{Burst: 2, Per: time.Hour}
	})
	box := &mailbox{}
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		signup(t, s, e)
	}
	flush(t, s, box)
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		forgot(t, s, e) // always 202
	}
	if msgs := flush(t, s, box); len(msgs) != 2 {
		t.Fatalf("%d mails, want 2 (the IP limit)", len(msgs))
	}
}

func TestResetLimitedPerIP(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.Limits.ResetIP = ratelimit.Rule{Burst: 3, Per: time.Hour}
	})
	for range 3 {
		if res := reset(s, strings.Repeat("A", 43), newPassword); res.StatusCode() != 400 {
			t.Fatalf("%d", res.StatusCode())
		}
	}
	res := reset(s, strings.Repeat("A", 43), newPassword)
	if res.StatusCode() != 429 || res.JSON429.Error != client.ErrorCodeRateLimited || res.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s", res.StatusCode(), res.Body)
	}
}

func TestResetLinkComesFromConfigurationOnly(t *testing.T) {
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Recovery.PublicURL = "https://accounts.example.com/"
		c.Recovery.ResetURL = "/reset?t={token}&src=mail"
	})
	box := &mailbox{}
	signup(t, s, "host@example.com")
	flush(t, s, box)
	b, _ := json.Marshal(map[string]string{"email": "host@example.com"})
	req, _ := http.NewRequest("POST", s.URL+"/auth/password/forgot", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("Forwarded", "host=evil.example;proto=http")
	res, err := s.Doer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 202 {
		t.Fatalf("forgot: %d", res.StatusCode)
	}
	msgs := flush(t, s, box)
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	m := msgs[0]
	if strings.Contains(m.Text, "evil.example") || strings.Contains(m.HTML, "evil.example") {
		t.Fatal("the link follows a forged Host header")
	}
	re := regexp.MustCompile(`https://accounts\.example\.com/reset\?t=([A-Za-z0-9_-]{43})&src=mail`)
	sub := re.FindStringSubmatch(m.Text)
	if sub == nil {
		t.Fatalf("link not built from LATCH_PUBLIC_URL and LATCH_RESET_URL:\n%s", m.Text)
	}
	if r := reset(s, sub[1], newPassword); r.StatusCode() != 204 {
		t.Fatalf("the link's token: %d", r.StatusCode())
	}
}

// dump returns every value of every row of the tables, as text.
func dump(t *testing.T, db *sql.DB, tables ...string) string {
	t.Helper()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out.Write(v)
				out.WriteByte('\n')
			}
		}
		rows.Close()
	}
	return out.String()
}

func TestRecoveryTokensAreNotStoredInPlain(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		s := testutil.Start(t, d)
		box := &mailbox{}
		signup(t, s, "plain@example.com")
		forgot(t, s, "plain@example.com")
		s.App.Service.WaitBackground()
		tables := []string{"recovery_tokens", "mail_outbox", "security_events", "users", "server_secrets"}
		queued := dump(t, s.App.Store.DB(), tables...) // while the mails wait in the outbox
		msgs := flush(t, s, box)
		if len(msgs) != 2 {
			t.Fatalf("%d mails", len(msgs))
		}
		sent := dump(t, s.App.Store.DB(), tables...)
		for _, m := range msgs {
			tok := tokenIn(t, m)
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			forms := []string{tok, string(raw), hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw)}
			for _, f := range forms {
				if strings.Contains(queued, f) || strings.Contains(strings.ToLower(queued), strings.ToLower(f)) || strings.Contains(sent, f) {
					t.Fatalf("a %s token is stored in plain form", m.Subject)
				}
			}
			if strings.Contains(queued, "token=") {
				t.Fatal("a link is stored in plain form")
			}
			want := sha256.Sum256(raw)
			var n int
			if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM recovery_tokens WHERE token_hash = `+placeholder(s), want[:]).Scan(&n); err != nil || n != 1 {
				t.Fatalf("the token's SHA-256 is not stored: %d %v", n, err)
			}
		}
		var payloads int
		if err := s.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM mail_outbox WHERE payload IS NOT NULL`).Scan(&payloads); err != nil || payloads != 0 {
			t.Fatalf("%d payloads kept after sending", payloads)
		}
	})
}

// placeholder is the first bind parameter in the server's SQL dialect.
func placeholder(s *testutil.Server) string {
	if s.App.Store.Dialect() == "postgres" {
		return "$1"
	}
	return "?"
}
