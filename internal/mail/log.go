package mail

import (
	"context"
	"log/slog"
	"strings"
)

// LogTransport writes each mail to the log at info level instead of sending
// it, so that `make run` works without a mail server. Its link (which holds
// a reset or verification token) is redacted unless ShowLinks is set:
// secrets stay out of logs by default, and a developer opts in with
// LATCH_MAIL_LOG_LINKS=true (as `make run` does). Production sets
// LATCH_SMTP_URL.
type LogTransport struct {
	Log       *slog.Logger
	ShowLinks bool
}

// Send logs m. It never fails.
func (t LogTransport) Send(ctx context.Context, m *Message) error {
	text := m.Text
	if !t.ShowLinks && m.Secret != "" {
		text = strings.ReplaceAll(text, m.Secret, "[link redacted: set LATCH_MAIL_LOG_LINKS=true in development]")
	}
	if !t.ShowLinks && m.Code != "" {
		text = strings.ReplaceAll(text, m.Code, "[code redacted]")
	}
	t.Log.LogAttrs(ctx, slog.LevelInfo, "mail (log transport, development only; set LATCH_SMTP_URL to send mail)",
		slog.String("mail_id", m.ID), slog.String("from", m.From), slog.String("to", m.To),
		slog.String("subject", m.Subject), slog.String("text", text))
	return nil
}
