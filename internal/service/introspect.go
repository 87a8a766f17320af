package service

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// DefaultClientID is Config.ClientID when none is set: the client_id claim
// of user sessions' access tokens.
const DefaultClientID = "latch"

// OAuth is the OAuth endpoints' feature: the introspection (RFC 7662) and
// revocation (RFC 7009) of every kind of token, and token exchange (an API
// key, or a token exchanged from one, for a narrower access token; RFC
// 8693). It is safe for concurrent use.
type OAuth struct {
	clientID       string
	accessTTL      time.Duration
	exchangeMaxTTL time.Duration
	store          OAuthStore
	clock          domain.Clock
	tokens         *Tokens
	sessions       *Sessions
	keys           *KeyAuth
	// apiKeys revokes the API keys that RevokeToken is given.
	apiKeys *APIKeys
}

// NewOAuth returns the OAuth feature, made with the shared pieces.
func NewOAuth(sh Shared, store OAuthStore, apiKeys *APIKeys) *OAuth {
	return &OAuth{clientID: sh.Config.ClientID, accessTTL: sh.Config.AccessTTL, exchangeMaxTTL: sh.Config.APIKeys.ExchangeMaxTTL,
		store: store, clock: sh.Clock, tokens: sh.Tokens, sessions: sh.Sessions, keys: sh.Keys, apiKeys: apiKeys}
}

// What an introspected or revoked token is (Introspection.TokenUse).
const (
	TokenUseAccess  = "access_token"
	TokenUseRefresh = "refresh_token"
	TokenUseAPIKey  = "api_key"
)

// Introspection is the RFC 7662 answer about a token. When Active is false
// every other field is empty: nothing is revealed about an inactive token.
type Introspection struct {
	Active   bool
	TokenUse string
	Scope    string
	ClientID string
	Subject  string
	Issuer   string
	Audience []string
	JTI      string
	SID      string
	OrgID    string
	Ext      string
	// AAL and AMR are a session's assurance and methods: the access
	// token's claims, or the refresh token's session's (empty for API keys
	// and exchanged tokens).
	AAL string
	AMR []string
	// Actor is the act claim's sub of an impersonation token: the
	// operator acting as Subject.
	Actor    string
	Exp      *time.Time
	Iat      *time.Time
	AuthTime *time.Time
}

// owner is whose a token is, for the visibility rule of introspection.
type owner struct {
	user uuid.UUID
	org  *uuid.UUID
}

// Introspect answers what the token is and whether it is active (RFC 7662).
// The token may be an access token, a refresh token or an API key; it is
// recognised by its form. An access token is active while its signature
// and expiry are valid and its session (read from the store, not a cache,
// so a revocation anywhere counts at once) or its API key is active; a
// refresh token while it is neither spent nor revoked and its session is
// active; an API key while it is neither revoked nor expired.
//
// The caller sees a token as active only if it may (see visibleTo): an
// organization key its own organization's tokens, a personal key its own
// user's, an operator's personal key every token. Anything else is
// inactive, indistinguishable from an invalid token.
//
// Returns CodeInsufficientPermissions when the caller is not an API key
// with tokens:introspect, and only infrastructure errors otherwise.
func (o *OAuth) Introspect(ctx context.Context, caller *domain.Principal, tok string) (*Introspection, error) {
	if caller == nil || caller.Kind != domain.PrincipalAPIKey || caller.Exchanged || !caller.HasScope(domain.ScopeTokensIntrospect) {
		return nil, missingScope(domain.ScopeTokensIntrospect)
	}
	var in *Introspection
	var own owner
	var err error
	switch {
	case strings.HasPrefix(tok, "latch_"):
		in, own, err = o.introspectKey(ctx, tok)
	case strings.Count(tok, ".") == 2:
		in, own, err = o.introspectAccess(ctx, tok)
	default:
		in, own, err = o.introspectRefresh(ctx, tok)
	}
	if err != nil || in == nil {
		return &Introspection{}, err
	}
	ok, err := o.visibleTo(ctx, caller, own)
	if err != nil || !ok {
		return &Introspection{}, err
	}
	in.Active = true
	in.Issuer = o.tokens.issuer.Config().Issuer
	return in, nil
}

// visibleTo reports whether the caller may learn about a token of own: an
// organization key only about its organization's tokens, a personal key
// only about its user's, an operator's key about every token. Without the
// rule, any customer's key could probe other customers' users and sessions.
func (o *OAuth) visibleTo(ctx context.Context, caller *domain.Principal, own owner) (bool, error) {
	switch {
	case caller.OrgID != nil:
		if own.org != nil && *own.org == *caller.OrgID {
			return true, nil
		}
	case own.org == nil && own.user != uuid.Nil && own.user == caller.UserID:
		return true, nil
	}
	return o.keys.isOperatorKey(ctx, caller)
}

// introspectAccess returns the introspection of an active access token, or
// nil when it is not active. Only infrastructure failures are errors.
func (o *OAuth) introspectAccess(ctx context.Context, tok string) (*Introspection, owner, error) {
	c, err := o.tokens.issuer.VerifyAnyAudience(tok)
	if err != nil {
		return nil, owner{}, nil
	}
	in := accessIntrospection(c)
	if c.KeyID != "" {
		p, err := o.keys.authenticateExchanged(ctx, c)
		if err != nil {
			return nil, owner{}, infraOnly(err)
		}
		return in, owner{user: p.UserID, org: p.OrgID}, nil
	}
	sub, err1 := uuid.Parse(c.Subject)
	sid, err2 := uuid.Parse(c.SID)
	if err1 != nil || err2 != nil {
		return nil, owner{}, nil
	}
	sess, err := o.store.SessionByID(ctx, sid)
	if err != nil {
		return nil, owner{}, infraOnly(err)
	}
	if sess.UserID != sub || !sess.Active(o.clock.Now()) {
		return nil, owner{}, nil
	}
	if in.ClientID == "" {
		in.ClientID = o.clientID // a token signed before client_id existed
	}
	return in, owner{user: sess.UserID, org: sess.OrgID}, nil
}

func accessIntrospection(c *token.Claims) *Introspection {
	in := &Introspection{TokenUse: TokenUseAccess, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject,
		Audience: c.Audience, JTI: c.ID, SID: c.SID, OrgID: c.OrgID, Ext: c.Ext, AAL: c.AAL, AMR: c.AMR}
	if c.Act != nil {
		in.Actor = c.Act.Subject
	}
	if c.ExpiresAt != nil {
		in.Exp = &c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		in.Iat = &c.IssuedAt.Time
	}
	if c.AuthTime != nil {
		in.AuthTime = &c.AuthTime.Time
	}
	return in
}

// introspectRefresh returns the introspection of a live refresh token of
// an active session, or nil. Looking at it does not spend it.
func (o *OAuth) introspectRefresh(ctx context.Context, tok string) (*Introspection, owner, error) {
	sess, live, err := o.refreshSession(ctx, tok)
	if err != nil || sess == nil || !live || !sess.Active(o.clock.Now()) {
		return nil, owner{}, err
	}
	exp := sess.ExpiresAt
	if sess.AbsoluteExpiresAt.Before(exp) {
		exp = sess.AbsoluteExpiresAt
	}
	authTime := sess.AuthTime()
	in := &Introspection{TokenUse: TokenUseRefresh, ClientID: o.clientID, Subject: sess.UserID.String(),
		SID: sess.ID.String(), Exp: &exp, AuthTime: &authTime, AAL: sess.AAL, AMR: sess.AMR}
	if in.AAL == "" {
		in.AAL = domain.AAL1 // a session stored before multi-factor authentication
	}
	if sess.OrgID != nil {
		in.OrgID = sess.OrgID.String()
	}
	return in, owner{user: sess.UserID, org: sess.OrgID}, nil
}

// refreshSession returns the session of a refresh token and whether the
// token is live; a nil session for a token that is malformed or unknown.
func (o *OAuth) refreshSession(ctx context.Context, tok string) (*domain.Session, bool, error) {
	_, h, err := hashRefreshToken(tok)
	if err != nil {
		return nil, false, nil
	}
	sess, live, err := o.store.RefreshTokenSession(ctx, h[:])
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, false, nil
	}
	return sess, live, err
}

// introspectKey returns the introspection of an active API key, or nil (a
// personal key of a banned user is not active). It does not count as a use
// of the key.
func (o *OAuth) introspectKey(ctx context.Context, key string) (*Introspection, owner, error) {
	e, err := o.activeKey(ctx, key)
	if err != nil || e == nil {
		return nil, owner{}, err
	}
	if checkOwner(e, o.clock.Now()) != nil {
		return nil, owner{}, nil
	}
	created := e.createdAt
	in := &Introspection{TokenUse: TokenUseAPIKey, Scope: strings.Join(e.scopes, " "), ClientID: e.id.String(),
		Exp: e.expiresAt, Iat: &created}
	if e.orgID != nil {
		in.Subject, in.OrgID = e.orgID.String(), e.orgID.String()
	} else {
		in.Subject = e.userID.String()
	}
	return in, owner{user: e.userID, org: e.orgID}, nil
}

// activeKey returns the entry of an active API key, or nil for a key that
// is malformed, unknown, revoked or expired; only infrastructure failures
// are errors.
func (o *OAuth) activeKey(ctx context.Context, key string) (*keyEntry, error) {
	parsed, err := apikey.Parse(key)
	if err != nil {
		return nil, nil
	}
	e, err := o.keys.keyByHash(ctx, parsed.Hash)
	if err != nil {
		return nil, infraOnly(err)
	}
	if !e.active(o.clock.Now()) || (parsed.Kind == apikey.Organization) != (e.orgID != nil) {
		return nil, nil
	}
	return e, nil
}

// infraOnly drops the errors that only say a token is not valid, keeping
// the ones that say the store could not answer.
func infraOnly(err error) error {
	switch domain.ErrorCode(err) {
	case domain.CodeInvalidToken, domain.CodeTokenExpired, domain.CodeNotFound, domain.CodeInvalidGrant, domain.CodeUserBanned:
		return nil
	}
	return err
}

// RevokeToken revokes a token (RFC 7009). A refresh token or a session's
// access token ends its session: holding either is enough, since it could
// log the session out anyway. An API key is revoked when caller owns it
// (its user's session, or a key with keys:write of the same user or
// organization, as DELETE /api-keys/{id} needs). Unknown, expired and
// already revoked tokens are no error, so revoking is idempotent.
//
// callerErr is why the request's credentials did not authenticate, if they
// did not; it is returned only when the caller is needed (an API key).
// Returns CodeUnsupportedTokenType for an access token exchanged from an
// API key (it lives until it expires; revoke its key), CodeInvalidClient
// for an API key without a caller, CodeInsufficientPermissions for an API
// key the caller does not own.
func (o *OAuth) RevokeToken(ctx context.Context, caller *domain.Principal, callerErr error, tok string, meta domain.RequestMeta) error {
	switch {
	case strings.HasPrefix(tok, "latch_"):
		e, err := o.activeKey(ctx, tok)
		if err != nil || e == nil {
			return err
		}
		if caller == nil {
			if callerErr != nil && !domain.IsCode(callerErr, domain.CodeUnauthorized) {
				return callerErr
			}
			return domain.Errorf(domain.CodeInvalidClient, "revoking an API key needs its owner's credentials: a session, or an API key with %q", domain.ScopeKeysWrite)
		}
		if e.orgID != nil {
			err = o.apiKeys.RevokeOrgAPIKey(ctx, caller, *e.orgID, e.id, meta)
		} else {
			err = o.apiKeys.RevokeAPIKey(ctx, caller, e.id, meta)
		}
		if domain.IsCode(err, domain.CodeNotFound) {
			return domain.Errorf(domain.CodeInsufficientPermissions, "the API key belongs to someone else")
		}
		return err
	case strings.Count(tok, ".") == 2:
		c, err := o.tokens.issuer.VerifyAnyAudience(tok)
		if err != nil {
			return nil
		}
		if c.KeyID != "" {
			return domain.Errorf(domain.CodeUnsupportedTokenType, "an access token exchanged from an API key cannot be revoked by itself; it expires within %s; revoke its API key to end it now", o.exchangeMaxTTL)
		}
		sub, err1 := uuid.Parse(c.Subject)
		sid, err2 := uuid.Parse(c.SID)
		if err1 != nil || err2 != nil {
			return nil
		}
		return o.endSession(ctx, sub, sid, meta)
	default:
		sess, live, err := o.refreshSession(ctx, tok)
		if err != nil || sess == nil || !live {
			return err
		}
		return o.endSession(ctx, sess.UserID, sess.ID, meta)
	}
}

// endSession revokes the user's session for RevokeToken; a session that is
// already over is no error.
func (o *OAuth) endSession(ctx context.Context, userID, sid uuid.UUID, meta domain.RequestMeta) error {
	err := o.sessions.revoke(ctx, meta, nil, map[string]any{"reason": "oauth_revoke"}, func(now time.Time) (uuid.UUID, []uuid.UUID, error) {
		return userID, []uuid.UUID{sid}, o.store.RevokeSession(ctx, userID, sid, now)
	})
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil
	}
	return err
}

// UserInfo returns the user of a session for the OIDC userinfo endpoint.
// Returns CodeInvalidToken for anything but a user's session.
func (s *Service) UserInfo(ctx context.Context, p *domain.Principal) (*domain.User, error) {
	if p.Kind != domain.PrincipalSession {
		return nil, domain.Errorf(domain.CodeInvalidToken, "userinfo needs a user session's access token")
	}
	return s.Me(ctx, p)
}
