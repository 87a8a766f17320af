package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// ExchangeToken exchanges an API key for a short-lived access token. It
// speaks two dialects on one operation:
//
//   - JSON (or no body): the key comes in X-API-Key (or HTTP Basic), and
//     errors are Latch's own (403 insufficient_permissions for a scope the
//     key does not hold).
//   - RFC 6749 form-encoded grant_type=client_credentials: the key comes in
//     HTTP Basic, X-API-Key or the form's client_secret, and errors use the
//     RFC's codes (invalid_client, unsupported_grant_type, invalid_scope) in
//     the same Error body, with error_description.
//
// The operation's security is [apiKeyAuth] OR [basicAuth] OR {}, so the
// validator lets a request without header credentials through: the handler
// authenticates the form's client_secret itself, and answers 401
// invalid_client when there is no credential at all.
func (s *Server) ExchangeToken(ctx context.Context, req api.ExchangeTokenRequestObject) (api.ExchangeTokenResponseObject, error) {
	st := stateFrom(ctx)
	p := st.principal
	form := req.FormdataBody != nil
	var sreq service.ExchangeRequest
	if form {
		f := req.FormdataBody
		if f.GrantType == api.UrnIetfParamsOauthGrantTypeTokenExchange {
			return s.tokenExchange(ctx, f)
		}
		if f.GrantType == api.AuthorizationCode {
			return s.codeGrant(ctx, f)
		}
		if f.GrantType != api.ClientCredentials {
			return nil, domain.Errorf(domain.CodeUnsupportedGrantType, "grant_type must be client_credentials, authorization_code or urn:ietf:params:oauth:grant-type:token-exchange")
		}
		if p == nil {
			var err error
			if p, err = s.formClient(ctx, st.authErr, f.ClientSecret); err != nil {
				return nil, err
			}
		}
		if f.Scope != nil && strings.TrimSpace(*f.Scope) != "" {
			sreq.Scopes = strings.Fields(*f.Scope)
		}
		if f.Audience != nil {
			sreq.Audience = *f.Audience
		}
	} else {
		if p == nil {
			if st.authErr != nil && !domain.IsCode(st.authErr, domain.CodeUnauthorized) {
				return nil, st.authErr
			}
			return nil, domain.Errorf(domain.CodeInvalidClient, "an API key with the scope %q is required", domain.ScopeTokenExchange)
		}
		if b := req.JSONBody; b != nil {
			if b.Scopes != nil {
				sreq.Scopes = *b.Scopes
			}
			if b.Audience != nil {
				sreq.Audience = *b.Audience
			}
			if b.ExpiresIn != nil {
				sreq.ExpiresIn = time.Duration(*b.ExpiresIn) * time.Second
			}
		}
	}
	tok, err := s.oauth.ExchangeToken(ctx, p, sreq)
	if err != nil {
		if form && errors.Is(err, service.ErrScope) {
			return nil, &domain.Error{Code: domain.CodeInvalidScope, Message: domain.ErrorMessage(err), Err: err}
		}
		return nil, err
	}
	out := api.ExchangeResponse{
		AccessToken: tok.AccessToken, TokenType: api.ExchangeResponseTokenTypeBearer,
		ExpiresIn: tok.ExpiresIn, ExpiresAt: tok.ExpiresAt, Scope: tok.Scope,
	}
	return api.ExchangeToken200JSONResponse(out), nil
}

// formClient authenticates an RFC 6749 client by the form's client_secret
// when no header credential did. A header credential that was present but
// wrong wins over the form, and every failure to authenticate is
// invalid_client.
func (s *Server) formClient(ctx context.Context, authErr error, secret *string) (*domain.Principal, error) {
	if authErr != nil && !domain.IsCode(authErr, domain.CodeUnauthorized) {
		if domain.IsCode(authErr, domain.CodeInvalidToken) {
			return nil, &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: authErr}
		}
		return nil, authErr
	}
	if secret == nil || *secret == "" {
		return nil, domain.Errorf(domain.CodeInvalidClient, "client authentication failed: send the API key as client_secret or with HTTP Basic")
	}
	p, err := s.apiKeys.AuthenticateAPIKey(ctx, *secret)
	if domain.IsCode(err, domain.CodeInvalidToken) {
		return nil, &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: err}
	}
	return p, err
}

// Token types of RFC 8693 that /auth/token exchanges.
const (
	tokenTypeAccessToken = string(api.TokenTypeUrnIetfParamsOauthTokenTypeAccessToken)
	tokenTypeAPIKey      = string(api.TokenTypeUrnLatchParamsOauthTokenTypeApiKey)
)

// tokenExchange answers RFC 8693 token exchange. The subject token is the
// credential: an API key (exchanged as by client_credentials) or an access
// token exchanged from one (narrowed: see service.ExchangeAccessToken).
// Client authentication is optional, since the subject token proves the
// right to it; credentials that were sent and are wrong are still refused
// (invalid_client). An invalid subject token is invalid_request, as RFC
// 8693 2.2.2 says; an unregistered audience is invalid_target; a scope the
// subject does not hold is invalid_scope.
func (s *Server) tokenExchange(ctx context.Context, f *api.TokenRequest) (api.ExchangeTokenResponseObject, error) {
	st := stateFrom(ctx)
	if st.principal == nil && (domain.IsCode(st.authErr, domain.CodeInvalidToken) || domain.IsCode(st.authErr, domain.CodeInvalidClient)) {
		return nil, &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: st.authErr}
	}
	if f.SubjectToken == nil || *f.SubjectToken == "" || f.SubjectTokenType == nil {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "token exchange needs subject_token and subject_token_type")
	}
	var sreq service.ExchangeRequest
	if f.Scope != nil && strings.TrimSpace(*f.Scope) != "" {
		sreq.Scopes = strings.Fields(*f.Scope)
	}
	switch {
	case f.Audience != nil && f.Resource != nil && *f.Audience != *f.Resource:
		return nil, domain.Errorf(domain.CodeInvalidTarget, "audience and resource name different targets; send one")
	case f.Audience != nil:
		sreq.Audience = *f.Audience
	case f.Resource != nil:
		sreq.Audience = *f.Resource
	}
	var tok *service.ExchangedToken
	var err error
	switch string(*f.SubjectTokenType) {
	case tokenTypeAPIKey:
		var p *domain.Principal
		p, err = s.apiKeys.AuthenticateAPIKey(ctx, *f.SubjectToken)
		if domain.IsCode(err, domain.CodeInvalidToken) {
			return nil, &domain.Error{Code: domain.CodeInvalidRequest, Message: "the subject_token is not an active API key", Err: err}
		}
		if err == nil {
			tok, err = s.oauth.ExchangeToken(ctx, p, sreq)
		}
	case tokenTypeAccessToken:
		tok, err = s.oauth.ExchangeAccessToken(ctx, *f.SubjectToken, sreq)
	}
	switch {
	case errors.Is(err, service.ErrScope):
		return nil, &domain.Error{Code: domain.CodeInvalidScope, Message: domain.ErrorMessage(err), Err: err}
	case errors.Is(err, service.ErrAudience):
		return nil, &domain.Error{Code: domain.CodeInvalidTarget, Message: domain.ErrorMessage(err), Err: err}
	case err != nil:
		return nil, err
	}
	issued := api.ExchangeResponseIssuedTokenTypeUrnIetfParamsOauthTokenTypeAccessToken
	return api.ExchangeToken200JSONResponse(api.ExchangeResponse{
		AccessToken: tok.AccessToken, TokenType: api.ExchangeResponseTokenTypeBearer,
		ExpiresIn: tok.ExpiresIn, ExpiresAt: tok.ExpiresAt, Scope: tok.Scope, IssuedTokenType: &issued,
	}), nil
}
