package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// The TLS modes of an SMTP connection.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses a server
	// that does not offer it (the default for smtp://).
	TLSStartTLS = "starttls"
	// TLSOpportunistic uses STARTTLS when the server offers it.
	TLSOpportunistic = "opportunistic"
	// TLSNone never encrypts; credentials are then only sent to localhost.
	TLSNone = "none"
	// TLSImplicit connects with TLS from the start (smtps://, port 465).
	TLSImplicit = "implicit"
)

// SMTPConfig says where and how to send mail.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is one of TLSStartTLS, TLSOpportunistic, TLSNone, TLSImplicit.
	TLS string
	// TLSConfig, when set, replaces the default (system roots, the host as
	// server name), for instance to trust a private CA.
	TLSConfig *tls.Config
	// Timeout bounds the connection and each SMTP command (default 30s).
	Timeout time.Duration
}

// ParseSMTPURL parses smtp://user:pass@host:port (STARTTLS required, port
// 587 by default) or smtps://user:pass@host:port (implicit TLS, port 465 by
// default). The query parameter tls=starttls|opportunistic|none overrides
// the mode of smtp://. User and password are optional and URL-decoded.
// Errors never include the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPConfig{}, errors.New("not a valid URL (want smtp://user:pass@host:587)")
	}
	c := SMTPConfig{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		c.TLS, c.Port = TLSStartTLS, 587
	case "smtps":
		c.TLS, c.Port = TLSImplicit, 465
	default:
		return SMTPConfig{}, fmt.Errorf("%s: the scheme must be smtp or smtps", u.Redacted())
	}
	if c.Host == "" {
		return SMTPConfig{}, fmt.Errorf("%s: no host", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil || c.Port < 1 || c.Port > 65535 {
			return SMTPConfig{}, fmt.Errorf("%s: bad port", u.Redacted())
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "tls" {
			return SMTPConfig{}, fmt.Errorf("%s: unknown parameter %q", u.Redacted(), k)
		}
	}
	if m := q.Get("tls"); m != "" {
		if u.Scheme == "smtps" {
			return SMTPConfig{}, fmt.Errorf("%s: smtps:// always uses TLS", u.Redacted())
		}
		switch m {
		case TLSStartTLS, TLSOpportunistic, TLSNone:
			c.TLS = m
		default:
			return SMTPConfig{}, fmt.Errorf("%s: tls must be starttls, opportunistic or none", u.Redacted())
		}
	}
	return c, nil
}

// SMTP sends mail through an SMTP server with go-mail, one connection per
// message.
type SMTP struct {
	cfg SMTPConfig
}

// NewSMTP returns an SMTP transport. Returns an error for a configuration
// that cannot work.
func NewSMTP(c SMTPConfig) (*SMTP, error) {
	if c.Host == "" || c.Port < 1 || c.Port > 65535 {
		return nil, errors.New("mail: SMTP host and port are required")
	}
	switch c.TLS {
	case "":
		c.TLS = TLSStartTLS
	case TLSStartTLS, TLSOpportunistic, TLSNone, TLSImplicit:
	default:
		return nil, fmt.Errorf("mail: unknown SMTP TLS mode %q", c.TLS)
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	return &SMTP{cfg: c}, nil
}

// Addr returns host:port.
func (t *SMTP) Addr() string { return net.JoinHostPort(t.cfg.Host, strconv.Itoa(t.cfg.Port)) }

// Send delivers m. Credentials are offered only over TLS, with the
// strongest mechanism the server advertises, or in the clear to localhost.
func (t *SMTP) Send(ctx context.Context, m *Message) error {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("mail: sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	// RFC 3834: an automatic mail, which auto-responders must not answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	opts := []gomail.Option{gomail.WithPort(t.cfg.Port), gomail.WithTimeout(t.cfg.Timeout)}
	switch t.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if t.cfg.TLSConfig != nil {
		tc := t.cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = t.cfg.Host
		}
		opts = append(opts, gomail.WithTLSConfig(tc))
	}
	if t.cfg.Username != "" {
		// Over TLS, the strongest mechanism the server offers. In the clear,
		// PLAIN, which go-mail sends only to localhost (a local relay).
		auth := gomail.SMTPAuthAutoDiscover
		if t.cfg.TLS == TLSNone {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(t.cfg.Username), gomail.WithPassword(t.cfg.Password))
	}
	c, err := gomail.NewClient(t.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mail: smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: smtp %s: %w", t.Addr(), err)
	}
	return nil
}
