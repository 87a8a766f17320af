package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// oauthPaths are the endpoints that OAuth clients call: their errors also
// carry error_description (RFC 6749 5.2), with the text of message.
var oauthPaths = map[string]bool{"/auth/token": true, "/oauth/introspect": true, "/oauth/revoke": true, "/userinfo": true}

// metadataCacheControl lets clients and proxies keep the discovery
// documents for an hour: they change only with the configuration.
const metadataCacheControl = "public, max-age=3600"

// serverMetadata is the RFC 8414 / OIDC Discovery document: the issuer is
// the token issuer's, every endpoint is below the public URL.
func (s *Server) serverMetadata() api.ServerMetadata {
	base := strings.TrimRight(s.publicURL, "/")
	auth := []api.ClientAuthMethod{api.ClientSecretBasic, api.ClientSecretPost}
	revokeAuth := []api.ClientAuthMethod{api.ClientSecretBasic, api.ClientSecretPost, api.None}
	builtin := domain.BuiltinScopes()
	scopes := make([]api.Scope, len(builtin))
	for i, sc := range builtin {
		scopes[i] = api.Scope(sc)
	}
	docs := base + "/docs"
	claims := []string{"iss", "sub", "aud", "exp", "iat", "jti", "auth_time", "client_id", "scope", "sid", "org_id", "ext", "key_id", "email", "email_verified"}
	return api.ServerMetadata{
		Issuer:                            s.svc.Issuer().Config().Issuer,
		JwksUri:                           base + "/.well-known/jwks.json",
		TokenEndpoint:                     base + "/auth/token",
		IntrospectionEndpoint:             base + "/oauth/introspect",
		RevocationEndpoint:                base + "/oauth/revoke",
		UserinfoEndpoint:                  base + "/userinfo",
		ServiceDocumentation:              &docs,
		GrantTypesSupported:               []api.GrantType{api.ClientCredentials, api.UrnIetfParamsOauthGrantTypeTokenExchange},
		TokenEndpointAuthMethodsSupported: auth,
		IntrospectionEndpointAuthMethodsSupported: &auth,
		RevocationEndpointAuthMethodsSupported:    &revokeAuth,
		ScopesSupported:                           scopes,
		ResponseTypesSupported:                    []string{},
		SubjectTypesSupported:                     []api.ServerMetadataSubjectTypesSupported{api.Public},
		ClaimsSupported:                           &claims,
	}
}

// GetAuthorizationServerMetadata serves RFC 8414 metadata.
func (s *Server) GetAuthorizationServerMetadata(ctx context.Context, _ api.GetAuthorizationServerMetadataRequestObject) (api.GetAuthorizationServerMetadataResponseObject, error) {
	return api.GetAuthorizationServerMetadata200JSONResponse{Body: s.serverMetadata(),
		Headers: api.GetAuthorizationServerMetadata200ResponseHeaders{CacheControl: metadataCacheControl}}, nil
}

// GetOpenIDConfiguration serves the same document for OIDC Discovery.
func (s *Server) GetOpenIDConfiguration(ctx context.Context, _ api.GetOpenIDConfigurationRequestObject) (api.GetOpenIDConfigurationResponseObject, error) {
	return api.GetOpenIDConfiguration200JSONResponse{Body: s.serverMetadata(),
		Headers: api.GetOpenIDConfiguration200ResponseHeaders{CacheControl: metadataCacheControl}}, nil
}

// basicCredentials returns the HTTP Basic credentials of r, form-URL-decoded
// as RFC 6749 2.3.1 asks of OAuth clients (openid-client sends latch%5Fu%5F...).
// A key never contains '%' or '+', so a client that does not encode works
// too. ok is false without Basic credentials; err is set for credentials
// that do not decode.
func basicCredentials(r *http.Request) (user, secret string, ok bool, err error) {
	u, p, ok := r.BasicAuth()
	if !ok {
		return "", "", false, nil
	}
	if user, err = url.QueryUnescape(u); err == nil {
		secret, err = url.QueryUnescape(p)
	}
	if err != nil {
		return "", "", true, domain.Errorf(domain.CodeInvalidClient, "client authentication failed: the Basic credentials are not form-URL-encoded")
	}
	return user, secret, true, nil
}

// oauthClient is the API key that authenticated an OAuth request: from a
// header (the validator's principal) or the form's client_secret.
func (s *Server) oauthClient(ctx context.Context, secret *string) (*domain.Principal, error) {
	st := stateFrom(ctx)
	if st.principal != nil {
		return st.principal, nil
	}
	return s.formClient(ctx, st.authErr, secret)
}

// IntrospectToken answers RFC 7662 introspection.
func (s *Server) IntrospectToken(ctx context.Context, req api.IntrospectTokenRequestObject) (api.IntrospectTokenResponseObject, error) {
	p, err := s.oauthClient(ctx, req.Body.ClientSecret)
	if err != nil {
		return nil, err
	}
	in, err := s.oauth.Introspect(ctx, p, req.Body.Token)
	if err != nil {
		return nil, err
	}
	return api.IntrospectToken200JSONResponse(apiIntrospection(in)), nil
}

func apiIntrospection(in *service.Introspection) api.IntrospectionResponse {
	out := api.IntrospectionResponse{Active: in.Active}
	if !in.Active {
		return out
	}
	str := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	id := func(v string) *openapi_types.UUID {
		u, err := uuid.Parse(v)
		if err != nil {
			return nil
		}
		return &u
	}
	out.Scope, out.ClientId, out.Sub, out.Iss = str(in.Scope), str(in.ClientID), str(in.Subject), str(in.Issuer)
	out.Jti, out.Ext, out.Sid, out.OrgId = str(in.JTI), str(in.Ext), id(in.SID), id(in.OrgID)
	if len(in.Audience) > 0 {
		aud := append([]string(nil), in.Audience...)
		out.Aud = &aud
	}
	out.Exp, out.Iat, out.AuthTime = unix(in.Exp), unix(in.Iat), unix(in.AuthTime)
	if in.AAL != "" {
		aal := apiAAL(in.AAL)
		out.Aal = &aal
	}
	if len(in.AMR) > 0 {
		amr := append([]string(nil), in.AMR...)
		out.Amr = &amr
	}
	if in.Actor != "" {
		out.Act = &struct {
			Sub string `json:"sub"`
		}{Sub: in.Actor}
	}
	use := api.IntrospectionResponseTokenUse(in.TokenUse)
	out.TokenUse = &use
	if in.TokenUse == service.TokenUseAccess {
		typ := api.IntrospectionResponseTokenTypeBearer
		out.TokenType = &typ
	}
	return out
}

// RevokeToken answers RFC 7009 revocation.
func (s *Server) RevokeToken(ctx context.Context, req api.RevokeTokenRequestObject) (api.RevokeTokenResponseObject, error) {
	st := stateFrom(ctx)
	caller, callerErr := st.principal, st.authErr
	if caller == nil && req.Body.ClientSecret != nil && *req.Body.ClientSecret != "" {
		caller, callerErr = s.formClient(ctx, callerErr, req.Body.ClientSecret)
	}
	// Credentials that were sent and are wrong are refused whatever the
	// token is, as RFC 7009 2.1 asks; missing ones are needed only to
	// revoke an API key.
	if caller == nil && (domain.IsCode(callerErr, domain.CodeInvalidClient) || domain.IsCode(callerErr, domain.CodeInvalidToken) ||
		domain.IsCode(callerErr, domain.CodeTokenExpired)) {
		return nil, &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: callerErr}
	}
	if err := s.oauth.RevokeToken(ctx, caller, callerErr, req.Body.Token, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeToken200Response{}, nil
}

// GetUserInfo answers the OIDC claims of the session's user.
func (s *Server) GetUserInfo(ctx context.Context, _ api.GetUserInfoRequestObject) (api.GetUserInfoResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.svc.UserInfo(ctx, p)
	if err != nil {
		return nil, err
	}
	out := api.GetUserInfo200JSONResponse{Sub: u.ID}
	if u.Email != "" {
		e := u.Email
		v := u.EmailVerified
		out.Email, out.EmailVerified = &e, &v
	}
	return out, nil
}

func unix(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.Unix()
	return &v
}

func crvPtr(s string) *api.JWKCrv {
	if s == "" {
		return nil
	}
	c := api.JWKCrv(s)
	return &c
}
