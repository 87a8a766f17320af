package service

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/token"
)

// TokenSet is what signup, login, refresh and delegated sessions return.
type TokenSet struct {
	AccessToken  string
	ExpiresAt    time.Time
	ExpiresIn    int
	RefreshToken string
	Session      domain.Session
	User         domain.User
	// Pending is set by Signup when the email must be verified first: the
	// account exists, and only User is set.
	Pending bool
}

// The rate-limit rule names.
const (
	ruleLoginAccount = "login-account"
	ruleLoginIP      = "login-ip"
	ruleSignupIP     = "signup-ip"
	ruleRefreshIP    = "refresh-ip"
	ruleDelegatedKey = "delegated-key"
	ruleInviteOrg    = "invite-org"
	ruleInviteUser   = "invite-user"
)

// allow takes a token of the rule for key, atomically in the limiter's
// store, before the work it guards; when none is left it records a
// rate_limited event and returns CodeRateLimited with the wait.
func (s *Service) allow(ctx context.Context, name string, key string, meta domain.RequestMeta, userID *uuid.UUID) error {
	if !s.cfg.RateLimits {
		return nil
	}
	r := s.rule(name)
	if r.Burst <= 0 {
		return nil
	}
	var lim Limiter = s.limiter
	if name == ruleRefreshIP {
		lim = s.local
	}
	ok, wait, err := lim.Allow(ctx, name, r, key)
	if err != nil {
		// The shared limiter is down: refuse rather than allow unlimited
		// guesses (refresh never gets here: its limit is local).
		s.metrics.RateLimit(name, "unavailable")
		s.log.Warn("rate limiter unavailable", "rule", name, "err", err)
		return &domain.Error{Code: domain.CodeUnavailable, Message: "the rate limiter is unavailable; try again shortly", RetryAfter: 2 * time.Second, Err: err}
	}
	if ok {
		s.metrics.RateLimit(name, "allowed")
		return nil
	}
	s.metrics.RateLimit(name, "refused")
	s.recordRefusal(ctx, name, r, key, meta, userID)
	return &domain.Error{Code: domain.CodeRateLimited, Message: "too many requests; try again later", RetryAfter: wait}
}

// refusalWindow is the state of one rule and key's refusals: the event
// written at its start covers every refusal until it ends.
type refusalWindow struct {
	until      time.Time
	suppressed int
}

// recordRefusal records a rate_limited event for the rule and key at most
// once per the rule's period, so that a flood of refused requests is not a
// flood of writes. The event's detail carries the rule and, as suppressed,
// how many refusals of the same rule and key since the previous event were
// not recorded.
func (s *Service) recordRefusal(ctx context.Context, name string, r ratelimit.Rule, key string, meta domain.RequestMeta, userID *uuid.UUID) {
	now := s.clock.Now()
	k := name + "\x00" + key
	s.refusalsMu.Lock()
	w, ok := s.refusals.Get(k)
	if ok && now.Before(w.until) {
		w.suppressed++
		s.refusalsMu.Unlock()
		return
	}
	suppressed := 0
	if ok {
		suppressed = w.suppressed
	}
	s.refusals.Add(k, &refusalWindow{until: now.Add(r.Per)})
	s.refusalsMu.Unlock()
	s.event(ctx, domain.EventRateLimited, meta, userID, nil, nil, map[string]any{"rule": name, "suppressed": suppressed})
}

// allowIP is allow for a rule keyed by the client's address, as
// ratelimit.IPKey groups it: an IPv6 client by its /64.
func (s *Service) allowIP(ctx context.Context, name string, meta domain.RequestMeta, userID *uuid.UUID) error {
	return s.allow(ctx, name, ratelimit.IPKey(meta.IP), meta, userID)
}

// refund gives back the token that allow took for an attempt that
// succeeded: the account rules (login-account, mfa-account) count failures,
// but take their token before the work so that concurrent guesses cannot
// all pass one look at the bucket. A refund that fails is logged; the
// attempt only cost a token.
func (s *Service) refund(ctx context.Context, name string, key string) {
	if !s.cfg.RateLimits {
		return
	}
	r := s.rule(name)
	if r.Burst <= 0 {
		return
	}
	if err := s.limiter.Refund(context.WithoutCancel(ctx), name, r, key); err != nil {
		s.log.Warn("rate limiter unavailable: a token was not refunded", "rule", name, "err", err)
	}
}

func (s *Service) rule(name string) (r ratelimit.Rule) {
	switch name {
	case ruleLoginAccount:
		return s.cfg.Limits.LoginAccount
	case ruleLoginIP:
		return s.cfg.Limits.LoginIP
	case ruleSignupIP:
		return s.cfg.Limits.SignupIP
	case ruleRefreshIP:
		return s.cfg.Limits.RefreshIP
	case ruleForgotEmail:
		return s.cfg.Limits.ForgotEmail
	case ruleForgotIP:
		return s.cfg.Limits.ForgotIP
	case ruleResetIP:
		return s.cfg.Limits.ResetIP
	case ruleVerifyIP:
		return s.cfg.Limits.VerifyIP
	case ruleResendUser:
		return s.cfg.Limits.ResendUser
	case ruleDelegatedKey:
		return s.cfg.Limits.DelegatedKey
	case ruleInviteOrg:
		return s.cfg.Limits.InviteOrg
	case ruleInviteUser:
		return s.cfg.Limits.InviteUser
	case ruleMFAAccount:
		return s.cfg.Limits.MFAAccount
	case ruleMFAIP:
		return s.cfg.Limits.MFAIP
	}
	return r
}

// Signup creates a password account and opens its first session (none while
// RequireVerifiedEmail is on: the result is Pending). Returns
// CodeInvalidRequest for a bad email, CodeWeakPassword for a password the
// policy refuses, CodeEmailTaken when the email is in use, CodeRateLimited.
func (s *Service) Signup(ctx context.Context, email, pw string, meta domain.RequestMeta) (*TokenSet, error) {
	if err := s.allowIP(ctx, ruleSignupIP, meta, nil); err != nil {
		return nil, err
	}
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := s.hasher.Check(pw); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	u := &domain.User{ID: uuid.New(), Email: email, EmailVerified: s.cfg.AutoconfirmEmail, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if s.cfg.RequireVerifiedEmail {
		// No session until the email is verified: login would refuse one, so
		// signup must not hand one out either.
		if err := s.createUser(ctx, u, nil, nil, now); err != nil {
			return nil, err
		}
		s.event(ctx, domain.EventSignup, meta, &u.ID, nil, nil, map[string]any{"verification_required": true})
		return &TokenSet{User: *u, Pending: true}, nil
	}
	sess, rt, refresh, err := s.newSession(u, nil, meta, now)
	if err != nil {
		return nil, err
	}
	// With mail on, the verification token and its mail are stored in the
	// same transaction as the user.
	if err := s.createUser(ctx, u, sess, rt, now); err != nil {
		return nil, err
	}
	s.event(ctx, domain.EventSignup, meta, &u.ID, &sess.ID, nil, nil)
	return s.tokenSet(u, sess, refresh, now)
}

// Login checks the password and opens a session. Returns
// CodeInvalidCredentials, with the same message and a similar time whether
// the email is unknown or the password wrong; CodeRateLimited before any
// hashing when the account or the client IP is over its limit.
func (s *Service) Login(ctx context.Context, email, pw string, meta domain.RequestMeta) (*TokenSet, error) {
	bad := domain.Errorf(domain.CodeInvalidCredentials, "invalid email or password")
	norm, err := domain.NormalizeEmail(email)
	if err != nil {
		norm = email // still rate limited and hashed, so a bad email costs the same
	}
	if err := s.allowIP(ctx, ruleLoginIP, meta, nil); err != nil {
		return nil, err
	}
	if err := s.allow(ctx, ruleLoginAccount, norm, meta, nil); err != nil {
		return nil, err
	}
	var u *domain.User
	if err == nil {
		u, err = s.store.UserByEmail(ctx, norm)
		if err != nil && !domain.IsCode(err, domain.CodeNotFound) {
			return nil, err
		}
	}
	stored := ""
	if u != nil {
		stored = u.PasswordHash
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, stored)
	if err != nil && domain.IsCode(err, domain.CodeUnavailable) {
		return nil, err
	}
	if err != nil || !ok {
		var uid *uuid.UUID
		if u != nil {
			uid = &u.ID
		}
		if uid != nil {
			s.event(ctx, domain.EventLoginFailed, meta, uid, nil, nil, nil)
		}
		return nil, bad
	}
	s.refund(ctx, ruleLoginAccount, norm)
	if rehash {
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if err := s.store.SetPasswordHash(ctx, u.ID, u.PasswordHash, h, s.clock.Now()); err == nil {
				u.PasswordHash = h
			}
		}
	}
	if err := s.checkVerified(u); err != nil {
		return nil, err
	}
	return s.openSession(ctx, u, nil, meta, domain.EventLoginSucceeded)
}

// checkVerified applies RequireVerifiedEmail. It runs after the password
// check, so it tells a guesser nothing.
func (s *Service) checkVerified(u *domain.User) error {
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return domain.Errorf(domain.CodeEmailNotVerified, "verify your email address before logging in")
	}
	return nil
}

// openSession stores a new session for u and returns its tokens; adjust,
// when given, sets what differs from a password login (the assurance of a
// passkey sign-in).
func (s *Service) openSession(ctx context.Context, u *domain.User, orgID *uuid.UUID, meta domain.RequestMeta, ev string, adjust ...func(*domain.Session)) (*TokenSet, error) {
	now := s.clock.Now()
	sess, rt, refresh, err := s.newSession(u, orgID, meta, now)
	if err != nil {
		return nil, err
	}
	for _, f := range adjust {
		f(sess)
	}
	if err := s.trimSessions(ctx, u.ID, meta, now); err != nil {
		return nil, err
	}
	if err := s.store.CreateSession(ctx, sess, rt); err != nil {
		return nil, err
	}
	if ev != "" {
		s.event(ctx, ev, meta, &u.ID, &sess.ID, nil, nil)
	}
	return s.tokenSet(u, sess, refresh, now)
}

func (s *Service) newSession(u *domain.User, orgID *uuid.UUID, meta domain.RequestMeta, now time.Time) (*domain.Session, *domain.RefreshToken, string, error) {
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, nil, "", err
	}
	abs := now.Add(s.cfg.SessionMaxTTL)
	idle := domain.IdleExpiry(now, s.cfg.RefreshIdleTTL, abs)
	sess := &domain.Session{ID: uuid.New(), UserID: u.ID, OrgID: orgID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: idle, AbsoluteExpiresAt: abs, UserAgent: truncate(meta.UserAgent, 512), IP: meta.IP, AAL: domain.AAL1}
	if u.PasswordHash != "" {
		sess.AMR = []string{domain.AMRPassword}
	}
	rt := &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash, CreatedAt: now}
	return sess, rt, refresh, nil
}

// tokenSet signs an access token for the session.
func (s *Service) tokenSet(u *domain.User, sess *domain.Session, refresh string, now time.Time) (*TokenSet, error) {
	exp := now.Add(s.cfg.AccessTTL)
	c := &token.Claims{}
	c.Subject = u.ID.String()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(exp)
	c.ID = uuid.NewString()
	c.SID = sess.ID.String()
	c.ClientID = s.cfg.ClientID
	// When the user last authenticated: the last second factor, else the
	// login (RFC 9470: resource servers apply their own max_age to it).
	c.AuthTime = jwt.NewNumericDate(sess.AuthTime())
	c.AAL, c.AMR = sessionAssurance(sess)
	if u.OrgID != nil {
		c.OrgID = u.OrgID.String()
		c.Ext = u.ExternalID
	}
	at, err := s.issuer.Sign(c)
	if err != nil {
		return nil, err
	}
	exp = c.ExpiresAt.Time.UTC()
	return &TokenSet{AccessToken: at, ExpiresAt: exp, ExpiresIn: int(exp.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh, Session: *sess, User: *u}, nil
}

// Refresh rotates a refresh token. Returns CodeInvalidGrant for an unknown,
// expired, revoked or reused token; a reuse outside the grace window also
// revokes the whole session and records a security event.
func (s *Service) Refresh(ctx context.Context, refresh string, meta domain.RequestMeta) (*TokenSet, error) {
	if err := s.allowIP(ctx, ruleRefreshIP, meta, nil); err != nil {
		return nil, err
	}
	raw, presented, err := hashRefreshToken(refresh)
	if err != nil {
		return nil, err
	}
	next, nextHash := successor(s.refreshSecret, raw)
	now := s.clock.Now()
	res, err := s.store.RotateRefreshToken(ctx, domain.RotateRequest{
		PresentedHash: presented[:], SuccessorHash: nextHash, Now: now,
		IdleTTL: s.cfg.RefreshIdleTTL, Grace: s.cfg.ReuseGrace,
	})
	if err != nil {
		if domain.IsCode(err, domain.CodeInvalidGrant) {
			s.metrics.Refresh("refused")
		}
		return nil, err
	}
	switch res.Outcome {
	case domain.Rotated:
		s.metrics.Refresh("rotated")
	case domain.Replayed:
		s.metrics.Refresh("replayed")
	case domain.ReuseDetected:
		s.metrics.Refresh("reuse_detected")
	}
	if res.Outcome == domain.ReuseDetected {
		// Revoked in the store; every instance drops it from its cache.
		s.forget(res.Session.ID)
		s.log.Warn("refresh token reuse detected; session revoked", "session_id", res.Session.ID, "user_id", res.Session.UserID)
		s.event(ctx, domain.EventRefreshReuseDetected, meta, &res.Session.UserID, &res.Session.ID, nil,
			map[string]any{"revoked_session_id": res.Session.ID.String()})
		return nil, domain.Errorf(domain.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	return s.tokenSet(&res.User, &res.Session, next, now)
}
