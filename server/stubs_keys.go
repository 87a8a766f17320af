package server

import (
	"context"

	"github.com/latchauth/latch/api"
)

// ListAPIKeys is not implemented yet.
func (s *Server) ListAPIKeys(ctx context.Context, request api.ListAPIKeysRequestObject) (api.ListAPIKeysResponseObject, error) {
	return nil, notYet
}

// CreateAPIKey is not implemented yet.
func (s *Server) CreateAPIKey(ctx context.Context, request api.CreateAPIKeyRequestObject) (api.CreateAPIKeyResponseObject, error) {
	return nil, notYet
}

// RevokeAPIKey is not implemented yet.
func (s *Server) RevokeAPIKey(ctx context.Context, request api.RevokeAPIKeyRequestObject) (api.RevokeAPIKeyResponseObject, error) {
	return nil, notYet
}

// GetAPIKey is not implemented yet.
func (s *Server) GetAPIKey(ctx context.Context, request api.GetAPIKeyRequestObject) (api.GetAPIKeyResponseObject, error) {
	return nil, notYet
}

// RollAPIKey is not implemented yet.
func (s *Server) RollAPIKey(ctx context.Context, request api.RollAPIKeyRequestObject) (api.RollAPIKeyResponseObject, error) {
	return nil, notYet
}

// ExchangeToken is not implemented yet.
func (s *Server) ExchangeToken(ctx context.Context, request api.ExchangeTokenRequestObject) (api.ExchangeTokenResponseObject, error) {
	return nil, notYet
}

// ListOrganizations is not implemented yet.
func (s *Server) ListOrganizations(ctx context.Context, request api.ListOrganizationsRequestObject) (api.ListOrganizationsResponseObject, error) {
	return nil, notYet
}

// CreateOrganization is not implemented yet.
func (s *Server) CreateOrganization(ctx context.Context, request api.CreateOrganizationRequestObject) (api.CreateOrganizationResponseObject, error) {
	return nil, notYet
}

// GetOrganization is not implemented yet.
func (s *Server) GetOrganization(ctx context.Context, request api.GetOrganizationRequestObject) (api.GetOrganizationResponseObject, error) {
	return nil, notYet
}

// ListOrgAPIKeys is not implemented yet.
func (s *Server) ListOrgAPIKeys(ctx context.Context, request api.ListOrgAPIKeysRequestObject) (api.ListOrgAPIKeysResponseObject, error) {
	return nil, notYet
}

// CreateOrgAPIKey is not implemented yet.
func (s *Server) CreateOrgAPIKey(ctx context.Context, request api.CreateOrgAPIKeyRequestObject) (api.CreateOrgAPIKeyResponseObject, error) {
	return nil, notYet
}

// RevokeOrgAPIKey is not implemented yet.
func (s *Server) RevokeOrgAPIKey(ctx context.Context, request api.RevokeOrgAPIKeyRequestObject) (api.RevokeOrgAPIKeyResponseObject, error) {
	return nil, notYet
}

// GetOrgAPIKey is not implemented yet.
func (s *Server) GetOrgAPIKey(ctx context.Context, request api.GetOrgAPIKeyRequestObject) (api.GetOrgAPIKeyResponseObject, error) {
	return nil, notYet
}

// RollOrgAPIKey is not implemented yet.
func (s *Server) RollOrgAPIKey(ctx context.Context, request api.RollOrgAPIKeyRequestObject) (api.RollOrgAPIKeyResponseObject, error) {
	return nil, notYet
}

// ListMembers is not implemented yet.
func (s *Server) ListMembers(ctx context.Context, request api.ListMembersRequestObject) (api.ListMembersResponseObject, error) {
	return nil, notYet
}

// AddMember is not implemented yet.
func (s *Server) AddMember(ctx context.Context, request api.AddMemberRequestObject) (api.AddMemberResponseObject, error) {
	return nil, notYet
}

// RemoveMember is not implemented yet.
func (s *Server) RemoveMember(ctx context.Context, request api.RemoveMemberRequestObject) (api.RemoveMemberResponseObject, error) {
	return nil, notYet
}

// UpdateMember is not implemented yet.
func (s *Server) UpdateMember(ctx context.Context, request api.UpdateMemberRequestObject) (api.UpdateMemberResponseObject, error) {
	return nil, notYet
}

// ListOrgSessions is not implemented yet.
func (s *Server) ListOrgSessions(ctx context.Context, request api.ListOrgSessionsRequestObject) (api.ListOrgSessionsResponseObject, error) {
	return nil, notYet
}

// RevokeOrgSession is not implemented yet.
func (s *Server) RevokeOrgSession(ctx context.Context, request api.RevokeOrgSessionRequestObject) (api.RevokeOrgSessionResponseObject, error) {
	return nil, notYet
}

// CreateDelegatedSession is not implemented yet.
func (s *Server) CreateDelegatedSession(ctx context.Context, request api.CreateDelegatedSessionRequestObject) (api.CreateDelegatedSessionResponseObject, error) {
	return nil, notYet
}

// LookupUser is not implemented yet.
func (s *Server) LookupUser(ctx context.Context, request api.LookupUserRequestObject) (api.LookupUserResponseObject, error) {
	return nil, notYet
}
