package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/mail/mailtest"
)

const link = "https://app.example.com/reset-password#token=AbC-_123"

func data() domain.MailData {
	return domain.MailData{Email: "ada@example.com", Link: link, ExpiresAt: time.Now().Add(time.Hour), TTL: time.Hour}
}

func TestEmbeddedTemplates(t *testing.T) {
	r, err := mail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range mail.Templates() {
		m, err := r.Render(name, data())
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == "" || strings.ContainsAny(m.Subject, "\r\n") {
			t.Fatalf("%s: subject %q", name, m.Subject)
		}
		if name == domain.MailFactorsRemovedBySupport {
			// The support notice carries no link and says what to do.
			if !strings.Contains(m.Text, "reset your password") || !strings.Contains(m.HTML, "ada@example.com") || m.To != "ada@example.com" {
				t.Fatalf("%s: %q", name, m.Text)
			}
			continue
		}
		if name == domain.MailMFALocked {
			// The lock notice carries no link and says how to unlock.
			if !strings.Contains(m.Text, "recovery code") || !strings.Contains(m.HTML, "reset your password") || m.To != "ada@example.com" {
				t.Fatalf("%s: %q", name, m.Text)
			}
			continue
		}
		if name == domain.MailWebhookDisabled {
			// The notice names the endpoint and carries no link.
			d := data()
			d.Endpoint = "https://hooks.example.com/latch"
			if m, err = r.Render(name, d); err != nil || !strings.Contains(m.Text, d.Endpoint) || !strings.Contains(m.HTML, d.Endpoint) || strings.Contains(m.Text, link) {
				t.Fatalf("%s: %v %q", name, err, m.Text)
			}
			continue
		}
		if name == domain.MailFactorAdded || name == domain.MailFactorRemoved {
			// A notice of a factor change carries no link, and names the factor.
			if d := data(); true {
				d.Factor = "YubiKey"
				if m, err = r.Render(name, d); err != nil || !strings.Contains(m.Text, "YubiKey") || !strings.Contains(m.HTML, "YubiKey") || m.To != d.Email {
					t.Fatalf("%s: %v %q", name, err, m.Text)
				}
			}
			continue
		}
		if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, `href="`+link+`"`) {
			t.Fatalf("%s: the link is missing:\n%s\n%s", name, m.Text, m.HTML)
		}
		if !strings.Contains(m.Text, "1 hour") || m.To != "ada@example.com" {
			t.Fatalf("%s: %q to %q", name, m.Text, m.To)
		}
	}
	if _, err := r.Render("nope", data()); err == nil {
		t.Fatal("unknown template rendered")
	}
}

func TestHTMLTemplateEscapes(t *testing.T) {
	r, err := mail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	d := data()
	d.Email = `x"><script>alert(1)</script>@example.com`
	m, err := r.Render(domain.PurposePasswordReset, d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<script>") {
		t.Fatal("HTML body is not escaped")
	}
}

func TestTemplatesOverriddenFromDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("password_reset.subject.txt", "Acme: new password\nBcc: injected@example.com")
	write("password_reset.txt", "Go to {{.Link}} before {{.ExpiresIn}} ends.")
	r, err := mail.NewRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Render(domain.PurposePasswordReset, data())
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Acme: new password Bcc: injected@example.com" {
		t.Fatalf("subject %q: a template must not add header lines", m.Subject)
	}
	if m.Text != "Go to "+link+" before 1 hour ends." {
		t.Fatalf("text %q", m.Text)
	}
	if !strings.Contains(m.HTML, "Reset my password") {
		t.Fatal("the HTML template that was not overridden should stay embedded")
	}
	v, err := r.Render(domain.PurposeVerifyEmail, data())
	if err != nil || !strings.Contains(v.Subject, "Confirm") {
		t.Fatalf("verify template: %v %q", err, v.Subject)
	}

	write("verify_email.html", "{{.Nope}}")
	if _, err := mail.NewRenderer(dir); err == nil || !strings.Contains(err.Error(), "verify_email.html") {
		t.Fatalf("a template that cannot render must fail at startup: %v", err)
	}
	write("verify_email.html", "{{.Link")
	if _, err := mail.NewRenderer(dir); err == nil {
		t.Fatal("a template that does not parse must fail at startup")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1 hour", 48 * time.Hour: "2 days", 90 * time.Minute: "90 minutes",
		time.Minute: "1 minute", 30 * time.Second: "30 seconds", 36 * time.Hour: "36 hours",
	} {
		if got := mail.HumanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestParseSMTPURL(t *testing.T) {
	good := map[string]mail.SMTPConfig{
		"smtp://user:p%40ss@mail.example.com:587": {Host: "mail.example.com", Port: 587, Username: "user", Password: "p@ss", TLS: mail.TLSStartTLS},
		"smtp://mail.example.com":                 {Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS},
		"smtps://u:p@mail.example.com":            {Host: "mail.example.com", Port: 465, Username: "u", Password: "p", TLS: mail.TLSImplicit},
		"smtp://127.0.0.1:2525?tls=none":          {Host: "127.0.0.1", Port: 2525, TLS: mail.TLSNone},
		"smtp://h:25?tls=opportunistic":           {Host: "h", Port: 25, TLS: mail.TLSOpportunistic},
	}
	for raw, want := range good {
		got, err := mail.ParseSMTPURL(raw)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{"http://h", "smtp://", "smtp://h:0", "smtp://h:99999", "smtp://h?tls=maybe",
		"smtps://h?tls=none", "smtp://h?foo=1", "smtp://u:topsecret@h:x"} {
		_, err := mail.ParseSMTPURL(raw)
		if err == nil {
			t.Errorf("%s: accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
	}
}

func TestLogTransportRedactsTheLinkUnlessAskedTo(t *testing.T) {
	r, _ := mail.NewRenderer("")
	m, _ := r.Render(domain.PurposePasswordReset, data())
	var buf bytes.Buffer
	tr := mail.LogTransport{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "AbC-_123") || !strings.Contains(buf.String(), "link redacted") {
		t.Fatalf("the token reached the log by default: %s", buf.String())
	}
	buf.Reset()
	tr.ShowLinks = true
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "token=AbC-_123") || !strings.Contains(buf.String(), "development only") {
		t.Fatalf("log: %s", buf.String())
	}
}

func TestLogTransportRedactsTheSignInCodeUnlessAskedTo(t *testing.T) {
	r, _ := mail.NewRenderer("")
	d := data()
	d.Code = "408321"
	m, err := r.Render(domain.MailOTP, d)
	if err != nil || !strings.Contains(m.Text, "408321") || !strings.Contains(m.HTML, "408321") {
		t.Fatalf("render: %v %+v", err, m)
	}
	var buf bytes.Buffer
	tr := mail.LogTransport{Log: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "408321") || strings.Contains(buf.String(), "AbC-_123") || !strings.Contains(buf.String(), "code redacted") {
		t.Fatalf("the code or the token reached the log by default: %s", buf.String())
	}
	if strings.Contains(m.Subject, "408321") {
		t.Fatal("the code is in the subject, which mail clients show in notifications and logs")
	}
}

func TestSMTPWithSTARTTLSAndAuth(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	cfg, err := mail.ParseSMTPURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = srv.ClientTLS()
	tr, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := mail.NewRenderer("")
	m, _ := r.Render(domain.PurposePasswordReset, data())
	m.From = "Latch <no-reply@example.com>"
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || !got[0].TLS || !got[0].Auth || got[0].From != "no-reply@example.com" || got[0].To[0] != "ada@example.com" {
		t.Fatalf("received %+v", got)
	}
	p, err := mailtest.Parse(got[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != m.Subject || !strings.Contains(p.Text, link) || !strings.Contains(p.HTML, link) {
		t.Fatalf("parsed %+v", p)
	}
	if p.Header.Get("Auto-Submitted") != "auto-generated" || p.Header.Get("Message-Id") == "" || p.Header.Get("Date") == "" {
		t.Fatalf("headers %v", p.Header)
	}

	// The system roots do not trust the test certificate: STARTTLS is
	// mandatory, so the mail is refused rather than sent in the clear.
	cfg.TLSConfig = nil
	tr, _ = mail.NewSMTP(cfg)
	if err := tr.Send(context.Background(), m); err == nil {
		t.Fatal("sent over an unverified TLS connection")
	}
	// Wrong credentials fail.
	cfg.TLSConfig, cfg.Password = srv.ClientTLS(), "wrong"
	tr, _ = mail.NewSMTP(cfg)
	if err := tr.Send(context.Background(), m); err == nil {
		t.Fatal("sent with wrong credentials")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestSMTPDown(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	cfg, _ := mail.ParseSMTPURL(srv.URL())
	cfg.TLSConfig = srv.ClientTLS()
	cfg.Timeout = 2 * time.Second
	tr, _ := mail.NewSMTP(cfg)
	srv.Stop()
	r, _ := mail.NewRenderer("")
	m, _ := r.Render(domain.PurposeVerifyEmail, data())
	m.From = "no-reply@example.com"
	if err := tr.Send(context.Background(), m); err == nil {
		t.Fatal("sent to a stopped server")
	}
	srv.Restart(t)
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestSMTPSendsCredentialsInTheClearOnlyToLocalhost(t *testing.T) {
	r, _ := mail.NewRenderer("")
	m, _ := r.Render(domain.PurposeVerifyEmail, data())
	m.From = "no-reply@example.com"
	local := mailtest.Start(t, mailtest.Options{Insecure: true})
	cfg, err := mail.ParseSMTPURL(local.URL())
	if err != nil || cfg.TLS != mail.TLSNone {
		t.Fatalf("%+v %v", cfg, err)
	}
	tr, _ := mail.NewSMTP(cfg)
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatalf("to localhost: %v", err)
	}
	// 127.0.0.2 is a loopback address too, but not one that go-mail takes
	// for localhost: it stands for a remote server here.
	remote := mailtest.Start(t, mailtest.Options{Insecure: true, Host: "127.0.0.2"})
	cfg, _ = mail.ParseSMTPURL(remote.URL())
	tr, _ = mail.NewSMTP(cfg)
	if err := tr.Send(context.Background(), m); err == nil || !strings.Contains(err.Error(), "unencrypted") {
		t.Fatalf("credentials sent in the clear to a remote server: %v", err)
	}
	if len(remote.Messages()) != 0 {
		t.Fatal("delivered")
	}
}
