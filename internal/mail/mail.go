// Package mail renders and sends Latch's mails: the templates (embedded,
// overridable from a directory), the transports (SMTP, and a log transport
// for development) and the worker that drains the outbox.
package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// Message is a rendered mail.
type Message struct {
	// ID is the outbox row's id; transports may use it in the Message-ID.
	ID      string
	From    string
	To      string
	Subject string
	Text    string
	HTML    string
	// Secret is the link the mail carries (it holds a token), and Code the
	// sign-in code: transports that write anywhere but to the recipient
	// must not reveal them.
	Secret string
	Code   string
}

// Transport delivers rendered mails.
type Transport interface {
	// Send delivers m or returns why it could not; the worker retries.
	Send(ctx context.Context, m *Message) error
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(ctx context.Context, m *Message) error

// Send calls f.
func (f TransportFunc) Send(ctx context.Context, m *Message) error { return f(ctx, m) }

//go:embed templates
var embedded embed.FS

// Templates returns the mails Latch sends, each as a subject, a text body
// and an HTML body.
func Templates() []string {
	return []string{domain.PurposePasswordReset, domain.PurposeVerifyEmail, domain.MailInvitation,
		domain.MailFactorAdded, domain.MailFactorRemoved, domain.MailMFALocked, domain.MailFactorsRemovedBySupport, domain.MailWebhookDisabled, domain.MailOTP}
}

// Renderer renders the mail templates. It is safe for concurrent use.
type Renderer struct {
	subject map[string]*texttemplate.Template
	text    map[string]*texttemplate.Template
	html    map[string]*htmltemplate.Template
}

// TemplateData is what a template sees.
type TemplateData struct {
	Email     string
	Link      string
	ExpiresAt time.Time
	// ExpiresIn is the link's lifetime in words, such as "1 hour".
	ExpiresIn string
	// Organization and Role are set for an invitation.
	Organization string
	Role         string
	// Factor is set for a factor change: the factor's name.
	Factor string
	// Factors are the account's second factors (name and kind), listed in
	// a password reset mail.
	Factors []string
	// Endpoint is set for a disabled webhook endpoint: its URL.
	Endpoint string
	// Code is the 6-digit code of a sign-in mail; its Link may be "" (no
	// page configured: the code alone).
	Code string
}

// NewRenderer parses the embedded templates, each replaced by the file of
// the same name in dir when dir is not "" and has one:
// NAME.subject.txt, NAME.txt and NAME.html for NAME in Templates. Returns an
// error naming the template that does not parse or render.
func NewRenderer(dir string) (*Renderer, error) {
	r := &Renderer{subject: map[string]*texttemplate.Template{}, text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("mail template %s: %w", name, err)
			}
		}
		b, err := embedded.ReadFile("templates/" + name)
		return string(b), err
	}
	for _, t := range Templates() {
		src, err := read(t + ".subject.txt")
		if err != nil {
			return nil, err
		}
		if r.subject[t], err = texttemplate.New(t + ".subject.txt").Option("missingkey=error").Parse(strings.TrimSpace(src)); err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		if src, err = read(t + ".txt"); err != nil {
			return nil, err
		}
		if r.text[t], err = texttemplate.New(t + ".txt").Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		if src, err = read(t + ".html"); err != nil {
			return nil, err
		}
		if r.html[t], err = htmltemplate.New(t + ".html").Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("mail template: %w", err)
		}
		// A template that fails on sample data should fail at startup, not
		// in the worker.
		sample := domain.MailData{Email: "user@example.com", Link: "https://example.com/x#token=t",
			ExpiresAt: time.Unix(0, 0).UTC(), TTL: time.Hour}
		if _, err := r.Render(t, sample); err != nil {
			return nil, err
		}
		if t == domain.MailOTP {
			sample.Link, sample.Code = "", "123456"
			if _, err := r.Render(t, sample); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Render renders the named template. Returns an error for an unknown name
// or a template that fails.
func (r *Renderer) Render(name string, d domain.MailData) (*Message, error) {
	st, ok := r.subject[name]
	if !ok {
		return nil, fmt.Errorf("mail: unknown template %q", name)
	}
	data := TemplateData{Email: d.Email, Link: d.Link, ExpiresAt: d.ExpiresAt, ExpiresIn: HumanDuration(d.TTL),
		Organization: d.Organization, Role: d.Role, Factor: d.Factor, Factors: d.Factors, Endpoint: d.Endpoint, Code: d.Code}
	var subj, text, html bytes.Buffer
	if err := st.Execute(&subj, data); err != nil {
		return nil, fmt.Errorf("mail template %s: %w", name, err)
	}
	if err := r.text[name].Execute(&text, data); err != nil {
		return nil, fmt.Errorf("mail template %s: %w", name, err)
	}
	if err := r.html[name].Execute(&html, data); err != nil {
		return nil, fmt.Errorf("mail template %s: %w", name, err)
	}
	// A subject is one line: a template must not inject headers.
	s := strings.Join(strings.Fields(subj.String()), " ")
	return &Message{To: d.Email, Subject: s, Text: text.String(), HTML: html.String(), Secret: d.Link, Code: d.Code}, nil
}

// HumanDuration writes d in words, in its largest whole unit: "1 hour",
// "90 minutes", "2 days".
func HumanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(max(int64(d/time.Second), 0), "second")
}
