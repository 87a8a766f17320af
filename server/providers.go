package server

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// errNoProviders answers the provider operations of a server built
// without providers.
var errNoProviders = domain.Errorf(domain.CodeNotFound, "no identity provider is configured")

// The flow cookie's names: __Host- (Secure, host-only, Path=/) everywhere,
// except over http on a loopback address, where a Secure cookie would not
// come back (Go's cookie jar, older browsers) and __Host- needs Secure.
const (
	flowCookieSecure   = "__Host-latch_flow"
	flowCookieLoopback = "latch_flow"
)

// flowCookieLoopback reports whether Latch is served over http on a
// loopback address (development and tests).
func loopbackHTTP(publicURL string) bool {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// flowCookie returns the Set-Cookie value that binds a flow to the browser:
// HttpOnly, host-only, Path=/, living as long as a flow; SameSite=Lax (the
// provider's redirect back is a top-level GET), or None for a provider that
// answers with a cross-site form_post.
func (s *Server) flowCookie(value string, formPost bool) string {
	c := &http.Cookie{Name: flowCookieSecure, Value: value, Path: "/", MaxAge: int((10 * time.Minute) / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	if formPost {
		c.SameSite = http.SameSiteNoneMode
	}
	if loopbackHTTP(s.publicURL) {
		c.Name, c.Secure, c.SameSite = flowCookieLoopback, false, http.SameSiteLaxMode
	}
	return c.String()
}

// browserCookie is the flow cookie the request carries under the name this
// server uses.
func (s *Server) browserCookie(secure, loopback *string) string {
	v := secure
	if loopbackHTTP(s.publicURL) {
		v = loopback
	}
	if v == nil {
		return ""
	}
	return *v
}

// ListProviders lists the configured providers.
func (s *Server) ListProviders(ctx context.Context, _ api.ListProvidersRequestObject) (api.ListProvidersResponseObject, error) {
	out := api.ListProviders200JSONResponse{Providers: []api.Provider{}}
	if s.federation == nil {
		return out, nil
	}
	for _, p := range s.federation.Providers() {
		out.Providers = append(out.Providers, api.Provider{Id: p.ID, Kind: api.ProviderKind(p.Kind), Name: p.Name})
	}
	return out, nil
}

// AuthorizeProvider sends the browser to the provider with a new flow.
func (s *Server) AuthorizeProvider(ctx context.Context, req api.AuthorizeProviderRequestObject) (api.AuthorizeProviderResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	pr := req.Params
	r := service.AuthorizeRequest{Provider: req.Provider, RedirectTo: pr.RedirectTo,
		Browser: s.browserCookie(pr.UnderscoreUnderscoreHostLatchFlow, pr.LatchFlow)}
	if pr.CodeChallenge != nil {
		r.CodeChallenge = *pr.CodeChallenge
	}
	if pr.LinkToken != nil {
		r.LinkToken = *pr.LinkToken
	}
	res, err := s.federation.Authorize(ctx, r, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.AuthorizeProvider302Response{Headers: api.AuthorizeProvider302ResponseHeaders{
		Location: res.Location, SetCookie: s.flowCookie(res.Browser, s.federation.FormPost(req.Provider))}}, nil
}

// ProviderCallback takes a provider's answer in the query.
func (s *Server) ProviderCallback(ctx context.Context, req api.ProviderCallbackRequestObject) (api.ProviderCallbackResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	p := req.Params
	loc, err := s.federation.Callback(ctx, service.CallbackRequest{Provider: req.Provider, Code: deref(p.Code), State: deref(p.State),
		Iss: deref(p.Iss), Error: deref(p.Error), Browser: s.browserCookie(p.UnderscoreUnderscoreHostLatchFlow, p.LatchFlow)}, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.ProviderCallback302Response{Headers: api.ProviderCallback302ResponseHeaders{Location: loc}}, nil
}

// ProviderCallbackForm takes a provider's answer by form_post (Apple).
func (s *Server) ProviderCallbackForm(ctx context.Context, req api.ProviderCallbackFormRequestObject) (api.ProviderCallbackFormResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	var b api.ProviderCallbackForm
	if req.Body != nil {
		b = *req.Body
	}
	p := req.Params
	loc, err := s.federation.Callback(ctx, service.CallbackRequest{Provider: req.Provider, Code: deref(b.Code), State: deref(b.State),
		Iss: deref(b.Iss), Error: deref(b.Error), Browser: s.browserCookie(p.UnderscoreUnderscoreHostLatchFlow, p.LatchFlow)}, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.ProviderCallbackForm302Response{Headers: api.ProviderCallbackForm302ResponseHeaders{Location: loc}}, nil
}

// LinkProvider returns the authorize URL that links a provider to the
// caller.
func (s *Server) LinkProvider(ctx context.Context, req api.LinkProviderRequestObject) (api.LinkProviderResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, exp, err := s.federation.Link(ctx, p, req.Provider, req.Body.RedirectTo, req.Body.CodeChallenge)
	if err != nil {
		return nil, err
	}
	return api.LinkProvider200JSONResponse{Url: u, ExpiresAt: exp}, nil
}

// LinkIdentity finishes a link with the code of its flow.
func (s *Server) LinkIdentity(ctx context.Context, req api.LinkIdentityRequestObject) (api.LinkIdentityResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	i, err := s.federation.ConfirmLink(ctx, p, req.Body.Code, req.Body.CodeVerifier, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.LinkIdentity201JSONResponse(apiIdentity(i)), nil
}

func apiIdentity(i *domain.Identity) api.Identity {
	prov, verified := i.Provider, i.EmailVerified
	return api.Identity{Id: i.ID, Kind: api.IdentityKindProvider, CreatedAt: i.CreatedAt, LastSignInAt: i.LastSignInAt,
		Provider: &prov, EmailVerified: &verified, Email: strPtr(i.Email)}
}

// ListIdentities lists the caller's ways to sign in.
func (s *Server) ListIdentities(ctx context.Context, _ api.ListIdentitiesRequestObject) (api.ListIdentitiesResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	out := api.ListIdentities200JSONResponse{Identities: []api.Identity{}}
	if s.federation == nil {
		return out, nil
	}
	ids, err := s.federation.ListIdentities(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, v := range ids {
		if v.Identity != nil {
			out.Identities = append(out.Identities, apiIdentity(v.Identity))
			continue
		}
		out.Identities = append(out.Identities, api.Identity{Id: v.ID, Kind: api.IdentityKind(v.Kind), CreatedAt: v.Created, LastSignInAt: v.LastUsed})
	}
	return out, nil
}

// DeleteIdentity unlinks one of the caller's provider identities.
func (s *Server) DeleteIdentity(ctx context.Context, req api.DeleteIdentityRequestObject) (api.DeleteIdentityResponseObject, error) {
	if s.federation == nil {
		return nil, errNoProviders
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.federation.DeleteIdentity(ctx, p, req.IdentityId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.DeleteIdentity204Response{}, nil
}

// codeGrant answers grant_type=authorization_code: the one-time code of a
// provider sign-in, with the application's PKCE verifier, for a session.
func (s *Server) codeGrant(ctx context.Context, f *api.TokenRequest) (api.ExchangeTokenResponseObject, error) {
	if s.federation == nil {
		return nil, domain.Errorf(domain.CodeUnsupportedGrantType, "no identity provider is configured")
	}
	if deref(f.Code) == "" || deref(f.CodeVerifier) == "" {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "the authorization_code grant needs code and code_verifier")
	}
	t, err := s.federation.ExchangeCode(ctx, *f.Code, *f.CodeVerifier, deref(f.RedirectUri), metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	tr, err := s.loginTokens(ctx, t)
	if err != nil {
		return nil, err
	}
	aal := tr.Aal
	out := api.ExchangeResponse{AccessToken: tr.AccessToken, TokenType: api.ExchangeResponseTokenTypeBearer, ExpiresIn: tr.ExpiresIn,
		ExpiresAt: tr.ExpiresAt, Scope: "", RefreshToken: &tr.RefreshToken, SessionId: &tr.SessionId, User: &tr.User, Aal: &aal, Mfa: tr.Mfa}
	return api.ExchangeToken200JSONResponse(out), nil
}
