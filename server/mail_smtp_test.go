package server_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/mail/mailtest"
	"github.com/latchauth/latch/internal/testutil"
)

// receivedToken parses the newest message the SMTP server accepted for to
// and returns the token of its link.
func receivedToken(t *testing.T, srv *mailtest.Server, to, subject string) string {
	t.Helper()
	msgs := srv.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if len(msgs[i].To) != 1 || msgs[i].To[0] != to {
			continue
		}
		p, err := mailtest.Parse(msgs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Subject, subject) {
			continue
		}
		sub := linkToken.FindStringSubmatch(p.Text)
		if sub == nil || !strings.Contains(p.HTML, sub[0]) {
			t.Fatalf("no link in the received mail:\n%s", p.Text)
		}
		return sub[1]
	}
	t.Fatalf("no %q mail for %s among %d received", subject, to, len(msgs))
	return ""
}

func TestMailThroughSMTP(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		srv := mailtest.Start(t, mailtest.Options{})
		s := testutil.Start(t, d)
		cfg, err := mail.ParseSMTPURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLSConfig, cfg.Timeout = srv.ClientTLS(), 5*time.Second
		tr, err := mail.NewSMTP(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w := s.App.Mail.WithTransport(tr)
		drain := func() {
			t.Helper()
			s.App.Service.WaitBackground()
			if _, err := w.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
		}

		// The verification mail arrives over STARTTLS with authentication,
		// and its link works.
		signup(t, s, "smtp@example.com")
		drain()
		got := srv.Messages()
		if len(got) != 1 || !got[0].TLS || !got[0].Auth || got[0].From != "no-reply@localhost" {
			t.Fatalf("received %+v", got)
		}
		if r := verify(s, receivedToken(t, srv, "smtp@example.com", "Confirm")); r.StatusCode() != 204 {
			t.Fatalf("verify with the received link: %d", r.StatusCode())
		}

		// The reset mail arrives and its link resets the password.
		forgot(t, s, "smtp@example.com")
		drain()
		if r := reset(s, receivedToken(t, srv, "smtp@example.com", "Reset"), newPassword); r.StatusCode() != 204 {
			t.Fatalf("reset with the received link: %d %s", r.StatusCode(), r.Body)
		}
		if r := login(s, "smtp@example.com", newPassword); r.StatusCode() != 200 {
			t.Fatalf("login with the new password: %d", r.StatusCode())
		}

		// The SMTP server goes down: the mail waits in the outbox...
		srv.Stop()
		forgot(t, s, "smtp@example.com")
		drain()
		if n := len(srv.Messages()); n != 2 {
			t.Fatalf("%d messages", n)
		}
		if w.Metrics().Retried.Value() != 1 {
			t.Fatalf("metrics: %s", w.Metrics().Var())
		}
		// ...and is sent once the server is back and the retry is due.
		srv.Restart(t)
		drain()
		if n := len(srv.Messages()); n != 2 {
			t.Fatal("retried before the backoff")
		}
		s.Clock.Advance(40 * time.Second)
		drain()
		if n := len(srv.Messages()); n != 3 {
			t.Fatalf("%d messages after the server came back", n)
		}
		if r := reset(s, receivedToken(t, srv, "smtp@example.com", "Reset"), "after the outage passphrase"); r.StatusCode() != 204 {
			t.Fatalf("reset with the delayed link: %d %s", r.StatusCode(), r.Body)
		}
	})
}

// The configured transport: LATCH_SMTP_URL and LATCH_MAIL_FROM reach the
// worker, and a queued mail wakes it.
func TestMailWorkerFromConfiguration(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Insecure: true})
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.Recovery.SMTPURL = srv.URL()
		c.Recovery.MailFrom = "Acme Accounts <accounts@acme.example>"
		c.Recovery.MailPoll = time.Hour // only a wake-up can send in time
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.App.Mail.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // let the first pass find nothing
	signup(t, s, "wired@example.com")
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.Messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].From != "accounts@acme.example" || !got[0].Auth {
		t.Fatalf("received %+v\n%s", got, s.Log.String())
	}
	p, _ := mailtest.Parse(got[0].Data)
	if !regexp.MustCompile(`^"?Acme Accounts"? <accounts@acme\.example>$`).MatchString(p.Header.Get("From")) {
		t.Fatalf("From: %q", p.Header.Get("From"))
	}
}

// recorder counts deliveries per outbox message across workers.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *recorder) Send(_ context.Context, m *mail.Message) error {
	time.Sleep(time.Millisecond) // a slow server widens the window for a double send
	r.mu.Lock()
	r.seen[m.ID]++
	r.mu.Unlock()
	return nil
}

func TestTwoInstancesNeverSendAMailTwice(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		url := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, url)
		b := testutil.StartURL(t, url)
		const n = 40
		signup(t, a, "twice@example.com")
		for range n - 1 {
			forgot(t, a, "twice@example.com")
		}
		a.App.Service.WaitBackground()
		rec := &recorder{seen: map[string]int{}}
		var wg sync.WaitGroup
		for i := range 4 {
			inst := a
			if i%2 == 1 {
				inst = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := inst.App.Mail.WithTransport(rec).Drain(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(rec.seen) != n {
			t.Fatalf("%d distinct mails sent, want %d", len(rec.seen), n)
		}
		for id, c := range rec.seen {
			if c != 1 {
				t.Fatalf("mail %s sent %d times", id, c)
			}
			if _, err := uuid.Parse(id); err != nil {
				t.Fatal(err)
			}
		}
		var unsent int
		if err := a.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil || unsent != 0 {
			t.Fatalf("%d unsent (%v)", unsent, err)
		}
	})
}
