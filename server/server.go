// Package server implements the strict server interface generated from
// openapi.yaml over the service, and wires the HTTP handler: request
// validation and security from the spec, errors in the one Error body.
package server

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// Server implements api.StrictServerInterface.
type Server struct {
	svc     *service.Service
	log     *slog.Logger
	version string
	spec    Spec
	// publicURL is the base of the endpoints in the discovery documents.
	publicURL string
	// mfa is multi-factor authentication; nil answers its operations 404
	// and holds nobody to aal2.
	mfa *service.MFA
	// The feature services beside svc.
	apiKeys  *service.APIKeys
	oauth    *service.OAuth
	orgs     *service.Orgs
	recovery *service.Recovery
	events   *service.Events
	// userImport imports and exports users; impersonation opens
	// operators' impersonation sessions.
	userImport    *service.UserImport
	impersonation *service.Impersonation
	// users is the admin API for users.
	users    *service.Users
	webhooks *service.Webhooks
	// otp is email sign-in; nil answers its operations 404.
	otp *service.OTP
	// federation is sign-in with other identity providers; nil answers
	// its operations 404 (the list is empty).
	federation *service.Federation
	// sso is organizations' domains and SSO connections; nil answers its
	// operations 404.
	sso *service.SSO
}

// Spec is the API description the server publishes.
type Spec struct {
	YAML []byte
	JSON map[string]any
}

var _ api.StrictServerInterface = (*Server)(nil)

// GetHealth answers 200 when the database answers and 503 otherwise.
func (s *Server) GetHealth(ctx context.Context, _ api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	if err := s.svc.Health(ctx); err != nil {
		return nil, err
	}
	return api.GetHealth200JSONResponse{Status: api.Ok, Version: s.version}, nil
}

// GetReadiness is the readiness probe: the database, the signing keys and
// the change notifications.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	notifications, err := s.svc.Readiness(ctx)
	if err != nil {
		return nil, err
	}
	out := api.GetReadiness200JSONResponse{Status: api.ReadinessReady, Database: api.ReadinessDatabaseOk,
		SigningKeys: api.ReadinessSigningKeysOk, Notifications: api.ReadinessNotifications(notifications)}
	if notifications == service.NotificationsDegraded {
		out.Status = api.ReadinessDegraded
	}
	return out, nil
}

// GetJWKS publishes the public signing keys.
func (s *Server) GetJWKS(ctx context.Context, _ api.GetJWKSRequestObject) (api.GetJWKSResponseObject, error) {
	keys := s.svc.JWKS()
	out := api.GetJWKS200JSONResponse{Keys: make([]api.JWK, len(keys))}
	for i, k := range keys {
		out.Keys[i] = api.JWK{Kid: k.KID, Kty: api.JWKKty(k.Kty), Alg: api.JWKAlg(k.Alg), Use: api.Sig,
			Crv: crvPtr(k.Crv), X: strPtr(k.X), Y: strPtr(k.Y), N: strPtr(k.N), E: strPtr(k.E)}
	}
	return out, nil
}

// GetSpecYAML serves openapi.yaml.
func (s *Server) GetSpecYAML(ctx context.Context, _ api.GetSpecYAMLRequestObject) (api.GetSpecYAMLResponseObject, error) {
	return api.GetSpecYAML200ApplicationyamlResponse{Body: bytes.NewReader(s.spec.YAML), ContentLength: int64(len(s.spec.YAML))}, nil
}

// GetSpecJSON serves the spec as JSON.
func (s *Server) GetSpecJSON(ctx context.Context, _ api.GetSpecJSONRequestObject) (api.GetSpecJSONResponseObject, error) {
	return api.GetSpecJSON200JSONResponse(s.spec.JSON), nil
}

// Signup creates an account and opens its first session.
func (s *Server) Signup(ctx context.Context, req api.SignupRequestObject) (api.SignupResponseObject, error) {
	t, err := s.svc.Signup(ctx, string(req.Body.Email), req.Body.Password, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	var out api.SignupResult
	if t.Pending {
		err := out.FromSignupPending(api.SignupPending{Status: api.VerificationRequired, User: apiUser(&t.User)})
		return api.Signup202JSONResponse(out), err
	}
	r := apiTokens(t)
	err = out.FromSignupSession(api.SignupSession{
		Status: api.SessionCreated, AccessToken: r.AccessToken, TokenType: api.SignupSessionTokenType(r.TokenType),
		ExpiresIn: r.ExpiresIn, ExpiresAt: r.ExpiresAt, RefreshToken: r.RefreshToken, SessionId: r.SessionId,
		User: r.User, Aal: r.Aal, Mfa: r.Mfa,
	})
	return api.Signup201JSONResponse(out), err
}

// Login opens a session with email and password.
func (s *Server) Login(ctx context.Context, req api.LoginRequestObject) (api.LoginResponseObject, error) {
	t, err := s.svc.Login(ctx, string(req.Body.Email), req.Body.Password, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	tr, err := s.loginTokens(ctx, t)
	if err != nil {
		return nil, err
	}
	return api.Login200JSONResponse(tr), nil
}

// Refresh rotates a refresh token.
func (s *Server) Refresh(ctx context.Context, req api.RefreshRequestObject) (api.RefreshResponseObject, error) {
	t, err := s.svc.Refresh(ctx, req.Body.RefreshToken, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.Refresh200JSONResponse(apiTokens(t)), nil
}

// GetMe returns the authenticated user.
func (s *Server) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	return api.GetMe200JSONResponse(apiUser(u)), nil
}

// Logout ends this session, the others, or all.
func (s *Server) Logout(ctx context.Context, req api.LogoutRequestObject) (api.LogoutResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	scope := ""
	if req.Params.Scope != nil {
		scope = string(*req.Params.Scope)
	}
	if err := s.svc.Logout(ctx, p, scope, boolOr(req.Params.RevokeApiKeys, false), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.Logout204Response{}, nil
}

// ListSessions lists the caller's active sessions.
func (s *Server) ListSessions(ctx context.Context, req api.ListSessionsRequestObject) (api.ListSessionsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, next, err := s.svc.ListSessions(ctx, p, page)
	if err != nil {
		return nil, err
	}
	sessions := convertAll(list, func(sess *domain.Session) api.Session { return apiSession(sess, p.SessionID) })
	return api.ListSessions200JSONResponse{Sessions: sessions, NextCursor: nextCursor(next)}, nil
}

// GetSession returns one of the caller's sessions.
func (s *Server) GetSession(ctx context.Context, req api.GetSessionRequestObject) (api.GetSessionResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.svc.GetSession(ctx, p, req.SessionId)
	if err != nil {
		return nil, err
	}
	return api.GetSession200JSONResponse(apiSession(sess, p.SessionID)), nil
}

// RevokeSession revokes one of the caller's sessions.
func (s *Server) RevokeSession(ctx context.Context, req api.RevokeSessionRequestObject) (api.RevokeSessionResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.svc.RevokeSession(ctx, p, req.SessionId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeSession204Response{}, nil
}

// RenewSession extends a session's idle expiry.
func (s *Server) RenewSession(ctx context.Context, req api.RenewSessionRequestObject) (api.RenewSessionResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.svc.RenewSession(ctx, p, req.SessionId)
	if err != nil {
		return nil, err
	}
	return api.RenewSession200JSONResponse(apiSession(sess, p.SessionID)), nil
}

// notYet is what an operation of a later milestone answers until it lands.
var notYet = domain.Errorf(domain.CodeNotFound, "this operation is not available yet")
