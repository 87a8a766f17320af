package service

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// narrowScopes checks that every asked scope is well formed and among held
// (what holder holds), and returns them sorted and unique. Returns
// CodeInvalidRequest for a malformed scope and CodeInsufficientPermissions
// for one not held, both with ErrScope as the cause.
func narrowScopes(held, asked []string, holder string) ([]string, error) {
	out := make([]string, 0, len(asked))
	for _, sc := range asked {
		if err := domain.CheckScope(sc); err != nil {
			return nil, &domain.Error{Code: domain.CodeInvalidRequest, Message: domain.ErrorMessage(err), Err: ErrScope}
		}
		if !slices.Contains(held, sc) {
			return nil, &domain.Error{Code: domain.CodeInsufficientPermissions,
				Message: holder + " does not hold the scope \"" + sc + "\"", Err: ErrScope}
		}
		out = append(out, sc)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// mintExchanged signs an access token for the API key e with the scopes
// (already checked against the key), the audience and lifetime req asks
// for. The lifetime is capped by ExchangeMaxTTL, the key's expiry and
// notAfter when set (the expiry of the token being exchanged). authTime is
// the auth_time claim.
func (o *OAuth) mintExchanged(ctx context.Context, e *keyEntry, scopes []string, req ExchangeRequest, now time.Time, notAfter *time.Time, authTime time.Time) (*ExchangedToken, error) {
	ttl := o.accessTTL
	if req.ExpiresIn > 0 {
		ttl = req.ExpiresIn
	}
	ttl = min(ttl, o.exchangeMaxTTL)
	exp := now.Add(ttl)
	if e.expiresAt != nil && e.expiresAt.Before(exp) {
		exp = *e.expiresAt
	}
	if notAfter != nil && notAfter.Before(exp) {
		exp = *notAfter
	}
	if len(req.Audience) > 255 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "audience must be at most 255 bytes")
	}
	if err := o.checkAudience(ctx, e, req.Audience); err != nil {
		return nil, err
	}
	c := &token.Claims{}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(exp)
	c.ID = uuid.NewString()
	c.Scope = strings.Join(scopes, " ")
	c.KeyID = e.id.String()
	c.ClientID = e.id.String()
	c.AuthTime = jwt.NewNumericDate(authTime)
	if e.orgID != nil {
		// An organization key acts as the organization's service identity,
		// whose subject is the organization id.
		c.Subject = e.orgID.String()
		c.OrgID = e.orgID.String()
	} else {
		c.Subject = e.userID.String()
	}
	if req.Audience != "" {
		c.Audience = jwt.ClaimStrings{req.Audience}
	}
	at, err := o.tokens.sign(c)
	if err != nil {
		return nil, err
	}
	exp = c.ExpiresAt.Time.UTC()
	return &ExchangedToken{AccessToken: at, ExpiresAt: exp, ExpiresIn: max(0, int(exp.Sub(now).Round(time.Second)/time.Second)), Scope: c.Scope}, nil
}

// ExchangeAccessToken exchanges an access token that was itself exchanged
// from an API key (RFC 8693 with subject_token_type access_token) for a
// narrower one: its scopes a subset of the presented token's (by default
// the same), an audience the key may name (see checkAudience), and an
// expiry never later than the presented token's. The key must still be
// active and hold token:exchange. A session's access token cannot be
// exchanged: inside Latch it holds every built-in scope, and a narrowed
// session token would need a second scope model.
//
// Returns CodeInvalidRequest for a subject token that is invalid, expired or
// whose key is no longer active (RFC 8693 2.2.2 answer for a bad
// subject_token), CodeInvalidRequest for a session token or a malformed
// scope, CodeInsufficientPermissions (cause ErrScope or ErrAudience) for a
// wider scope or an unregistered audience.
func (o *OAuth) ExchangeAccessToken(ctx context.Context, subject string, req ExchangeRequest) (*ExchangedToken, error) {
	bad := func(err error) error {
		return &domain.Error{Code: domain.CodeInvalidRequest, Message: "the subject_token is invalid, expired or revoked", Err: err}
	}
	c, err := o.tokens.verifyAccess(subject)
	if err != nil {
		if domain.IsCode(err, domain.CodeInvalidToken) || domain.IsCode(err, domain.CodeTokenExpired) {
			return nil, bad(err)
		}
		return nil, err
	}
	if c.KeyID == "" {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "a session's access token cannot be exchanged; exchange an API key (subject_token_type urn:latch:params:oauth:token-type:api_key)")
	}
	p, err := o.keys.authenticateExchanged(ctx, c)
	if err != nil {
		if domain.IsCode(err, domain.CodeInvalidToken) {
			return nil, bad(err)
		}
		return nil, err
	}
	e, err := o.keys.keyByID(ctx, p.KeyID)
	if err != nil {
		if domain.IsCode(err, domain.CodeInvalidToken) {
			return nil, bad(err)
		}
		return nil, err
	}
	if !slices.Contains(e.scopes, domain.ScopeTokenExchange) {
		return nil, missingScope(domain.ScopeTokenExchange)
	}
	scopes := p.Scopes
	if req.Scopes != nil {
		if scopes, err = narrowScopes(p.Scopes, req.Scopes, "the subject token"); err != nil {
			return nil, err
		}
	}
	authTime := o.clock.Now()
	if c.AuthTime != nil {
		authTime = c.AuthTime.Time
	}
	return o.mintExchanged(ctx, e, scopes, req, o.clock.Now(), p.ExpiresAt, authTime)
}
