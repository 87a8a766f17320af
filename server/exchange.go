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
		if f.GrantType != "client_credentials" {
			return nil, domain.Errorf(domain.CodeUnsupportedGrantType, "grant_type must be client_credentials")
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
	tok, err := s.svc.ExchangeToken(ctx, p, sreq)
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
	if body, ok := exchangeBody(out); ok {
		return exchangeResponse{body}, nil
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
	p, err := s.svc.AuthenticateAPIKey(ctx, *secret)
	if domain.IsCode(err, domain.CodeInvalidToken) {
		return nil, &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: err}
	}
	return p, err
}
