package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// The rate-limit rules of email sign-in.
const (
	ruleOTPEmail    = "otp-email"
	ruleOTPIP       = "otp-ip"
	ruleOTPVerifyIP = "otp-verify-ip"
)

// DefaultOTPTTL is how long a mailed link and code work when
// OTPConfig.TTL is zero.
const DefaultOTPTTL = 10 * time.Minute

// OTPConfig configures email sign-in links and codes.
type OTPConfig struct {
	// TTL is how long a challenge's link and code work (DefaultOTPTTL).
	TTL time.Duration
	// LinkURL is the link template (holding TokenPlaceholder) of a mail
	// whose request named no redirect_to; "" mails the code alone then.
	LinkURL string
	// RedirectURLs are the pages a request's redirect_to may name: an
	// absolute URL matches itself (its query and fragment aside), one
	// ending in "/*" every URL below it.
	RedirectURLs []string
}

// CheckRedirectURLs reports the first entry of an allow-list that is not
// an absolute http(s) URL, or whose "*" is not a final "/*".
func CheckRedirectURLs(list []string) error {
	for _, e := range list {
		base := strings.TrimSuffix(e, "*")
		if strings.Contains(base, "*") || (base != e && !strings.HasSuffix(base, "/")) {
			return fmt.Errorf("%q: a wildcard must be a final /*", e)
		}
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q: want an absolute http or https URL without query or fragment", e)
		}
	}
	return nil
}

// OTP is email sign-in: a mailed link and 6-digit code that open a session
// like a login. It is made with the shared pieces it uses. It is safe for
// concurrent use once Init has run.
type OTP struct {
	cfg      OTPConfig
	mailOn   bool
	store    OTPStore
	sealer   *token.Sealer
	clock    domain.Clock
	log      *slog.Logger
	events   *EventLog
	limits   *RateLimits
	sessions *Sessions
	mail     *Mail
	// codeKey keys the hashes of codes; set by Init.
	codeKey []byte
	sso     *SSORequirement
}

// NewOTP returns the email sign-in service, made with the shared pieces.
// Call Init before use.
func NewOTP(sh Shared, store OTPStore, cfg OTPConfig) *OTP {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultOTPTTL
	}
	return &OTP{cfg: cfg, mailOn: sh.Config.Recovery.Mail, store: store, sealer: sh.Sealer, clock: sh.Clock, log: sh.Log,
		events: sh.Events, limits: sh.Limits, sessions: sh.Sessions, mail: sh.Mail, sso: sh.SSO}
}

// otpSecret names the server secret that keys the codes' hashes.
const otpSecret = "otp-code"

// Init loads (creating on first start) the key of the codes' hashes, a
// server secret sealed by the master key and shared by every instance.
func (o *OTP) Init(ctx context.Context) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	sealed, err := o.sealer.Seal(raw, token.SecretLabel(otpSecret))
	if err != nil {
		return err
	}
	stored, err := o.store.Secret(ctx, otpSecret, sealed, o.clock.Now())
	if err != nil {
		return fmt.Errorf("otp secret: %w", err)
	}
	key, err := o.sealer.Open(stored, token.SecretLabel(otpSecret))
	if err != nil {
		return err
	}
	o.codeKey = key
	return nil
}

// Config returns the configuration with its defaults.
func (o *OTP) Config() OTPConfig { return o.cfg }

// codeHash is the stored form of a code for an email: HMAC-SHA-256 under
// the server's key, so that the table alone does not give the codes.
func (o *OTP) codeHash(email, code string) []byte {
	m := hmac.New(sha256.New, o.codeKey)
	m.Write([]byte(email))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// redirectAllowed reports whether redirect matches an entry of the
// allow-list (see OTPConfig.RedirectURLs).
func (o *OTP) redirectAllowed(redirect string) bool {
	u, err := url.Parse(redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.Contains(u.Path, "..") || strings.Contains(redirect, `\`) {
		// A browser resolves dot segments (also percent-encoded ones) and
		// reads a backslash as a slash: either could leave a prefix.
		return false
	}
	bare := *u
	bare.RawQuery, bare.Fragment, bare.RawFragment, bare.ForceQuery = "", "", "", false
	s := bare.String()
	for _, e := range o.cfg.RedirectURLs {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(s, p) {
				return true
			}
		} else if s == e {
			return true
		}
	}
	return false
}

// link returns the mail's link for the token: redirect with token added
// to its query, else the configured template, else "" (the mail then
// carries the code alone).
func (o *OTP) link(redirect, tok string) string {
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err == nil {
			q := u.Query()
			q.Set("token", tok)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	if o.cfg.LinkURL != "" {
		return BuildLink(o.cfg.LinkURL, tok)
	}
	return ""
}

// SignIn mails a sign-in link and code for the email's account (or, with
// createUser, for an account to create on verification). Its outcome is
// the same whether or not an account has the email: nil, in about the
// same time, since the lookup and the queueing finish in the background;
// a mail quota reached is not told either. Returns CodeInvalidRequest for
// an email that is not an address or a redirect not in the allow-list,
// CodeRateLimited when the client IP or the address is over its limit
// (checked for every address alike).
func (o *OTP) SignIn(ctx context.Context, email string, createUser bool, redirect string, meta domain.RequestMeta) error {
	norm, err := domain.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if redirect != "" && !o.redirectAllowed(redirect) {
		return domain.Errorf(domain.CodeInvalidRequest, "redirect_to is not an allowed URL (LATCH_OTP_REDIRECT_URLS)")
	}
	if err := o.limits.allowIP(ctx, ruleOTPIP, meta, nil); err != nil {
		return err
	}
	if err := o.limits.allow(ctx, ruleOTPEmail, norm, meta, nil); err != nil {
		return err
	}
	// After the limits, like the rest of the work they guard (its query).
	if err := o.sso.Check(ctx, norm); err != nil {
		return err
	}
	if !o.mailOn {
		return nil
	}
	o.mail.background(ctx, func(ctx context.Context) { o.queue(ctx, norm, createUser, redirect) })
	return nil
}

// queue stores a challenge for the email and queues its mail, when an
// account has the email or createUser asks for one and the address's mail
// quota allows.
func (o *OTP) queue(ctx context.Context, email string, createUser bool, redirect string) {
	var uid *uuid.UUID
	u, err := o.store.UserByEmail(ctx, email)
	switch {
	case err == nil:
		uid = &u.ID
	case domain.IsCode(err, domain.CodeNotFound):
		if !createUser {
			return
		}
	default:
		o.log.Error("email sign-in request", "err", err)
		return
	}
	now := o.clock.Now()
	if wait, err := o.limits.mailQuota(ctx, email, nil, now); err != nil || wait > 0 {
		if err != nil {
			o.log.Error("email sign-in request", "err", err)
		}
		return
	}
	c, m, err := o.newChallenge(email, uid, createUser, redirect, now)
	if err == nil {
		err = o.store.CreateOTPChallenge(ctx, c, m)
	}
	if err != nil {
		o.log.Error("email sign-in request", "err", err)
		return
	}
	o.mail.queued()
}

// newChallenge makes a challenge for the email and the mail that carries
// its link and code: a 256-bit token from crypto/rand (only its SHA-256 is
// stored) and a uniform 6-digit code (only its keyed hash is stored); both
// exist in clear only inside the sealed outbox payload.
func (o *OTP) newChallenge(email string, uid *uuid.UUID, createUser bool, redirect string, now time.Time) (*domain.OTPChallenge, *domain.OutboxMessage, error) {
	if o.codeKey == nil || o.mail.outbox == nil {
		return nil, nil, errNotInit
	}
	raw := make([]byte, recoveryTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return nil, nil, err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	h := sha256.Sum256(raw)
	exp := now.Add(o.cfg.TTL)
	c := &domain.OTPChallenge{ID: uuid.New(), Email: email, TokenHash: h[:], CodeHash: o.codeHash(email, code), CreateUser: createUser,
		CreatedAt: now, ExpiresAt: exp}
	data, err := json.Marshal(domain.MailData{Email: email, Link: o.link(redirect, base64.RawURLEncoding.EncodeToString(raw)), Code: code,
		ExpiresAt: exp, TTL: o.cfg.TTL})
	if err != nil {
		return nil, nil, err
	}
	id := uuid.New()
	payload, err := o.mail.outbox.Seal(data, domain.OutboxPayloadLabel(id))
	if err != nil {
		return nil, nil, err
	}
	m := &domain.OutboxMessage{ID: id, Template: domain.MailOTP, Priority: domain.MailPriorityAccount, Recipient: email, UserID: uid,
		Payload: payload, CreatedAt: now, NextAttemptAt: now, ExpiresAt: &exp}
	return c, m, nil
}

// isCode reports whether s is six ASCII digits.
func isCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Verify opens a session with a mailed link's token, or with an email and
// its 6-digit code, exactly as a login does (its methods are ["otp"]; a
// user with a verified second factor gets an aal1 session that the factor
// raises). The challenge is spent once; a wrong code takes one of its
// domain.OTPMaxAttempts attempts. The email becomes verified, and the
// account is created when the challenge asked for one. Returns
// CodeInvalidRequest unless exactly a token or an email and a code are
// given, CodeInvalidToken for an unknown, expired, spent or ended
// challenge or a wrong code, CodeRateLimited.
func (o *OTP) Verify(ctx context.Context, email, code, tok string, meta domain.RequestMeta) (*TokenSet, error) {
	if byToken := tok != ""; byToken && (email != "" || code != "") || !byToken && (email == "" || code == "") {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "give either token, or email and code")
	}
	if err := o.limits.allowIP(ctx, ruleOTPVerifyIP, meta, nil); err != nil {
		return nil, err
	}
	if o.codeKey == nil {
		return nil, errNotInit
	}
	now := o.clock.Now()
	r := domain.OTPRedeem{Now: now, NewUser: &domain.User{ID: uuid.New(), CreatedAt: now, UpdatedAt: now}}
	if tok != "" {
		h, err := decodeRecoveryToken(tok)
		if err != nil {
			return nil, err
		}
		r.TokenHash = h
	} else {
		norm, err := domain.NormalizeEmail(email)
		if err != nil {
			return nil, err
		}
		if !isCode(code) {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "code must be 6 digits")
		}
		want := o.codeHash(norm, code)
		r.Email = norm
		r.Check = func(c *domain.OTPChallenge) bool { return hmac.Equal(c.CodeHash, want) }
	}
	res, err := o.store.RedeemOTP(ctx, r)
	if err != nil {
		return nil, err
	}
	u := &res.User
	// A code sent before the organization required SSO is spent, and
	// opens nothing.
	if err := o.sso.Check(ctx, u.Email); err != nil {
		return nil, err
	}
	if res.Created {
		o.events.record(ctx, domain.EventSignup, meta, &u.ID, nil, nil, map[string]any{"method": "otp"})
	}
	if res.Verified {
		o.sessions.userChanged(u.ID)
		o.events.record(ctx, domain.EventEmailVerified, meta, &u.ID, nil, nil, map[string]any{"method": "otp"})
	}
	if err := o.sessions.checkVerified(u); err != nil {
		return nil, err
	}
	return o.sessions.open(ctx, u, nil, meta, domain.EventLoginSucceeded, func(s *domain.Session) {
		s.AMR = []string{domain.AMROTP}
	})
}
