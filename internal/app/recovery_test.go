package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/password"
)

func TestRecoverySettings(t *testing.T) {
	c, err := app.ParseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Recovery
	if r.Transport() != app.MailLog || r.ResetTTL != time.Hour || r.VerifyTTL != 48*time.Hour || r.EventRetention != 2160*time.Hour ||
		r.ResetLink() != "http://127.0.0.1:8080/reset-password#token={token}" || r.MailMaxAttempts != 10 {
		t.Fatalf("defaults: %+v", r)
	}
	if c.Limits.ForgotEmail.Burst != 1 || c.Limits.ForgotEmail.Per != time.Minute {
		t.Fatalf("forgot limit: %v", c.Limits.ForgotEmail)
	}
	env := map[string]string{
		"LATCH_PUBLIC_URL": "https://id.example.com/", "LATCH_RESET_URL": "/pw/reset?token={token}",
		"LATCH_VERIFY_URL": "https://app.example.com/verify/{token}", "LATCH_RESET_TTL": "30m",
		"LATCH_SMTP_URL": "smtps://u:p@smtp.example.com", "LATCH_MAIL_FROM": "Acme <a@acme.example>",
		"LATCH_EVENT_RETENTION": "720h", "LATCH_RATE_FORGOT_EMAIL": "2/5m", "LATCH_MAIL_MAX_ATTEMPTS": "3",
	}
	c, err = app.ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r = c.Recovery
	if r.Transport() != app.MailSMTP || r.ResetLink() != "https://id.example.com/pw/reset?token={token}" ||
		r.VerifyLink() != "https://app.example.com/verify/{token}" || r.ResetTTL != 30*time.Minute ||
		r.EventRetention != 720*time.Hour || c.Limits.ForgotEmail.Burst != 2 || r.MailMaxAttempts != 3 {
		t.Fatalf("from the environment: %+v", r)
	}

	bad := map[string]string{
		"LATCH_RESET_URL":          "/reset",
		"LATCH_VERIFY_URL":         "ftp://x/{token}",
		"LATCH_PUBLIC_URL":         "example.com",
		"LATCH_SMTP_URL":           "mail://u:hunter2hunter2@x",
		"LATCH_MAIL_TRANSPORT":     "pigeon",
		"LATCH_MAIL_FROM":          "not an address",
		"LATCH_RESET_TTL":          "48h",
		"LATCH_EVENT_RETENTION":    "1h",
		"LATCH_MAIL_TEMPLATES_DIR": filepath.Join(t.TempDir(), "missing"),
	}
	for k, v := range bad {
		_, err := app.ParseConfig(nil, func(e string) string {
			if e == k {
				return v
			}
			return ""
		}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the SMTP password", k)
		}
	}
	if _, err := app.ParseConfig([]string{"-mail-transport", "smtp"}, func(string) string { return "" }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "LATCH_SMTP_URL") {
		t.Errorf("smtp without a URL: %v", err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Serve runs the mail worker and pruning, and the admin listener serves
// their counters: with the default log transport, a signup's verification
// link shows up in the log with LATCH_MAIL_LOG_LINKS (what `make run` sets).
func TestServeRunsMailAndPruning(t *testing.T) {
	admin := freeAddr(t)
	c, err := app.ParseConfig([]string{"-database-url", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "-pprof-addr", admin,
		"-mail-poll-interval", "100ms", "-mail-log-links"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Argon2 = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	logs := &lockedBuffer{}
	a, err := app.New(context.Background(), c, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.Contains(logs.String(), "development only") {
		t.Fatal("no warning that the log transport is for development")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	res, err := http.Post("http://"+ln.Addr().String()+"/auth/signup", "application/json",
		strings.NewReader(`{"email":"dev@example.com","password":"correct horse battery staple"}`))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("signup: %v %v", err, res)
	}
	res.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "verify-email#token=") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "http://127.0.0.1:8080/verify-email#token=") {
		t.Fatalf("the verification link is not in the log:\n%s", logs.String())
	}
	var vars map[string]json.RawMessage
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + admin + "/debug/vars")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&vars)
			res.Body.Close()
			if err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var m struct {
		Sent int `json:"sent"`
	}
	var p struct {
		Runs int `json:"runs"`
	}
	if json.Unmarshal(vars["latch_mail"], &m) != nil || m.Sent != 1 || json.Unmarshal(vars["latch_prune"], &p) != nil || p.Runs < 1 || vars["memstats"] == nil {
		t.Fatalf("/debug/vars: mail %s, prune %s, memstats present %v", vars["latch_mail"], vars["latch_prune"], vars["memstats"] != nil)
	}
	// Prometheus metrics on the same admin listener, never on the API port.
	res, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`latch_http_requests_total{operation="POST /auth/signup",status="201"} 1`,
		`latch_http_request_duration_seconds_count{operation="POST /auth/signup"} 1`, `go_sql_max_open_connections{db_name="latch"}`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%.2000s", want, body)
		}
	}
	if res, err := http.Get("http://" + ln.Addr().String() + "/metrics"); err != nil || res.StatusCode != 404 {
		t.Fatalf("/metrics on the API port: %v %v", err, res)
	}
}
