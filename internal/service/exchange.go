package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// ExchangeRequest narrows the access token that an API key is exchanged
// for. The zero value asks for the key's application scopes, the
// configured audience and the default lifetime.
type ExchangeRequest struct {
	// Scopes, when not nil, must be a subset of the key's. When nil, the
	// token gets the key's application scopes only: a built-in scope
	// (sessions:write, keys:write, ...) lets a token act on Latch itself, so
	// it is granted only when asked for by name.
	Scopes []string
	// Audience replaces the configured audience when not "". A token for
	// another audience is not accepted back by Latch.
	Audience string
	// ExpiresIn replaces the default lifetime (the access-token lifetime)
	// when positive; it is capped by ExchangeMaxTTL and the key's expiry.
	ExpiresIn time.Duration
}

// ErrScope is the cause (Err) of an exchange refused for its scopes: a
// malformed scope or one the key does not hold. The HTTP layer answers an
// RFC 6749 client invalid_scope for it.
var ErrScope = errors.New("service: scope refused")

// ErrAudience is the cause (Err) of an exchange refused for its audience;
// the HTTP layer answers an RFC 8693 client invalid_target for it.
var ErrAudience = errors.New("service: audience refused")

// ExchangedToken is an access token exchanged from an API key.
type ExchangedToken struct {
	AccessToken string
	ExpiresAt   time.Time
	ExpiresIn   int
	// Scope is the granted scopes, space-separated.
	Scope string
}

// ExchangeToken signs an access token for the API key that authenticated
// the principal. Its claims are sub (the key's user, or its organization's
// id), org_id for an organization key, scope, key_id, aud, and typ at+jwt.
// Returns CodeInsufficientPermissions when the principal is not an API key
// with token:exchange or asks for a scope the key does not hold,
// CodeInvalidRequest for a malformed scope, CodeInvalidToken when the key
// stopped being valid.
func (o *OAuth) ExchangeToken(ctx context.Context, p *domain.Principal, req ExchangeRequest) (*ExchangedToken, error) {
	if p.Kind != domain.PrincipalAPIKey || p.Exchanged {
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "only an API key can be exchanged for a token")
	}
	if !p.HasScope(domain.ScopeTokenExchange) {
		return nil, missingScope(domain.ScopeTokenExchange)
	}
	e, err := o.keys.keyByID(ctx, p.KeyID)
	if err != nil {
		return nil, err
	}
	now := o.clock.Now()
	if !e.active(now) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the API key is revoked or expired")
	}
	var scopes []string
	for _, sc := range e.scopes {
		if !domain.IsBuiltinScope(sc) {
			scopes = append(scopes, sc)
		}
	}
	if req.Scopes != nil {
		if scopes, err = narrowScopes(e.scopes, req.Scopes, "the API key"); err != nil {
			return nil, err
		}
	}
	return o.mintExchanged(ctx, e, scopes, req, now, nil, now)
}

// checkAudience refuses an audience that the key's organization has not
// registered: without the check any user could mint a Latch-signed token
// for any resource server's audience. A personal key may name only the
// configured audience. Returns CodeInsufficientPermissions.
func (o *OAuth) checkAudience(ctx context.Context, e *keyEntry, aud string) error {
	if aud == "" || aud == o.tokens.issuer.Config().Audience {
		return nil
	}
	if e.orgID == nil {
		return &domain.Error{Code: domain.CodeInsufficientPermissions, Message: "a personal API key cannot choose the audience of its tokens", Err: ErrAudience}
	}
	auds, err := o.store.OrgAudiences(ctx, *e.orgID)
	if err != nil {
		return err
	}
	if !slices.Contains(auds, aud) {
		return &domain.Error{Code: domain.CodeInsufficientPermissions, Message: fmt.Sprintf("the audience %q is not registered for this organization", aud), Err: ErrAudience}
	}
	return nil
}
