package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// The rate-limit rules of recovery.
const (
	ruleForgotEmail = "forgot-email"
	ruleForgotIP    = "forgot-ip"
	ruleResetIP     = "reset-ip"
	ruleVerifyIP    = "verify-ip"
	ruleResendUser  = "resend-user"
)

// errNotInit is returned by what needs Init to have run.
var errNotInit = errors.New("service: Init has not run")

// TokenPlaceholder is what a link template has where the token goes.
const TokenPlaceholder = "{token}"

// RecoveryConfig configures password reset, email verification, the mail
// they queue and the pruning of old rows.
type RecoveryConfig struct {
	// Mail turns mail on. Off, signup queues no verification mail and
	// password resets are never mailed (the forgot endpoint still answers
	// 202, as it must).
	Mail bool
	// ResetURL and VerifyURL are absolute link templates whose
	// TokenPlaceholder is replaced by the token. They come from
	// configuration only, never from a request's Host header.
	ResetURL  string
	VerifyURL string
	// ResetTTL and VerifyTTL are the tokens' lifetimes (defaults 1h, 48h).
	ResetTTL  time.Duration
	VerifyTTL time.Duration
	// InviteURL is the organization-invitation link template (same form);
	// InviteTTL its lifetime (default 7 days).
	InviteURL string
	InviteTTL time.Duration
	// EventRetention is how long security events are kept (default 90 days).
	EventRetention time.Duration
	// OutboxRetention is how long sent or abandoned mails are kept, without
	// their payload (default 7 days).
	OutboxRetention time.Duration
	// OutboundRetention is how long outbound events (the events feed) are
	// kept (default 30 days).
	OutboundRetention time.Duration
	// PruneInterval is how often pruning runs (default 10m); PruneBatch is
	// the most rows one statement deletes (default 1000).
	PruneInterval time.Duration
	PruneBatch    int
	// ForgotWorkers bounds the password-reset requests handled at once in
	// the background (default 16).
	ForgotWorkers int
}

// DefaultRecoveryConfig returns the defaults of RecoveryConfig: tokens of
// 1 h (reset), 48 h (verification) and 7 days (invitation), security
// events kept 90 days, sent mails 7 and outbound events 30, pruning every 10 minutes by 1000 rows, 16
// background resets at once. New applies them to the fields left zero.
func DefaultRecoveryConfig() RecoveryConfig {
	return RecoveryConfig{
		ResetTTL: time.Hour, VerifyTTL: 48 * time.Hour, InviteTTL: 7 * 24 * time.Hour,
		InviteURL:      "http://127.0.0.1:8080/accept-invitation#token=" + TokenPlaceholder,
		EventRetention: 90 * 24 * time.Hour, OutboxRetention: 7 * 24 * time.Hour, OutboundRetention: 30 * 24 * time.Hour,
		PruneInterval: 10 * time.Minute, PruneBatch: 1000, ForgotWorkers: 16,
	}
}

func (c RecoveryConfig) withDefaults() RecoveryConfig {
	def := DefaultRecoveryConfig()
	if c.ResetTTL <= 0 {
		c.ResetTTL = def.ResetTTL
	}
	if c.VerifyTTL <= 0 {
		c.VerifyTTL = def.VerifyTTL
	}
	if c.InviteTTL <= 0 {
		c.InviteTTL = def.InviteTTL
	}
	if c.InviteURL == "" {
		c.InviteURL = def.InviteURL
	}
	if c.EventRetention <= 0 {
		c.EventRetention = def.EventRetention
	}
	if c.OutboxRetention <= 0 {
		c.OutboxRetention = def.OutboxRetention
	}
	if c.OutboundRetention <= 0 {
		c.OutboundRetention = def.OutboundRetention
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = def.PruneInterval
	}
	if c.PruneBatch <= 0 {
		c.PruneBatch = def.PruneBatch
	}
	if c.ForgotWorkers <= 0 {
		c.ForgotWorkers = def.ForgotWorkers
	}
	return c
}

// BuildLink returns the link template with the token in place of
// TokenPlaceholder.
func BuildLink(template, tok string) string {
	return strings.ReplaceAll(template, TokenPlaceholder, url.QueryEscape(tok))
}

// CheckLinkTemplate reports whether t is an absolute http(s) URL template
// holding TokenPlaceholder.
func CheckLinkTemplate(t string) error {
	if !strings.Contains(t, TokenPlaceholder) {
		return errors.New("must contain " + TokenPlaceholder)
	}
	u, err := url.Parse(BuildLink(t, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	return nil
}

// Recovery is password reset, email verification and password change: the
// flows that mail a single-use token or replace a password. It is made
// with the shared pieces it uses (rate limits, hashing, sessions, API-key
// authentication, events, mail and its background work). It is safe for
// concurrent use.
type Recovery struct {
	cfg      RecoveryConfig
	store    RecoveryStore
	hasher   Hasher
	clock    domain.Clock
	log      *slog.Logger
	events   *EventLog
	limits   *RateLimits
	sessions *Sessions
	keys     *KeyAuth
	mail     *Mail
	sso      *SSORequirement
}

// NewRecovery returns the recovery service, made with the shared pieces.
func NewRecovery(sh Shared, store RecoveryStore) *Recovery {
	return &Recovery{cfg: sh.Config.Recovery, store: store, hasher: sh.Hasher, clock: sh.Clock, log: sh.Log, events: sh.Events,
		limits: sh.Limits, sessions: sh.Sessions, keys: sh.Keys, mail: sh.Mail, sso: sh.SSO}
}

// Mail is what the features that send mail share: the outbox's sealer
// (outbox payloads are sealed), waking the outbox worker once a mail is
// queued, the tokens that mails carry (newRecovery), and the background
// work that requests start (forgot-password requests finish in the
// background, so that the answer takes the same time whether or not the
// email is known).
type Mail struct {
	cfg    RecoveryConfig
	clock  domain.Clock
	queued func()
	outbox *token.Sealer // seals outbox payloads; set by Init

	// Forgot-password requests finish in the background, so that the
	// answer takes the same time whether or not the email is known.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	sem    chan struct{}
}

func newMail(c RecoveryConfig, clock domain.Clock, queued func()) *Mail {
	if queued == nil {
		queued = func() {}
	}
	return &Mail{cfg: c, clock: clock, queued: queued, sem: make(chan struct{}, c.ForgotWorkers)}
}

// initRecovery loads (creating on first start) the key that seals outbox
// payloads. The key is a server secret, itself sealed by the master key.
func (s *Service) initRecovery(ctx context.Context) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	sealed, err := s.sealer.Seal(raw, token.SecretLabel("mail-outbox"))
	if err != nil {
		return err
	}
	stored, err := s.store.Secret(ctx, "mail-outbox", sealed, s.clock.Now())
	if err != nil {
		return err
	}
	key, err := s.sealer.Open(stored, token.SecretLabel("mail-outbox"))
	if err != nil {
		return err
	}
	if s.mail.outbox, err = token.NewSealer(base64.StdEncoding.EncodeToString(key)); err != nil {
		return err
	}
	return nil
}

// OutboxSealer returns what seals and opens outbox payloads, for the mail
// worker. It is nil before Init.
func (s *Service) OutboxSealer() *token.Sealer { return s.mail.outbox }

// Close waits for background work that requests started (password-reset
// requests being queued) and refuses new such work.
func (s *Service) Close() { s.mail.close() }

// close refuses new background work and waits for what runs.
func (m *Mail) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.wg.Wait()
}

// WaitBackground waits for the background work started so far; for tests.
func (s *Service) WaitBackground() { s.mail.wg.Wait() }

// background runs f on its own goroutine, at most ForgotWorkers at once;
// it waits for a slot as long as ctx allows. It reports whether f was
// started.
func (m *Mail) background(ctx context.Context, f func(ctx context.Context)) bool {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.sem
		return false
	}
	m.wg.Add(1)
	m.mu.Unlock()
	bg := context.WithoutCancel(ctx)
	go func() {
		defer func() { <-m.sem; m.wg.Done() }()
		bctx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		f(bctx)
	}()
	return true
}

// recoveryTokenBytes is the entropy of a reset or verification token.
const recoveryTokenBytes = 32

var recoveryTokenLen = base64.RawURLEncoding.EncodedLen(recoveryTokenBytes)

func invalidToken() error {
	return domain.Errorf(domain.CodeInvalidToken, "the token is invalid, expired or already used")
}

// decodeRecoveryToken returns the hash of a presented token. Returns
// CodeInvalidToken for anything that is not 43 characters of unpadded
// base64url encoding 32 bytes.
func decodeRecoveryToken(tok string) ([]byte, error) {
	if len(tok) != recoveryTokenLen {
		return nil, invalidToken()
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(raw) != recoveryTokenBytes {
		return nil, invalidToken()
	}
	h := sha256.Sum256(raw)
	return h[:], nil
}

// newRecovery makes a token for the user's email and the mail that carries
// its link. The token is 256 bits from crypto/rand; only its SHA-256 is
// stored, and the link exists only inside the sealed payload.
func (m *Mail) newRecovery(u *domain.User, purpose string, factors []string, now time.Time) (*domain.RecoveryToken, *domain.OutboxMessage, error) {
	ttl, tmpl := m.cfg.ResetTTL, m.cfg.ResetURL
	if purpose == domain.PurposeVerifyEmail {
		ttl, tmpl = m.cfg.VerifyTTL, m.cfg.VerifyURL
	}
	if m.outbox == nil {
		return nil, nil, errNotInit
	}
	raw := make([]byte, recoveryTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256(raw)
	exp := now.Add(ttl)
	t := &domain.RecoveryToken{ID: uuid.New(), UserID: u.ID, Purpose: purpose, Hash: h[:], Email: u.Email, CreatedAt: now, ExpiresAt: exp}
	data, err := json.Marshal(domain.MailData{Email: u.Email, Link: BuildLink(tmpl, base64.RawURLEncoding.EncodeToString(raw)), ExpiresAt: exp, TTL: ttl, Factors: factors})
	if err != nil {
		return nil, nil, err
	}
	id := uuid.New()
	payload, err := m.outbox.Seal(data, domain.OutboxPayloadLabel(id))
	if err != nil {
		return nil, nil, err
	}
	uid := u.ID
	msg := &domain.OutboxMessage{ID: id, Template: purpose, Recipient: u.Email, UserID: &uid, Payload: payload,
		CreatedAt: now, NextAttemptAt: now, ExpiresAt: &exp}
	return t, msg, nil
}

// createUser stores a new user; with mail on, a verification token and its
// mail go in the same transaction.
func (s *Service) createUser(ctx context.Context, u *domain.User, sess *domain.Session, rt *domain.RefreshToken, now time.Time) error {
	if !s.cfg.Recovery.Mail || u.Email == "" || u.OrgID != nil || u.EmailVerified {
		return s.store.CreateUser(ctx, u, sess, rt)
	}
	if wait, err := s.limits.mailQuota(ctx, u.Email, nil, now); err != nil {
		return err
	} else if wait > 0 {
		// The account is created; its verification mail can be asked for
		// again once the address's quota allows.
		s.log.Warn("verification mail not queued: the recipient's mail quota is reached", "user_id", u.ID)
		return s.store.CreateUser(ctx, u, sess, rt)
	}
	t, m, err := s.mail.newRecovery(u, domain.PurposeVerifyEmail, nil, now)
	if err != nil {
		return err
	}
	if err := s.store.CreateUserWithMail(ctx, u, sess, rt, t, m); err != nil {
		return err
	}
	s.mail.queued()
	return nil
}

// ForgotPassword queues a password-reset mail if the email belongs to an
// account. Its outcome is the same whether or not it does, and whether or
// not a limit was reached: nil, in about the same time, since the lookup
// and the queueing finish in the background. Returns CodeInvalidRequest
// only for an email that is not an address at all.
func (r *Recovery) ForgotPassword(ctx context.Context, email string, meta domain.RequestMeta) error {
	norm, err := domain.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := r.sso.Check(ctx, norm); err != nil {
		return err
	}
	if !r.cfg.Mail {
		return nil
	}
	// The limits are checked for every address, known or not, and a limit
	// reached is not told: the answer stays 202.
	if r.limits.allowIP(ctx, ruleForgotIP, meta, nil) != nil {
		return nil
	}
	if r.limits.allow(ctx, ruleForgotEmail, norm, meta, nil) != nil {
		return nil
	}
	r.mail.background(ctx, func(ctx context.Context) { r.queueReset(ctx, norm, meta) })
	return nil
}

// queueReset stores a reset token and its mail for the account of email,
// if there is one.
func (r *Recovery) queueReset(ctx context.Context, email string, meta domain.RequestMeta) {
	u, err := r.store.UserByEmail(ctx, email)
	if domain.IsCode(err, domain.CodeNotFound) {
		return
	}
	if err != nil {
		r.log.Error("password reset request", "err", err)
		return
	}
	now := r.clock.Now()
	if wait, err := r.limits.mailQuota(ctx, u.Email, nil, now); err != nil || wait > 0 {
		if err != nil {
			r.log.Error("password reset request", "user_id", u.ID, "err", err)
		}
		return
	}
	fs, err := r.store.ListFactors(ctx, u.ID)
	if err != nil {
		r.log.Error("password reset request", "user_id", u.ID, "err", err)
		return
	}
	var factors []string
	for _, f := range fs {
		if f.Verified() {
			factors = append(factors, f.Name+" ("+factorKind(f.Type)+")")
		}
	}
	t, m, err := r.mail.newRecovery(u, domain.PurposePasswordReset, factors, now)
	if err == nil {
		err = r.store.CreateRecoveryToken(ctx, t, m)
	}
	if err != nil {
		r.log.Error("password reset request", "user_id", u.ID, "err", err)
		return
	}
	r.mail.queued()
	r.events.record(ctx, domain.EventPasswordResetRequested, meta, &u.ID, nil, nil, map[string]any{"expires_at": t.ExpiresAt.Format(time.RFC3339)})
}

// ResetPassword sets a new password with a reset token, spends every other
// reset token of the user, revokes all of the user's sessions and personal
// API keys, stops every passkey from signing in alone (they stay second
// factors) and unlocks the second factors: whoever held the account before
// keeps no way in that does not need the new password. It does not log in. Returns CodeRateLimited, CodeInvalidToken for an unknown, used
// or expired token (checked before the password), CodeWeakPassword or
// CodeInvalidRequest for a password the policy refuses.
func (r *Recovery) ResetPassword(ctx context.Context, tok, pw string, meta domain.RequestMeta) error {
	if err := r.limits.allowIP(ctx, ruleResetIP, meta, nil); err != nil {
		return err
	}
	h, err := decodeRecoveryToken(tok)
	if err != nil {
		return err
	}
	// A cheap look first, so an invalid token costs no hashing; the spending
	// update below decides.
	if _, err := r.store.RecoveryToken(ctx, domain.PurposePasswordReset, h, r.clock.Now()); err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return invalidToken()
		}
		return err
	}
	if err := r.hasher.Check(pw); err != nil {
		return err
	}
	phc, err := r.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	res, err := r.store.RedeemRecoveryToken(ctx, domain.PurposePasswordReset, h, r.clock.Now(), func(t *domain.RecoveryToken) domain.CredentialChange {
		// Following the link proves control of the address it was sent to.
		// Whoever held the account before may hold its other reset links,
		// sessions and API keys: they all end. They may also have
		// registered a passkey, which signs in alone: from now on the
		// account's passkeys are second factors only, after the new
		// password (a passkey registered again signs in alone).
		return domain.CredentialChange{PasswordHash: phc, VerifyEmail: t.Email, SpendTokens: []string{domain.PurposePasswordReset},
			RevokeSessions: true, RevokeAPIKeys: true, DisablePasskeyLogin: true, UnlockMFA: true}
	})
	if err != nil {
		return err
	}
	r.sessions.forget(res.Revoked...)
	for i := range res.RevokedKeys {
		r.keys.forgetKey(&res.RevokedKeys[i])
	}
	r.sessions.userChanged(res.UserID)
	r.events.record(ctx, domain.EventPasswordResetCompleted, meta, &res.UserID, nil, nil,
		map[string]any{"revoked_sessions": len(res.Revoked), "revoked_api_keys": len(res.RevokedKeys)})
	return nil
}

// VerifyEmail marks an email verified with a verification token. Returns
// CodeRateLimited, or CodeInvalidToken for an unknown, used or expired
// token.
func (r *Recovery) VerifyEmail(ctx context.Context, tok string, meta domain.RequestMeta) error {
	if err := r.limits.allowIP(ctx, ruleVerifyIP, meta, nil); err != nil {
		return err
	}
	h, err := decodeRecoveryToken(tok)
	if err != nil {
		return err
	}
	res, err := r.store.RedeemRecoveryToken(ctx, domain.PurposeVerifyEmail, h, r.clock.Now(), func(t *domain.RecoveryToken) domain.CredentialChange {
		// The link verifies the address it was sent to, only while that is
		// still the account's; it spends the other verification links.
		return domain.CredentialChange{VerifyEmail: t.Email, IfEmail: t.Email, SpendTokens: []string{domain.PurposeVerifyEmail}}
	})
	if err != nil {
		return err
	}
	r.sessions.userChanged(res.UserID)
	r.events.record(ctx, domain.EventEmailVerified, meta, &res.UserID, nil, nil, nil)
	return nil
}

// ResendVerification queues a new verification mail for the principal's
// user unless the email is already verified (or there is none, or mail is
// off). Returns CodeRateLimited.
func (r *Recovery) ResendVerification(ctx context.Context, p *domain.Principal, meta domain.RequestMeta) error {
	if p.UserID == uuid.Nil {
		return domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user")
	}
	if err := r.limits.allow(ctx, ruleResendUser, p.UserID.String(), meta, &p.UserID); err != nil {
		return err
	}
	u, err := r.store.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if u.OrgID != nil {
		return domain.Errorf(domain.CodeInsufficientPermissions, "a delegated identity's email is its organization's claim; Latch does not verify it or send it mail")
	}
	if !r.cfg.Mail || u.EmailVerified || u.Email == "" {
		return nil
	}
	now := r.clock.Now()
	if wait, err := r.limits.mailQuota(ctx, u.Email, nil, now); err != nil {
		return err
	} else if wait > 0 {
		return &domain.Error{Code: domain.CodeRateLimited, Message: "too many mails to this address; try again later", RetryAfter: wait}
	}
	t, m, err := r.mail.newRecovery(u, domain.PurposeVerifyEmail, nil, now)
	if err != nil {
		return err
	}
	if err := r.store.CreateRecoveryToken(ctx, t, m); err != nil {
		return err
	}
	r.mail.queued()
	return nil
}

// ChangePassword replaces the principal's password, keeping the principal's
// session and revoking every other one, and with revokeKeys every personal
// API key of the user. A wrong current password counts
// against the same limits as a failed login. Returns CodeWeakPassword or
// CodeInvalidRequest for a new password the policy refuses,
// CodeInvalidCredentials for a wrong current password, CodeRateLimited.
func (r *Recovery) ChangePassword(ctx context.Context, p *domain.Principal, current, next string, revokeKeys bool, meta domain.RequestMeta) error {
	if p.Kind != domain.PrincipalSession {
		return domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user session")
	}
	bad := domain.Errorf(domain.CodeInvalidCredentials, "the current password is wrong")
	if err := r.hasher.Check(next); err != nil {
		return err
	}
	u, err := r.store.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	key := u.Email
	if key == "" {
		key = u.ID.String()
	}
	if err := r.limits.allowIP(ctx, ruleLoginIP, meta, &u.ID); err != nil {
		return err
	}
	if err := r.limits.allow(ctx, ruleLoginAccount, key, meta, &u.ID); err != nil {
		return err
	}
	ok, _, err := r.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil && domain.IsCode(err, domain.CodeUnavailable) {
		return err
	}
	if err != nil || !ok {
		r.events.record(ctx, domain.EventLoginFailed, meta, &u.ID, &p.SessionID, nil, map[string]any{"reason": "password_change"})
		return bad
	}
	r.limits.refund(ctx, ruleLoginAccount, key)
	phc, err := r.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	// The new password ends every other session (and, when asked, the
	// personal API keys) and spends the outstanding reset links, which
	// could otherwise set another password.
	res, err := r.store.ChangeCredentials(ctx, u.ID, domain.CredentialChange{PasswordHash: phc, IfPasswordHash: u.PasswordHash,
		SpendTokens: []string{domain.PurposePasswordReset}, RevokeSessions: true, KeepSession: p.SessionID, RevokeAPIKeys: revokeKeys}, r.clock.Now())
	if domain.IsCode(err, domain.CodeNotFound) {
		return bad // the password changed meanwhile
	}
	if err != nil {
		return err
	}
	r.sessions.forget(res.Revoked...)
	r.sessions.userChanged(u.ID)
	for i := range res.RevokedKeys {
		r.keys.forgetKey(&res.RevokedKeys[i])
	}
	r.events.record(ctx, domain.EventPasswordChanged, meta, &u.ID, &p.SessionID, nil, map[string]any{"revoked_sessions": len(res.Revoked), "revoked_api_keys": len(res.RevokedKeys)})
	return nil
}
