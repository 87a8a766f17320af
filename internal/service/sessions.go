package service

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// AuthenticateBearer verifies an access token and returns its principal.
// A session token is accepted only while its session is active: revocation
// on this instance takes effect at once, elsewhere within SessionCacheTTL.
// Returns CodeTokenExpired or CodeInvalidToken.
func (s *Service) AuthenticateBearer(ctx context.Context, tok string) (*domain.Principal, error) {
	c, err := s.tokens.verifyAccess(tok)
	if errors.Is(err, token.ErrUnknownKey) && s.reloadForUnknownKey(ctx) {
		c, err = s.tokens.verifyAccess(tok)
	}
	if err != nil {
		return nil, err
	}
	if c.KeyID != "" {
		return s.keys.authenticateExchanged(ctx, c)
	}
	sub, err1 := uuid.Parse(c.Subject)
	sid, err2 := uuid.Parse(c.SID)
	if err1 != nil || err2 != nil {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is invalid")
	}
	e, err := s.sessions.entry(ctx, sid)
	if err != nil {
		return nil, err
	}
	if e.UserID != sub || !e.Active(s.clock.Now()) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the session has ended")
	}
	p := &domain.Principal{Kind: domain.PrincipalSession, UserID: sub, SessionID: sid, OrgID: e.OrgID, AAL: c.AAL, AMR: c.AMR}
	// An impersonation token names its operator, exactly as its session
	// does; any other token names none.
	if e.ActorID != nil || c.Act != nil {
		if e.ActorID == nil || c.Act == nil || c.Act.Subject != e.ActorID.String() {
			return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is invalid")
		}
		actor := *e.ActorID
		p.ActorID, p.AAL = &actor, domain.AAL1
	}
	if c.AuthTime != nil {
		p.AuthTime = c.AuthTime.Time
	}
	return p, nil
}

// Me returns the principal's user. Returns CodeNotFound for an organization
// key, which has no user.
func (s *Service) Me(ctx context.Context, p *domain.Principal) (*domain.User, error) {
	if p.UserID == uuid.Nil {
		return nil, domain.Errorf(domain.CodeNotFound, "an organization key has no user")
	}
	return s.sessions.user(ctx, p.UserID)
}

// Logout scopes.
const (
	LogoutLocal  = "local"
	LogoutOthers = "others"
	LogoutGlobal = "global"
)

// Logout revokes the principal's session (local), every other session of
// the user (others) or all of them (global); a global logout with
// revokeKeys also revokes every personal API key of the user. Returns
// CodeInvalidRequest for another scope, or for revokeKeys with a scope other
// than global.
func (s *Service) Logout(ctx context.Context, p *domain.Principal, scope string, revokeKeys bool, meta domain.RequestMeta) error {
	if revokeKeys && scope != LogoutGlobal {
		return domain.Errorf(domain.CodeInvalidRequest, "revoke_api_keys needs scope=global")
	}
	now := s.clock.Now()
	var ids []uuid.UUID
	var err error
	switch scope {
	case "", LogoutLocal:
		err = s.store.RevokeSession(ctx, p.UserID, p.SessionID, now)
		if domain.IsCode(err, domain.CodeNotFound) {
			err = nil // already gone: logging out twice is not an error
		}
		ids = []uuid.UUID{p.SessionID}
	case LogoutOthers:
		ids, err = s.store.RevokeUserSessions(ctx, p.UserID, p.SessionID, now)
	case LogoutGlobal:
		ids, err = s.store.RevokeUserSessions(ctx, p.UserID, uuid.Nil, now)
	default:
		return domain.Errorf(domain.CodeInvalidRequest, "scope must be local, others or global")
	}
	s.sessions.forget(ids...)
	if err != nil {
		return err
	}
	detail := map[string]any{"scope": scopeOr(scope), "revoked": len(ids)}
	if revokeKeys {
		keys, err := s.store.RevokeUserAPIKeys(ctx, p.UserID, now)
		for i := range keys {
			s.keys.forgetKey(&keys[i])
		}
		if err != nil {
			return err
		}
		detail["revoked_api_keys"] = len(keys)
	}
	s.events.record(ctx, domain.EventLogout, meta, &p.UserID, &p.SessionID, nil, detail)
	return nil
}

func scopeOr(s string) string {
	if s == "" {
		return LogoutLocal
	}
	return s
}

// ListSessions returns a page of the user's active sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, p *domain.Principal, page PageRequest) ([]domain.Session, *domain.Cursor, error) {
	now := s.clock.Now()
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Session, error) {
		return s.store.ListSessions(ctx, p.UserID, now, after, limit)
	}, sessionPos)
}

func sessionPos(x *domain.Session) domain.Cursor {
	return domain.Cursor{CreatedAt: x.CreatedAt, ID: x.ID}
}

// GetSession returns one of the user's active sessions. Returns CodeNotFound
// for a session that is not the caller's or no longer active.
func (s *Service) GetSession(ctx context.Context, p *domain.Principal, id uuid.UUID) (*domain.Session, error) {
	sess, err := s.store.SessionByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.UserID != p.UserID || !sess.Active(s.clock.Now()) {
		return nil, domain.Errorf(domain.CodeNotFound, "session not found")
	}
	return sess, nil
}

// RevokeSession revokes one of the user's sessions. Returns CodeNotFound for
// a session that is not the caller's.
func (s *Service) RevokeSession(ctx context.Context, p *domain.Principal, id uuid.UUID, meta domain.RequestMeta) error {
	return s.sessions.revoke(ctx, meta, nil, nil, func(now time.Time) (uuid.UUID, []uuid.UUID, error) {
		return p.UserID, []uuid.UUID{id}, s.store.RevokeSession(ctx, p.UserID, id, now)
	})
}

// RenewSession extends one of the user's sessions by the idle lifetime, up
// to its absolute lifetime. An organization key (or a token exchanged from
// one) renews the organization's delegated sessions. Returns CodeNotFound
// for a session that is not the caller's or no longer active.
func (s *Service) RenewSession(ctx context.Context, p *domain.Principal, id uuid.UUID) (*domain.Session, error) {
	userID := p.UserID
	if p.Kind == domain.PrincipalAPIKey && p.OrgID != nil {
		sess, err := s.store.SessionByID(ctx, id)
		if err != nil && !domain.IsCode(err, domain.CodeNotFound) {
			return nil, err
		}
		if err != nil || sess.OrgID == nil || *sess.OrgID != *p.OrgID {
			return nil, domain.Errorf(domain.CodeNotFound, "session not found")
		}
		userID = sess.UserID
	}
	sess, err := s.store.RenewSession(ctx, userID, id, s.clock.Now(), s.cfg.RefreshIdleTTL)
	if err != nil {
		return nil, err
	}
	s.sessions.forget(id)
	return sess, nil
}

// KeyAuth.authenticateExchanged (keyauth.go) accepts the bearer tokens
// exchanged from API keys; APIKeys.AuthenticateAPIKey the keys.
