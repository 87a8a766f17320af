package server

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// The webhook operations exist twice: for the operators under
// /admin/webhooks (the operator gate is the validator's) and for an
// organization under /organizations/{org_id}/webhooks. Both call the same
// service methods with the owner: nil for the operators.

func apiWebhook(e *domain.WebhookEndpoint) api.WebhookEndpoint {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return api.WebhookEndpoint{Id: e.ID, OrgId: e.OrgID, Url: e.URL, Description: e.Description, EventTypes: types,
		Enabled: e.Enabled, DisabledAt: e.DisabledAt, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func apiWebhookWithSecret(e *domain.WebhookEndpoint, secret string) api.WebhookEndpointWithSecret {
	w := apiWebhook(e)
	return api.WebhookEndpointWithSecret{Id: w.Id, OrgId: w.OrgId, Url: w.Url, Description: w.Description, EventTypes: w.EventTypes,
		Enabled: w.Enabled, DisabledAt: w.DisabledAt, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Secret: secret}
}

func apiWebhookList(es []domain.WebhookEndpoint, next *domain.Cursor) api.WebhookEndpointList {
	out := api.WebhookEndpointList{Webhooks: make([]api.WebhookEndpoint, len(es)), NextCursor: nextCursor(next)}
	for i := range es {
		out.Webhooks[i] = apiWebhook(&es[i])
	}
	return out
}

func apiDeliveries(as []domain.WebhookAttempt, next *domain.Cursor) api.WebhookDeliveryList {
	out := api.WebhookDeliveryList{Deliveries: make([]api.WebhookDelivery, len(as)), NextCursor: nextCursor(next)}
	for i, a := range as {
		d := api.WebhookDelivery{MessageId: a.EventID, EventType: a.EventType, Attempt: a.Attempt, LatencyMs: a.Latency.Milliseconds(),
			ResponseExcerpt: a.ResponseExcerpt, Error: a.Error, AttemptedAt: a.AttemptedAt}
		if a.StatusCode != 0 {
			sc := a.StatusCode
			d.StatusCode = &sc
		}
		out.Deliveries[i] = d
	}
	return out
}

func webhookInput(url *string, types *[]string, desc *string, enabled *bool) service.WebhookInput {
	return service.WebhookInput{URL: url, EventTypes: types, Description: desc, Enabled: enabled}
}

func (s *Server) listWebhooks(ctx context.Context, org *uuid.UUID, limit *int, cursor *string) (api.WebhookEndpointList, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookEndpointList{}, err
	}
	page, err := pageRequest(limit, cursor)
	if err != nil {
		return api.WebhookEndpointList{}, err
	}
	es, next, err := s.webhooks.List(ctx, p, org, page)
	if err != nil {
		return api.WebhookEndpointList{}, err
	}
	return apiWebhookList(es, next), nil
}

func (s *Server) createWebhook(ctx context.Context, org *uuid.UUID, b *api.CreateWebhookRequest) (api.WebhookEndpointWithSecret, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookEndpointWithSecret{}, err
	}
	e, secret, err := s.webhooks.Create(ctx, p, org, webhookInput(&b.Url, b.EventTypes, b.Description, b.Enabled))
	if err != nil {
		return api.WebhookEndpointWithSecret{}, err
	}
	return apiWebhookWithSecret(e, secret), nil
}

func (s *Server) getWebhook(ctx context.Context, org *uuid.UUID, id uuid.UUID) (api.WebhookEndpoint, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookEndpoint{}, err
	}
	e, err := s.webhooks.Get(ctx, p, org, id)
	if err != nil {
		return api.WebhookEndpoint{}, err
	}
	return apiWebhook(e), nil
}

func (s *Server) updateWebhook(ctx context.Context, org *uuid.UUID, id uuid.UUID, b *api.UpdateWebhookRequest) (api.WebhookEndpoint, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookEndpoint{}, err
	}
	e, err := s.webhooks.Update(ctx, p, org, id, webhookInput(b.Url, b.EventTypes, b.Description, b.Enabled))
	if err != nil {
		return api.WebhookEndpoint{}, err
	}
	return apiWebhook(e), nil
}

func (s *Server) deleteWebhook(ctx context.Context, org *uuid.UUID, id uuid.UUID) error {
	p, err := principalFrom(ctx)
	if err != nil {
		return err
	}
	return s.webhooks.Delete(ctx, p, org, id)
}

func (s *Server) rotateWebhookSecret(ctx context.Context, org *uuid.UUID, id uuid.UUID) (api.WebhookSecret, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookSecret{}, err
	}
	secret, until, err := s.webhooks.RotateSecret(ctx, p, org, id)
	if err != nil {
		return api.WebhookSecret{}, err
	}
	return api.WebhookSecret{Secret: secret, PreviousValidUntil: until}, nil
}

func (s *Server) listWebhookDeliveries(ctx context.Context, org *uuid.UUID, id uuid.UUID, limit *int, cursor *string) (api.WebhookDeliveryList, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return api.WebhookDeliveryList{}, err
	}
	page, err := pageRequest(limit, cursor)
	if err != nil {
		return api.WebhookDeliveryList{}, err
	}
	as, next, err := s.webhooks.Deliveries(ctx, p, org, id, page)
	if err != nil {
		return api.WebhookDeliveryList{}, err
	}
	return apiDeliveries(as, next), nil
}

func (s *Server) redeliverWebhookMessage(ctx context.Context, org *uuid.UUID, id, msg uuid.UUID) error {
	p, err := principalFrom(ctx)
	if err != nil {
		return err
	}
	return s.webhooks.Redeliver(ctx, p, org, id, msg)
}

func (s *Server) testWebhook(ctx context.Context, org *uuid.UUID, id uuid.UUID) error {
	p, err := principalFrom(ctx)
	if err != nil {
		return err
	}
	return s.webhooks.Test(ctx, p, org, id)
}

// ListAdminWebhooks lists the operators' webhook endpoints.
func (s *Server) ListAdminWebhooks(ctx context.Context, req api.ListAdminWebhooksRequestObject) (api.ListAdminWebhooksResponseObject, error) {
	l, err := s.listWebhooks(ctx, nil, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListAdminWebhooks200JSONResponse(l), nil
}

// CreateAdminWebhook registers one of the operators' webhook endpoints.
func (s *Server) CreateAdminWebhook(ctx context.Context, req api.CreateAdminWebhookRequestObject) (api.CreateAdminWebhookResponseObject, error) {
	e, err := s.createWebhook(ctx, nil, req.Body)
	if err != nil {
		return nil, err
	}
	return api.CreateAdminWebhook201JSONResponse(e), nil
}

// GetAdminWebhook returns one of the operators' webhook endpoints.
func (s *Server) GetAdminWebhook(ctx context.Context, req api.GetAdminWebhookRequestObject) (api.GetAdminWebhookResponseObject, error) {
	e, err := s.getWebhook(ctx, nil, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return api.GetAdminWebhook200JSONResponse(e), nil
}

// UpdateAdminWebhook changes one of the operators' webhook endpoints.
func (s *Server) UpdateAdminWebhook(ctx context.Context, req api.UpdateAdminWebhookRequestObject) (api.UpdateAdminWebhookResponseObject, error) {
	e, err := s.updateWebhook(ctx, nil, req.WebhookId, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UpdateAdminWebhook200JSONResponse(e), nil
}

// DeleteAdminWebhook deletes one of the operators' webhook endpoints.
func (s *Server) DeleteAdminWebhook(ctx context.Context, req api.DeleteAdminWebhookRequestObject) (api.DeleteAdminWebhookResponseObject, error) {
	if err := s.deleteWebhook(ctx, nil, req.WebhookId); err != nil {
		return nil, err
	}
	return api.DeleteAdminWebhook204Response{}, nil
}

// RotateAdminWebhookSecret replaces the secret of one of the operators' endpoints.
func (s *Server) RotateAdminWebhookSecret(ctx context.Context, req api.RotateAdminWebhookSecretRequestObject) (api.RotateAdminWebhookSecretResponseObject, error) {
	sec, err := s.rotateWebhookSecret(ctx, nil, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return api.RotateAdminWebhookSecret200JSONResponse(sec), nil
}

// ListAdminWebhookDeliveries lists the attempts of one of the operators' endpoints.
func (s *Server) ListAdminWebhookDeliveries(ctx context.Context, req api.ListAdminWebhookDeliveriesRequestObject) (api.ListAdminWebhookDeliveriesResponseObject, error) {
	l, err := s.listWebhookDeliveries(ctx, nil, req.WebhookId, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListAdminWebhookDeliveries200JSONResponse(l), nil
}

// RedeliverAdminWebhookMessage sends a message to one of the operators' endpoints again.
func (s *Server) RedeliverAdminWebhookMessage(ctx context.Context, req api.RedeliverAdminWebhookMessageRequestObject) (api.RedeliverAdminWebhookMessageResponseObject, error) {
	if err := s.redeliverWebhookMessage(ctx, nil, req.WebhookId, req.MessageId); err != nil {
		return nil, err
	}
	return api.RedeliverAdminWebhookMessage202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// TestAdminWebhook sends a webhook.test message to one of the operators' endpoints.
func (s *Server) TestAdminWebhook(ctx context.Context, req api.TestAdminWebhookRequestObject) (api.TestAdminWebhookResponseObject, error) {
	if err := s.testWebhook(ctx, nil, req.WebhookId); err != nil {
		return nil, err
	}
	return api.TestAdminWebhook202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// ListOrgWebhooks lists an organization's webhook endpoints.
func (s *Server) ListOrgWebhooks(ctx context.Context, req api.ListOrgWebhooksRequestObject) (api.ListOrgWebhooksResponseObject, error) {
	l, err := s.listWebhooks(ctx, &req.OrgId, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListOrgWebhooks200JSONResponse(l), nil
}

// CreateOrgWebhook registers one of an organization's webhook endpoints.
func (s *Server) CreateOrgWebhook(ctx context.Context, req api.CreateOrgWebhookRequestObject) (api.CreateOrgWebhookResponseObject, error) {
	e, err := s.createWebhook(ctx, &req.OrgId, req.Body)
	if err != nil {
		return nil, err
	}
	return api.CreateOrgWebhook201JSONResponse(e), nil
}

// GetOrgWebhook returns one of an organization's webhook endpoints.
func (s *Server) GetOrgWebhook(ctx context.Context, req api.GetOrgWebhookRequestObject) (api.GetOrgWebhookResponseObject, error) {
	e, err := s.getWebhook(ctx, &req.OrgId, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return api.GetOrgWebhook200JSONResponse(e), nil
}

// UpdateOrgWebhook changes one of an organization's webhook endpoints.
func (s *Server) UpdateOrgWebhook(ctx context.Context, req api.UpdateOrgWebhookRequestObject) (api.UpdateOrgWebhookResponseObject, error) {
	e, err := s.updateWebhook(ctx, &req.OrgId, req.WebhookId, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UpdateOrgWebhook200JSONResponse(e), nil
}

// DeleteOrgWebhook deletes one of an organization's webhook endpoints.
func (s *Server) DeleteOrgWebhook(ctx context.Context, req api.DeleteOrgWebhookRequestObject) (api.DeleteOrgWebhookResponseObject, error) {
	if err := s.deleteWebhook(ctx, &req.OrgId, req.WebhookId); err != nil {
		return nil, err
	}
	return api.DeleteOrgWebhook204Response{}, nil
}

// RotateOrgWebhookSecret replaces the secret of one of an organization's endpoints.
func (s *Server) RotateOrgWebhookSecret(ctx context.Context, req api.RotateOrgWebhookSecretRequestObject) (api.RotateOrgWebhookSecretResponseObject, error) {
	sec, err := s.rotateWebhookSecret(ctx, &req.OrgId, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return api.RotateOrgWebhookSecret200JSONResponse(sec), nil
}

// ListOrgWebhookDeliveries lists the attempts of one of an organization's endpoints.
func (s *Server) ListOrgWebhookDeliveries(ctx context.Context, req api.ListOrgWebhookDeliveriesRequestObject) (api.ListOrgWebhookDeliveriesResponseObject, error) {
	l, err := s.listWebhookDeliveries(ctx, &req.OrgId, req.WebhookId, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListOrgWebhookDeliveries200JSONResponse(l), nil
}

// RedeliverOrgWebhookMessage sends a message to one of an organization's endpoints again.
func (s *Server) RedeliverOrgWebhookMessage(ctx context.Context, req api.RedeliverOrgWebhookMessageRequestObject) (api.RedeliverOrgWebhookMessageResponseObject, error) {
	if err := s.redeliverWebhookMessage(ctx, &req.OrgId, req.WebhookId, req.MessageId); err != nil {
		return nil, err
	}
	return api.RedeliverOrgWebhookMessage202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// TestOrgWebhook sends a webhook.test message to one of an organization's endpoints.
func (s *Server) TestOrgWebhook(ctx context.Context, req api.TestOrgWebhookRequestObject) (api.TestOrgWebhookResponseObject, error) {
	if err := s.testWebhook(ctx, &req.OrgId, req.WebhookId); err != nil {
		return nil, err
	}
	return api.TestOrgWebhook202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}
