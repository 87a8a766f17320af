package service

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/latchauth/latch/claims"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// Sessions is what every feature that signs someone in or out shares:
// opening a session and signing its tokens, revoking sessions (one way:
// revoke), and the caches of the sessions that access tokens name and of
// the users that requests read, both for Config.SessionCacheTTL. A change
// here leaves this instance's caches at once and the other instances'
// through the notifier.
type Sessions struct {
	cfg     Config
	store   sessionStore
	tokens  *Tokens
	events  *EventLog
	changes *changes
	metrics Metrics
	clock   domain.Clock
	// cache holds the active sessions that access tokens name (see
	// cachedSession), users the users GET /auth/me reads.
	cache *guardedCache[uuid.UUID, *domain.Session]
	users *guardedCache[uuid.UUID, domain.User]
}

// sessionStore is what Sessions needs of the store.
type sessionStore interface {
	SessionByID(ctx context.Context, id uuid.UUID) (*domain.Session, error)
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
	CreateSession(ctx context.Context, s *domain.Session, rt *domain.RefreshToken) error
	CountActiveSessions(ctx context.Context, userID uuid.UUID, now time.Time) (int, error)
	TrimSessions(ctx context.Context, userID uuid.UUID, keep int, now time.Time) ([]uuid.UUID, error)
}

// revoke is the one way sessions are revoked on request: end is the store
// call that revokes them (in its own transaction, at now) and returns whose
// they are and their ids; revoke then drops them from every instance's
// cache, also when end failed (part of it may have committed), and, when it
// succeeded, records a session_revoked event per session with keyID (the
// API key that asked, if any) and detail. Returns end's error.
//
// Sessions that a larger change revokes in the store (a logout's scope, a
// password change, a detected reuse, a second factor's enrolment) record
// that change's one event instead; they only leave the caches (forget).
func (ss *Sessions) revoke(ctx context.Context, meta domain.RequestMeta, keyID *uuid.UUID, detail map[string]any,
	end func(now time.Time) (userID uuid.UUID, ids []uuid.UUID, err error)) error {
	userID, ids, err := end(ss.clock.Now())
	ss.forget(ids...)
	if err != nil {
		return err
	}
	for i := range ids {
		ss.events.record(ctx, domain.EventSessionRevoked, meta, &userID, &ids[i], keyID, detail)
	}
	return nil
}

// user returns the user through the user cache.
func (ss *Sessions) user(ctx context.Context, id uuid.UUID) (*domain.User, error) {
	if u, ok := ss.users.Get(id); ok {
		return &u, nil
	}
	gen := ss.users.Generation()
	u, err := ss.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ss.users.Fill(gen, u.ID, *u)
	return u, nil
}

// entry returns the cached state of a session that was not revoked when it
// was read: what authentication needs of it (see cachedSession); the caller
// applies domain.Session.Active. The result is shared and must not be
// changed. Returns CodeInvalidToken when the session
// is unknown or revoked.
func (ss *Sessions) entry(ctx context.Context, sid uuid.UUID) (*domain.Session, error) {
	if e, ok := ss.cache.Get(sid); ok {
		ss.metrics.Cache("session", true)
		return e, nil
	}
	ss.metrics.Cache("session", false)
	gen := ss.cache.Generation()
	sess, err := ss.store.SessionByID(ctx, sid)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeInvalidToken, "the session has ended")
		}
		return nil, err
	}
	if sess.RevokedAt != nil {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the session has ended")
	}
	e := cachedSession(sess)
	ss.cache.Fill(gen, sid, e)
	return e, nil
}

// forget drops sessions from the cache after they were revoked (or
// changed) here, stops reads already under way from caching what they read
// before, and tells the other instances.
func (ss *Sessions) forget(ids ...uuid.UUID) {
	ss.cache.Forget(ids...)
	for _, id := range ids {
		ss.changes.publish(TopicSession, id.String())
	}
}

// userChanged drops the users from this instance's user cache at once and
// tells the other instances, which drop them too.
func (ss *Sessions) userChanged(ids ...uuid.UUID) {
	ss.users.Forget(ids...)
	for _, id := range ids {
		ss.changes.publish(TopicUser, id.String())
	}
}

// trim makes room for one more session of the user under
// Quotas.Sessions by ending the oldest ones, as Keycloak does by default: a
// quota must not lock the account's owner out.
func (ss *Sessions) trim(ctx context.Context, userID uuid.UUID, meta domain.RequestMeta, now time.Time) error {
	max := ss.cfg.Quotas.Sessions
	if max <= 0 {
		return nil
	}
	n, err := ss.store.CountActiveSessions(ctx, userID, now)
	if err != nil || n < max {
		return err
	}
	return ss.revoke(ctx, meta, nil, map[string]any{"reason": "session_quota"}, func(now time.Time) (uuid.UUID, []uuid.UUID, error) {
		ids, err := ss.store.TrimSessions(ctx, userID, max-1, now)
		return userID, ids, err
	})
}

// checkVerified applies RequireVerifiedEmail. It runs after the password
// check, so it tells a guesser nothing.
func (ss *Sessions) checkVerified(u *domain.User) error {
	if ss.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return domain.Errorf(domain.CodeEmailNotVerified, "verify your email address before logging in")
	}
	return nil
}

// open stores a new session for u and returns its tokens; adjust,
// when given, sets what differs from a password login (the assurance of a
// passkey sign-in, an impersonation). An impersonation session (one that
// adjust gave an ActorID) gets no refresh token and is not held to the
// session quota.
func (ss *Sessions) open(ctx context.Context, u *domain.User, orgID *uuid.UUID, meta domain.RequestMeta, ev string, adjust ...func(*domain.Session)) (*TokenSet, error) {
	now := ss.clock.Now()
	if u.Banned(now) {
		return nil, domain.ErrBanned()
	}
	sess, rt, refresh, err := ss.newSession(u, orgID, meta, now)
	if err != nil {
		return nil, err
	}
	for _, f := range adjust {
		f(sess)
	}
	if sess.ActorID != nil {
		// An impersonation is never refreshed, and never ends one of the
		// user's own sessions to make room under the quota: it lasts
		// minutes, and only operators open one.
		rt, refresh = nil, ""
	} else if err := ss.trim(ctx, u.ID, meta, now); err != nil {
		return nil, err
	}
	if err := ss.store.CreateSession(ctx, sess, rt); err != nil {
		return nil, err
	}
	if ev != "" {
		ss.events.record(ctx, ev, meta, &u.ID, &sess.ID, nil, nil)
	}
	return ss.tokenSet(u, sess, refresh, now)
}

func (ss *Sessions) newSession(u *domain.User, orgID *uuid.UUID, meta domain.RequestMeta, now time.Time) (*domain.Session, *domain.RefreshToken, string, error) {
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, nil, "", err
	}
	abs := now.Add(ss.cfg.SessionMaxTTL)
	idle := domain.IdleExpiry(now, ss.cfg.RefreshIdleTTL, abs)
	sess := &domain.Session{ID: uuid.New(), UserID: u.ID, OrgID: orgID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: idle, AbsoluteExpiresAt: abs, UserAgent: truncate(meta.UserAgent, 512), IP: meta.IP, AAL: domain.AAL1}
	if u.PasswordHash != "" {
		sess.AMR = []string{domain.AMRPassword}
	}
	rt := &domain.RefreshToken{ID: uuid.New(), SessionID: sess.ID, Hash: hash, CreatedAt: now}
	return sess, rt, refresh, nil
}

// tokenSet signs an access token for the session, with the user's
// app_metadata as the app_metadata claim. It is the one place every
// session token is signed (signup, login, refresh, second factors,
// delegated and passkey sessions), so it refuses a banned user with
// CodeUserBanned. An impersonation session's token names its operator in
// act and never outlives it.
func (ss *Sessions) tokenSet(u *domain.User, sess *domain.Session, refresh string, now time.Time) (*TokenSet, error) {
	if u.Banned(now) {
		return nil, domain.ErrBanned()
	}
	exp := now.Add(ss.cfg.AccessTTL)
	c := &token.Claims{}
	if sess.ActorID != nil {
		if exp.After(sess.AbsoluteExpiresAt) {
			exp = sess.AbsoluteExpiresAt
		}
		c.Act = &claims.Actor{Subject: sess.ActorID.String()}
	}
	c.Subject = u.ID.String()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(exp)
	c.ID = uuid.NewString()
	c.SID = sess.ID.String()
	c.ClientID = ss.cfg.ClientID
	// When the user last authenticated: the last second factor, else the
	// login (RFC 9470: resource servers apply their own max_age to it).
	c.AuthTime = jwt.NewNumericDate(sess.AuthTime())
	c.AAL, c.AMR = sessionAssurance(sess)
	if u.OrgID != nil {
		c.OrgID = u.OrgID.String()
		c.Ext = u.ExternalID
	}
	if len(u.AppMetadata) > 0 {
		c.AppMetadata = u.AppMetadata
	}
	at, err := ss.tokens.sign(c)
	if err != nil {
		return nil, err
	}
	exp = c.ExpiresAt.Time.UTC()
	return &TokenSet{AccessToken: at, ExpiresAt: exp, ExpiresIn: int(exp.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh, Session: *sess, User: *u}, nil
}

// cachedSession is what the session cache keeps of a session read from the
// store: only what authentication needs (its user, organization,
// expiries and impersonating operator), so that an entry stays small; the cached value is never
// changed, so a cache hit copies nothing.
func cachedSession(s *domain.Session) *domain.Session {
	return &domain.Session{ID: s.ID, UserID: s.UserID, OrgID: s.OrgID, ExpiresAt: s.ExpiresAt, AbsoluteExpiresAt: s.AbsoluteExpiresAt,
		ActorID: s.ActorID}
}
