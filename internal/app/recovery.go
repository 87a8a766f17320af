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
	// EventsRetention is how long outbound events are kept
	// (LATCH_EVENTS_RETENTION).
	EventsRetention time.Duration
	PruneInterval   time.Duration
	PruneBatch      int
}

// defaultRecovery returns the defaults of RecoveryConfig: the service's
// (service.DefaultRecoveryConfig) for what the service does, and the mail
// worker's and the links' own.
func defaultRecovery() RecoveryConfig {
	svc := service.DefaultRecoveryConfig()
	return RecoveryConfig{
		ResetURL:        "/reset-password#token=" + service.TokenPlaceholder,
		VerifyURL:       "/verify-email#token=" + service.TokenPlaceholder,
		ResetTTL:        svc.ResetTTL,
		VerifyTTL:       svc.VerifyTTL,
		InviteURL:       "/accept-invitation#token=" + service.TokenPlaceholder,
		InviteTTL:       svc.InviteTTL,
		MailFrom:        "Latch <no-reply@localhost>",
		MailMaxAttempts: 10,
		MailPoll:        2 * time.Second,
		EventRetention:  svc.EventRetention,
		EventsRetention: svc.OutboundRetention,
		PruneInterval:   svc.PruneInterval,
		PruneBatch:      svc.PruneBatch,
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
	u, err := url.Parse(r.PublicURL)
	publicOK := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	if !publicOK {
		bad("LATCH_PUBLIC_URL", "want an absolute http or https URL such as https://auth.example.com")
	}
	// A path below a bad public URL is that setting's error, not its own.
	checkLink := func(t string) error {
		if !publicOK && strings.HasPrefix(t, "/") {
			return nil
		}
		return service.CheckLinkTemplate(r.link(t))
	}
	if err := checkLink(r.ResetURL); err != nil {
		bad("LATCH_RESET_URL", "%v; want an absolute URL or a path below LATCH_PUBLIC_URL, with {token}, such as /reset-password#token={token}", err)
	}
	if err := checkLink(r.VerifyURL); err != nil {
		bad("LATCH_VERIFY_URL", "%v; want an absolute URL or a path below LATCH_PUBLIC_URL, with {token}, such as /verify-email#token={token}", err)
	}
	if r.ResetTTL < time.Minute || r.ResetTTL > 24*time.Hour {
		bad("LATCH_RESET_TTL", "want a duration between 1m and 24h such as 1h")
	}
	if r.VerifyTTL < time.Minute || r.VerifyTTL > 30*24*time.Hour {
		bad("LATCH_VERIFY_TTL", "want a duration between 1m and 720h such as 48h")
	}
	if err := checkLink(r.InviteURL); err != nil {
		bad("LATCH_INVITE_URL", "%v; want an absolute URL or a path below LATCH_PUBLIC_URL, with {token}, such as /accept-invitation#token={token}", err)
	}
	if r.InviteTTL < time.Minute || r.InviteTTL > 30*24*time.Hour {
		bad("LATCH_INVITE_TTL", "want a duration between 1m and 720h such as 168h")
	}
	switch r.Transport() {
	case MailLog, MailNone:
	case MailSMTP:
		if r.SMTPURL == "" {
			bad("LATCH_SMTP_URL", "want an smtp or smtps URL such as smtps://user:password@mail.example.com:465 when LATCH_MAIL_TRANSPORT is smtp")
		} else if _, err := mail.ParseSMTPURL(r.SMTPURL); err != nil {
			bad("LATCH_SMTP_URL", "%v; want an smtp or smtps URL such as smtps://user:password@mail.example.com:465", err)
		}
	default:
		bad("LATCH_MAIL_TRANSPORT", "want log, smtp or none")
	}
	if a, err := netmail.ParseAddress(r.MailFrom); err != nil || a.Address == "" {
		bad("LATCH_MAIL_FROM", "want an address such as \"Latch <no-reply@example.com>\"")
	}
	if r.MailTemplatesDir != "" {
		if st, err := os.Stat(r.MailTemplatesDir); err != nil || !st.IsDir() {
			bad("LATCH_MAIL_TEMPLATES_DIR", "want a directory such as /etc/latch/mail")
		}
	}
	if r.MailMaxAttempts < 1 || r.MailMaxAttempts > 100 {
		bad("LATCH_MAIL_MAX_ATTEMPTS", "want a whole number between 1 and 100 such as 10")
	}
	if r.MailPoll < 100*time.Millisecond || r.MailPoll > time.Hour {
		bad("LATCH_MAIL_POLL_INTERVAL", "want a duration between 100ms and 1h such as 2s")
	}
	if r.EventRetention < 24*time.Hour {
		bad("LATCH_EVENT_RETENTION", "want a duration of at least 24h such as 2160h")
	}
	if r.EventsRetention < 24*time.Hour {
		bad("LATCH_EVENTS_RETENTION", "want a duration of at least 24h such as 720h")
	}
	if r.PruneInterval < time.Second {
		bad("LATCH_PRUNE_INTERVAL", "want a duration of at least 1s such as 10m")
	}
	if r.PruneBatch < 1 || r.PruneBatch > 100_000 {
		bad("LATCH_PRUNE_BATCH", "want a whole number between 1 and 100000 such as 1000")
	}
}

// serviceConfig is the service's part of the configuration.
func (r RecoveryConfig) serviceConfig() service.RecoveryConfig {
	return service.RecoveryConfig{
		Mail: r.Transport() != MailNone, ResetURL: r.ResetLink(), VerifyURL: r.VerifyLink(),
		ResetTTL: r.ResetTTL, VerifyTTL: r.VerifyTTL, EventRetention: r.EventRetention, OutboundRetention: r.EventsRetention,
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
	v := map[string]expvar.Var{"latch_prune": a.Service.Pruner().Metrics().Var()}
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
