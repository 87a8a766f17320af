package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
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

// Signup creates a password account and opens its first session (none while
// RequireVerifiedEmail is on: the result is Pending). Returns
// CodeInvalidRequest for a bad email, CodeWeakPassword for a password the
// policy refuses, CodeEmailTaken when the email is in use, CodeRateLimited.
func (s *Service) Signup(ctx context.Context, email, pw string, meta domain.RequestMeta) (*TokenSet, error) {
	if err := s.limits.allowIP(ctx, ruleSignupIP, meta, nil); err != nil {
		return nil, err
	}
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := s.shared.SSO.Check(ctx, email); err != nil {
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
		s.events.record(ctx, domain.EventSignup, meta, &u.ID, nil, nil, map[string]any{"verification_required": true})
		return &TokenSet{User: *u, Pending: true}, nil
	}
	sess, rt, refresh, err := s.sessions.newSession(u, nil, meta, now)
	if err != nil {
		return nil, err
	}
	// With mail on, the verification token and its mail are stored in the
	// same transaction as the user.
	if err := s.createUser(ctx, u, sess, rt, now); err != nil {
		return nil, err
	}
	s.events.record(ctx, domain.EventSignup, meta, &u.ID, &sess.ID, nil, nil)
	return s.sessions.tokenSet(u, sess, refresh, now)
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
	if err := s.limits.allowIP(ctx, ruleLoginIP, meta, nil); err != nil {
		return nil, err
	}
	if err := s.limits.allow(ctx, ruleLoginAccount, norm, meta, nil); err != nil {
		return nil, err
	}
	if err == nil {
		// Told before the password is checked: it depends on the address's
		// domain only, never on whether an account exists.
		if err := s.shared.SSO.Check(ctx, norm); err != nil {
			return nil, err
		}
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
			s.events.record(ctx, domain.EventLoginFailed, meta, uid, nil, nil, nil)
		}
		return nil, bad
	}
	s.limits.refund(ctx, ruleLoginAccount, norm)
	if rehash {
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if err := s.store.SetPasswordHash(ctx, u.ID, u.PasswordHash, h, s.clock.Now()); err == nil {
				u.PasswordHash = h
			}
		}
	}
	if err := s.sessions.checkVerified(u); err != nil {
		return nil, err
	}
	return s.sessions.open(ctx, u, nil, meta, domain.EventLoginSucceeded)
}

// Refresh rotates a refresh token. Returns CodeInvalidGrant for an unknown,
// expired, revoked or reused token; a reuse outside the grace window also
// revokes the whole session and records a security event.
func (s *Service) Refresh(ctx context.Context, refresh string, meta domain.RequestMeta) (*TokenSet, error) {
	if err := s.limits.allowIP(ctx, ruleRefreshIP, meta, nil); err != nil {
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
		s.sessions.forget(res.Session.ID)
		s.log.Warn("refresh token reuse detected; session revoked", "session_id", res.Session.ID, "user_id", res.Session.UserID)
		s.events.record(ctx, domain.EventRefreshReuseDetected, meta, &res.Session.UserID, &res.Session.ID, nil,
			map[string]any{"revoked_session_id": res.Session.ID.String()})
		return nil, domain.Errorf(domain.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	return s.sessions.tokenSet(&res.User, &res.Session, next, now)
}
