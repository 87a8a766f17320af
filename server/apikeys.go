package server

import (
	"context"
	"time"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

func apiKey(k *domain.APIKey) api.APIKey {
	out := api.APIKey{
		Id: k.ID, Prefix: k.Prefix, Label: k.Label, Scopes: k.Scopes, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt,
		OwnerType: api.APIKeyOwnerTypeUser, UserId: k.UserID, CreatedBy: k.CreatedBy,
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if k.OrgID != nil {
		out.OwnerType = api.APIKeyOwnerTypeOrganization
		out.OrgId = k.OrgID
	}
	return out
}

// apiKeyWithSecret is the one response that carries a key's secret.
func apiKeyWithSecret(ck *service.CreatedKey) api.APIKeyWithSecret {
	k := apiKey(&ck.Key)
	return api.APIKeyWithSecret{
		Id: k.Id, Prefix: k.Prefix, Label: k.Label, Scopes: k.Scopes, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt,
		OwnerType: api.APIKeyWithSecretOwnerType(k.OwnerType), UserId: k.UserId, OrgId: k.OrgId, CreatedBy: k.CreatedBy,
		Key: ck.Secret.Reveal(),
	}
}

func apiKeyList(keys []domain.APIKey, next *domain.Cursor) api.APIKeyList {
	return api.APIKeyList{ApiKeys: convertAll(keys, apiKey), NextCursor: nextCursor(next)}
}

func createKeyRequest(b *api.CreateAPIKeyRequest) service.CreateKeyRequest {
	if b == nil {
		return service.CreateKeyRequest{}
	}
	return service.CreateKeyRequest{Label: b.Label, Scopes: b.Scopes, ExpiresAt: b.ExpiresAt}
}

func overlap(b *api.RollAPIKeyRequest) time.Duration {
	if b == nil || b.OverlapSeconds == nil {
		return 0
	}
	return time.Duration(*b.OverlapSeconds) * time.Second
}

// ListAPIKeys lists the caller's personal keys, never their secrets.
func (s *Server) ListAPIKeys(ctx context.Context, req api.ListAPIKeysRequestObject) (api.ListAPIKeysResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	keys, next, err := s.apiKeys.ListAPIKeys(ctx, p, page)
	if err != nil {
		return nil, err
	}
	return api.ListAPIKeys200JSONResponse(apiKeyList(keys, next)), nil
}

// CreateAPIKey creates a personal key and shows its secret once.
func (s *Server) CreateAPIKey(ctx context.Context, req api.CreateAPIKeyRequestObject) (api.CreateAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ck, err := s.apiKeys.CreateAPIKey(ctx, p, createKeyRequest(req.Body), metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.CreateAPIKey201JSONResponse(apiKeyWithSecret(ck)), nil
}

// GetAPIKey returns one personal key.
func (s *Server) GetAPIKey(ctx context.Context, req api.GetAPIKeyRequestObject) (api.GetAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.apiKeys.GetAPIKey(ctx, p, req.KeyId)
	if err != nil {
		return nil, err
	}
	return api.GetAPIKey200JSONResponse(apiKey(k)), nil
}

// RevokeAPIKey revokes a personal key.
func (s *Server) RevokeAPIKey(ctx context.Context, req api.RevokeAPIKeyRequestObject) (api.RevokeAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.apiKeys.RevokeAPIKey(ctx, p, req.KeyId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeAPIKey204Response{}, nil
}

// RollAPIKey replaces a personal key, keeping the old one for the overlap.
func (s *Server) RollAPIKey(ctx context.Context, req api.RollAPIKeyRequestObject) (api.RollAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ck, err := s.apiKeys.RollAPIKey(ctx, p, req.KeyId, overlap(req.Body), metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.RollAPIKey201JSONResponse(apiKeyWithSecret(ck)), nil
}

// ListOrgAPIKeys lists an organization's keys, never their secrets.
func (s *Server) ListOrgAPIKeys(ctx context.Context, req api.ListOrgAPIKeysRequestObject) (api.ListOrgAPIKeysResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	keys, next, err := s.apiKeys.ListOrgAPIKeys(ctx, p, req.OrgId, req.Params.CreatedBy, page)
	if err != nil {
		return nil, err
	}
	return api.ListOrgAPIKeys200JSONResponse(apiKeyList(keys, next)), nil
}

// RevokeOrgAPIKeysByCreator revokes every active key of the organization
// that a user created.
func (s *Server) RevokeOrgAPIKeysByCreator(ctx context.Context, req api.RevokeOrgAPIKeysByCreatorRequestObject) (api.RevokeOrgAPIKeysByCreatorResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.apiKeys.RevokeOrgAPIKeysByCreator(ctx, p, req.OrgId, req.Body.CreatedBy, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.RevokeOrgAPIKeysByCreator200JSONResponse(api.RevokedCount{Revoked: n}), nil
}

// CreateOrgAPIKey creates an organization key and shows its secret once.
func (s *Server) CreateOrgAPIKey(ctx context.Context, req api.CreateOrgAPIKeyRequestObject) (api.CreateOrgAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ck, err := s.apiKeys.CreateOrgAPIKey(ctx, p, req.OrgId, createKeyRequest(req.Body), metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.CreateOrgAPIKey201JSONResponse(apiKeyWithSecret(ck)), nil
}

// GetOrgAPIKey returns one organization key.
func (s *Server) GetOrgAPIKey(ctx context.Context, req api.GetOrgAPIKeyRequestObject) (api.GetOrgAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.apiKeys.GetOrgAPIKey(ctx, p, req.OrgId, req.KeyId)
	if err != nil {
		return nil, err
	}
	return api.GetOrgAPIKey200JSONResponse(apiKey(k)), nil
}

// RevokeOrgAPIKey revokes an organization key.
func (s *Server) RevokeOrgAPIKey(ctx context.Context, req api.RevokeOrgAPIKeyRequestObject) (api.RevokeOrgAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.apiKeys.RevokeOrgAPIKey(ctx, p, req.OrgId, req.KeyId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeOrgAPIKey204Response{}, nil
}

// RollOrgAPIKey replaces an organization key.
func (s *Server) RollOrgAPIKey(ctx context.Context, req api.RollOrgAPIKeyRequestObject) (api.RollOrgAPIKeyResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ck, err := s.apiKeys.RollOrgAPIKey(ctx, p, req.OrgId, req.KeyId, overlap(req.Body), metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.RollOrgAPIKey201JSONResponse(apiKeyWithSecret(ck)), nil
}

// LookupUser finds a user id by email, for operators.
func (s *Server) LookupUser(ctx context.Context, req api.LookupUserRequestObject) (api.LookupUserResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.orgs.LookupUser(ctx, p, string(req.Params.Email))
	if err != nil {
		return nil, err
	}
	return api.LookupUser200JSONResponse{Id: u.ID, Email: u.Email}, nil
}
