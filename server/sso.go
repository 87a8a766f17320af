package server

import (
	"context"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// errNoSSO answers the SSO operations of a server built without them.
var errNoSSO = domain.Errorf(domain.CodeNotFound, "SSO is not available on this server")

func apiOrgDomain(d *domain.OrgDomain) api.OrgDomain {
	return api.OrgDomain{Id: d.ID, Domain: d.Domain, Verified: d.VerifiedAt != nil, VerifiedAt: d.VerifiedAt, CreatedAt: d.CreatedAt,
		Verification: api.DomainVerification{RecordName: d.RecordName(), RecordType: api.DomainRecordTXT, RecordValue: d.RecordValue()}}
}

func apiSSOConnection(c *service.Connection) api.SSOConnection {
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return api.SSOConnection{OrgId: c.OrgID, ProviderId: c.ProviderID, Issuer: c.Issuer, ClientId: c.ClientID,
		ClientSecretSet: len(c.ClientSecret) > 0, Scopes: scopes, DefaultRole: api.SSOConnectionDefaultRole(c.DefaultRole),
		RequireSso: c.RequireSSO, CallbackUrl: c.CallbackURL, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// ListOrgDomains lists the organization's email domains.
func (s *Server) ListOrgDomains(ctx context.Context, req api.ListOrgDomainsRequestObject) (api.ListOrgDomainsResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := s.sso.ListDomains(ctx, p, req.OrgId)
	if err != nil {
		return nil, err
	}
	out := api.ListOrgDomains200JSONResponse{Domains: make([]api.OrgDomain, len(ds))}
	for i := range ds {
		out.Domains[i] = apiOrgDomain(&ds[i])
	}
	return out, nil
}

// CreateOrgDomain adds an email domain to verify.
func (s *Server) CreateOrgDomain(ctx context.Context, req api.CreateOrgDomainRequestObject) (api.CreateOrgDomainResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.sso.CreateDomain(ctx, p, req.OrgId, req.Body.Domain)
	if err != nil {
		return nil, err
	}
	return api.CreateOrgDomain201JSONResponse(apiOrgDomain(d)), nil
}

// DeleteOrgDomain removes an email domain.
func (s *Server) DeleteOrgDomain(ctx context.Context, req api.DeleteOrgDomainRequestObject) (api.DeleteOrgDomainResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.sso.DeleteDomain(ctx, p, req.OrgId, req.DomainId); err != nil {
		return nil, err
	}
	return api.DeleteOrgDomain204Response{}, nil
}

// VerifyOrgDomain verifies an email domain by its DNS TXT record.
func (s *Server) VerifyOrgDomain(ctx context.Context, req api.VerifyOrgDomainRequestObject) (api.VerifyOrgDomainResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.sso.VerifyDomain(ctx, p, req.OrgId, req.DomainId)
	if err != nil {
		return nil, err
	}
	return api.VerifyOrgDomain200JSONResponse(apiOrgDomain(d)), nil
}

// GetOrgSSO returns the organization's SSO connection, never its secret.
func (s *Server) GetOrgSSO(ctx context.Context, req api.GetOrgSSORequestObject) (api.GetOrgSSOResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.sso.GetConnection(ctx, p, req.OrgId)
	if err != nil {
		return nil, err
	}
	return api.GetOrgSSO200JSONResponse(apiSSOConnection(c)), nil
}

// PutOrgSSO registers or changes the organization's SSO connection.
func (s *Server) PutOrgSSO(ctx context.Context, req api.PutOrgSSORequestObject) (api.PutOrgSSOResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	in := service.ConnectionInput{Issuer: b.Issuer, ClientID: b.ClientId, ClientSecret: b.ClientSecret, RequireSSO: deref(b.RequireSso)}
	if b.Scopes != nil {
		in.Scopes = *b.Scopes
	}
	if b.DefaultRole != nil {
		in.DefaultRole = domain.Role(*b.DefaultRole)
	}
	c, err := s.sso.PutConnection(ctx, p, req.OrgId, in)
	if err != nil {
		return nil, err
	}
	return api.PutOrgSSO200JSONResponse(apiSSOConnection(c)), nil
}

// DeleteOrgSSO removes the organization's SSO connection.
func (s *Server) DeleteOrgSSO(ctx context.Context, req api.DeleteOrgSSORequestObject) (api.DeleteOrgSSOResponseObject, error) {
	if s.sso == nil {
		return nil, errNoSSO
	}
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.sso.DeleteConnection(ctx, p, req.OrgId); err != nil {
		return nil, err
	}
	return api.DeleteOrgSSO204Response{}, nil
}

// StartSSO sends the browser to the identity provider of the
// organization that verified the email's domain.
func (s *Server) StartSSO(ctx context.Context, req api.StartSSORequestObject) (api.StartSSOResponseObject, error) {
	if s.federation == nil {
		return nil, domain.Errorf(domain.CodeSSONotConfigured, "SSO is not available on this server")
	}
	pr := req.Params
	res, err := s.federation.AuthorizeSSO(ctx, pr.Email, service.AuthorizeRequest{RedirectTo: pr.RedirectTo, CodeChallenge: pr.CodeChallenge,
		Browser: s.browserCookie(pr.UnderscoreUnderscoreHostLatchFlow, pr.LatchFlow)}, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.StartSSO302Response{Headers: api.StartSSO302ResponseHeaders{Location: res.Location, SetCookie: s.flowCookie(res.Browser, false)}}, nil
}
