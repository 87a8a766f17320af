package server

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

func apiOrg(o *domain.Organization) api.Organization {
	rm := o.RequireMFA
	return api.Organization{Id: o.ID, Name: o.Name, CreatedAt: o.CreatedAt, Role: api.Role(o.Role), RequireMfa: &rm}
}

func apiMember(m *domain.Member) api.Member {
	out := api.Member{UserId: m.UserID, Role: api.Role(m.Role), CreatedAt: m.CreatedAt}
	if m.Email != "" {
		e := m.Email
		out.Email = &e
	}
	return out
}

// ListOrganizations lists the caller's organizations.
func (s *Server) ListOrganizations(ctx context.Context, req api.ListOrganizationsRequestObject) (api.ListOrganizationsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	orgs, next, err := s.orgs.ListOrganizations(ctx, p, page)
	if err != nil {
		return nil, err
	}
	return api.ListOrganizations200JSONResponse{Organizations: convertAll(orgs, apiOrg), NextCursor: nextCursor(next)}, nil
}

// CreateOrganization creates an organization owned by the caller.
func (s *Server) CreateOrganization(ctx context.Context, req api.CreateOrganizationRequestObject) (api.CreateOrganizationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orgs.CreateOrganization(ctx, p, req.Body.Name)
	if err != nil {
		return nil, err
	}
	return api.CreateOrganization201JSONResponse(apiOrg(o)), nil
}

// GetOrganization returns one of the caller's organizations.
func (s *Server) GetOrganization(ctx context.Context, req api.GetOrganizationRequestObject) (api.GetOrganizationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orgs.GetOrganization(ctx, p, req.OrgId)
	if err != nil {
		return nil, err
	}
	return api.GetOrganization200JSONResponse(apiOrg(o)), nil
}

// UpdateOrganization renames an organization or sets its require_mfa.
func (s *Server) UpdateOrganization(ctx context.Context, req api.UpdateOrganizationRequestObject) (api.UpdateOrganizationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orgs.UpdateOrganization(ctx, p, req.OrgId, req.Body.Name, req.Body.RequireMfa)
	if err != nil {
		return nil, err
	}
	return api.UpdateOrganization200JSONResponse(apiOrg(o)), nil
}

// ListMembers lists an organization's members.
func (s *Server) ListMembers(ctx context.Context, req api.ListMembersRequestObject) (api.ListMembersResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	ms, next, err := s.orgs.ListMembers(ctx, p, req.OrgId, page)
	if err != nil {
		return nil, err
	}
	return api.ListMembers200JSONResponse{Members: convertAll(ms, apiMember), NextCursor: nextCursor(next)}, nil
}

// InviteMember invites an address to an organization: the same 202
// whether or not it has an account.
func (s *Server) InviteMember(ctx context.Context, req api.InviteMemberRequestObject) (api.InviteMemberResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.orgs.InviteMember(ctx, p, req.OrgId, string(req.Body.Email), domain.Role(req.Body.Role), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.InviteMember202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// ListInvitations lists an organization's pending invitations.
func (s *Server) ListInvitations(ctx context.Context, req api.ListInvitationsRequestObject) (api.ListInvitationsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, next, err := s.orgs.ListInvitations(ctx, p, req.OrgId, page)
	if err != nil {
		return nil, err
	}
	out := api.ListInvitations200JSONResponse{Invitations: make([]api.Invitation, len(list)), NextCursor: nextCursor(next)}
	for i, inv := range list {
		out.Invitations[i] = api.Invitation{Id: inv.ID, Email: inv.Email, Role: api.Role(inv.Role),
			InvitedBy: inv.InvitedBy, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt}
	}
	return out, nil
}

// RevokeInvitation revokes a pending invitation.
func (s *Server) RevokeInvitation(ctx context.Context, req api.RevokeInvitationRequestObject) (api.RevokeInvitationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.orgs.RevokeInvitation(ctx, p, req.OrgId, req.InvitationId); err != nil {
		return nil, err
	}
	return api.RevokeInvitation204Response{}, nil
}

// AcceptInvitation joins the organization an invitation token is for.
func (s *Server) AcceptInvitation(ctx context.Context, req api.AcceptInvitationRequestObject) (api.AcceptInvitationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orgs.AcceptInvitation(ctx, p, req.Body.Token, metaFrom(ctx))
	if err != nil {
		return nil, tokenStatus(err)
	}
	return api.AcceptInvitation200JSONResponse(apiOrg(o)), nil
}

// GetAudiences returns the audiences an organization's tokens may name.
func (s *Server) GetAudiences(ctx context.Context, req api.GetAudiencesRequestObject) (api.GetAudiencesResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	auds, err := s.orgs.Audiences(ctx, p, req.OrgId)
	if err != nil {
		return nil, err
	}
	return api.GetAudiences200JSONResponse{Audiences: auds}, nil
}

// SetAudiences replaces an organization's audiences.
func (s *Server) SetAudiences(ctx context.Context, req api.SetAudiencesRequestObject) (api.SetAudiencesResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	auds, err := s.orgs.SetAudiences(ctx, p, req.OrgId, req.Body.Audiences)
	if err != nil {
		return nil, err
	}
	return api.SetAudiences200JSONResponse{Audiences: auds}, nil
}

// UpdateMember changes a member's role.
func (s *Server) UpdateMember(ctx context.Context, req api.UpdateMemberRequestObject) (api.UpdateMemberResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.orgs.UpdateMember(ctx, p, req.OrgId, req.UserId, domain.Role(req.Body.Role))
	if err != nil {
		return nil, err
	}
	return api.UpdateMember200JSONResponse(apiMember(m)), nil
}

// RemoveMember removes a member, or lets a member leave.
func (s *Server) RemoveMember(ctx context.Context, req api.RemoveMemberRequestObject) (api.RemoveMemberResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.orgs.RemoveMember(ctx, p, req.OrgId, req.UserId, boolOr(req.Params.RevokeApiKeys, true), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RemoveMember204Response{}, nil
}

// CreateDelegatedSession opens a session for an organization's own user.
func (s *Server) CreateDelegatedSession(ctx context.Context, req api.CreateDelegatedSessionRequestObject) (api.CreateDelegatedSessionResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	dr := service.DelegatedRequest{ExternalID: req.Body.ExternalId}
	if req.Body.Email != nil {
		dr.Email = string(*req.Body.Email)
	}
	if req.Body.Metadata != nil {
		dr.Metadata = *req.Body.Metadata
	}
	t, err := s.orgs.CreateDelegatedSession(ctx, p, dr, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.CreateDelegatedSession201JSONResponse(apiTokens(t)), nil
}

// ListOrgSessions lists an organization's delegated sessions.
func (s *Server) ListOrgSessions(ctx context.Context, req api.ListOrgSessionsRequestObject) (api.ListOrgSessionsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ext := ""
	if req.Params.ExternalId != nil {
		ext = *req.Params.ExternalId
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, next, err := s.orgs.ListOrgSessions(ctx, p, req.OrgId, ext, page)
	if err != nil {
		return nil, err
	}
	sessions := convertAll(list, func(sess *domain.Session) api.Session { return apiSession(sess, uuid.Nil) })
	return api.ListOrgSessions200JSONResponse{Sessions: sessions, NextCursor: nextCursor(next)}, nil
}

// RevokeOrgSession revokes a delegated session of an organization.
func (s *Server) RevokeOrgSession(ctx context.Context, req api.RevokeOrgSessionRequestObject) (api.RevokeOrgSessionResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.orgs.RevokeOrgSession(ctx, p, req.OrgId, req.SessionId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeOrgSession204Response{}, nil
}
