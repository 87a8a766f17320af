package app

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
)

// The mail transports.
const (
	MailLog  = "log"
	MailSMTP = "smtp"
	MailNone = "none"
)

// RecoveryConfig configures password reset, email verification, the mail
// that carries their links, and the pruning of old rows.
type RecoveryConfig struct {
	// PublicURL is the base of the links in mails when ResetURL or
	// VerifyURL is a path. Links never come from a request's Host.
	PublicURL string
	// ResetURL and VerifyURL are the pages that take a token: absolute
	// URLs or paths below PublicURL, with {token} where the token goes.
	ResetURL  string
	VerifyURL string
	ResetTTL  time.Duration
	VerifyTTL time.Duration
	// InviteURL is the page that accepts an organization invitation (same
	// form as ResetURL); InviteTTL its link's lifetime.
	InviteURL string
	InviteTTL time.Duration
	// MailTransport is log, smtp or none; "" means smtp when SMTPURL is
	// set and log otherwise.
	MailTransport string
	// MailLogLinks shows the links (which hold tokens) in mails written by
	// the log transport; off by default so no token reaches a log.
	MailLogLinks     bool
	SMTPURL          string
	MailFrom         string
	MailTemplatesDir string
	MailMaxAttempts  int
	MailPoll         time.Duration
	EventRetention   time.Duration
	PruneInterval    time.Duration
	PruneBatch       int
}

func defaultRecovery() RecoveryConfig {
	return RecoveryConfig{
		ResetURL:        "/reset-password#token={token}",
		VerifyURL:       "/verify-email#token={token}",
		ResetTTL:        time.Hour,
		VerifyTTL:       48 * time.Hour,
		InviteURL:       "/accept-invitation#token={token}",
		InviteTTL:       7 * 24 * time.Hour,
		MailFrom:        "Latch <no-reply@localhost>",
		MailMaxAttempts: 10,
		MailPoll:        2 * time.Second,
		EventRetention:  90 * 24 * time.Hour,
		PruneInterval:   10 * time.Minute,
		PruneBatch:      1000,
	}
}

// Transport returns the mail transport in effect.
func (r RecoveryConfig) Transport() string {
	if r.MailTransport != "" {
		return r.MailTransport
	}
	if r.SMTPURL != "" {
		return MailSMTP
	}
	return MailLog
}

// link resolves a link template against PublicURL.
func (r RecoveryConfig) link(t string) string {
	if strings.HasPrefix(t, "/") {
		return strings.TrimRight(r.PublicURL, "/") + t
	}
	return t
}

// ResetLink returns the absolute link template of the reset page.
func (r RecoveryConfig) ResetLink() string { return r.link(r.ResetURL) }

// VerifyLink returns the absolute link template of the verification page.
func (r RecoveryConfig) VerifyLink() string { return r.link(r.VerifyURL) }

func (r RecoveryConfig) validate(bad func(env, format string, args ...any)) {
	if u, err := url.Parse(r.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("LATCH_PUBLIC_URL", "must be an absolute http or https URL")
	}
	if err := service.CheckLinkTemplate(r.ResetLink()); err != nil {
		bad("LATCH_RESET_URL", "%v", err)
	}
	if err := service.CheckLinkTemplate(r.VerifyLink()); err != nil {
		bad("LATCH_VERIFY_URL", "%v", err)
	}
	if r.ResetTTL < time.Minute || r.ResetTTL > 24*time.Hour {
		bad("LATCH_RESET_TTL", "must be between 1m and 24h")
	}
	if r.VerifyTTL < time.Minute || r.VerifyTTL > 30*24*time.Hour {
		bad("LATCH_VERIFY_TTL", "must be between 1m and 720h")
	}
	if err := service.CheckLinkTemplate(r.link(r.InviteURL)); err != nil {
		bad("LATCH_INVITE_URL", "%v", err)
	}
	if r.InviteTTL < time.Minute || r.InviteTTL > 30*24*time.Hour {
		bad("LATCH_INVITE_TTL", "must be between 1m and 720h")
	}
	switch r.Transport() {
	case MailLog, MailNone:
	case MailSMTP:
		if r.SMTPURL == "" {
			bad("LATCH_SMTP_URL", "must be set when LATCH_MAIL_TRANSPORT is smtp")
		} else if _, err := mail.ParseSMTPURL(r.SMTPURL); err != nil {
			bad("LATCH_SMTP_URL", "%v", err)
		}
	default:
		bad("LATCH_MAIL_TRANSPORT", "must be log, smtp or none")
	}
	if a, err := netmail.ParseAddress(r.MailFrom); err != nil || a.Address == "" {
		bad("LATCH_MAIL_FROM", "must be an address, such as \"Latch <no-reply@example.com>\"")
	}
	if r.MailTemplatesDir != "" {
		if st, err := os.Stat(r.MailTemplatesDir); err != nil || !st.IsDir() {
			bad("LATCH_MAIL_TEMPLATES_DIR", "must be a directory")
		}
	}
	if r.MailMaxAttempts < 1 || r.MailMaxAttempts > 100 {
		bad("LATCH_MAIL_MAX_ATTEMPTS", "must be between 1 and 100")
	}
	if r.MailPoll < 100*time.Millisecond || r.MailPoll > time.Hour {
		bad("LATCH_MAIL_POLL_INTERVAL", "must be between 100ms and 1h")
	}
	if r.EventRetention < 24*time.Hour {
		bad("LATCH_EVENT_RETENTION", "must be at least 24h")
	}
	if r.PruneInterval < time.Second {
		bad("LATCH_PRUNE_INTERVAL", "must be at least 1s")
	}
	if r.PruneBatch < 1 || r.PruneBatch > 100_000 {
		bad("LATCH_PRUNE_BATCH", "must be between 1 and 100000")
	}
}

// serviceConfig is the service's part of the configuration.
func (r RecoveryConfig) serviceConfig() service.RecoveryConfig {
	return service.RecoveryConfig{
		Mail: r.Transport() != MailNone, ResetURL: r.ResetLink(), VerifyURL: r.VerifyLink(),
		ResetTTL: r.ResetTTL, VerifyTTL: r.VerifyTTL, EventRetention: r.EventRetention,
		InviteURL: r.link(r.InviteURL), InviteTTL: r.InviteTTL,
		PruneInterval: r.PruneInterval, PruneBatch: r.PruneBatch,
	}
}

// newMailWorker returns the outbox worker for the configured transport, or
// nil when mail is off.
func newMailWorker(c Config, st *sqlstore.Store, svc *service.Service, clock domain.Clock, log *slog.Logger) (*mail.Worker, error) {
	r := c.Recovery
	if log == nil {
		log = slog.Default()
	}
	var t mail.Transport
	switch r.Transport() {
	case MailNone:
		return nil, nil
	case MailSMTP:
		sc, err := mail.ParseSMTPURL(r.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("LATCH_SMTP_URL: %w", err)
		}
		if t, err = mail.NewSMTP(sc); err != nil {
			return nil, err
		}
	default:
		if r.MailLogLinks {
			log.Warn("mail transport is log with LATCH_MAIL_LOG_LINKS=true: reset and verification links are written to this log. " +
				"This is for development only; set LATCH_SMTP_URL in production")
		} else {
			log.Warn("mail transport is log: mails are written to this log with their links redacted, so nobody can use them. " +
				"Set LATCH_SMTP_URL to send mail, or LATCH_MAIL_LOG_LINKS=true in development")
		}
		t = mail.LogTransport{Log: log, ShowLinks: r.MailLogLinks}
	}
	rend, err := mail.NewRenderer(r.MailTemplatesDir)
	if err != nil {
		return nil, err
	}
	if svc.OutboxSealer() == nil {
		return nil, errors.New("the service is not initialised")
	}
	return mail.NewWorker(mail.WorkerConfig{From: r.MailFrom, MaxAttempts: r.MailMaxAttempts, Poll: r.MailPoll},
		mail.WorkerDeps{Store: st, Opener: svc.OutboxSealer(), Renderer: rend, Transport: t, Clock: clock, Log: log}), nil
}

// Vars returns the app's counters (mail, pruning) as expvar values.
func (a *App) Vars() map[string]expvar.Var {
	v := map[string]expvar.Var{"latch_prune": a.Service.PruneMetrics().Var()}
	if a.Mail != nil {
		v["latch_mail"] = a.Mail.Metrics().Var()
	}
	return v
}

// varsHandler serves the process's expvar variables (memstats and whatever
// else is published, but not cmdline: the command line may hold secrets)
// and the app's own counters, which are not published globally so that
// several apps can share a process.
func (a *App) varsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]json.RawMessage{}
		expvar.Do(func(kv expvar.KeyValue) {
			if kv.Key != "cmdline" {
				out[kv.Key] = json.RawMessage(kv.Value.String())
			}
		})
		for k, v := range a.Vars() {
			out[k] = json.RawMessage(v.String())
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	})
}
