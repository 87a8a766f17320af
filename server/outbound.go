package server

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// ListOutboundEvents returns a page of the whole outbound events feed; the
// validator lets only operators call it (its scope is admin:events:read).
func (s *Server) ListOutboundEvents(ctx context.Context, req api.ListOutboundEventsRequestObject) (api.ListOutboundEventsResponseObject, error) {
	if _, err := principalFrom(ctx); err != nil {
		return nil, err
	}
	f := outboundFilter(req.Params.After, req.Params.Limit, req.Params.Types)
	f.OrgID = req.Params.OrgId
	page, err := s.events.ListOutboundEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	out, err := apiOutboundPage(page)
	if err != nil {
		return nil, err
	}
	return api.ListOutboundEvents200JSONResponse(out), nil
}

// ListOrgOutboundEvents returns a page of the organization's outbound
// events (events:read in the organization).
func (s *Server) ListOrgOutboundEvents(ctx context.Context, req api.ListOrgOutboundEventsRequestObject) (api.ListOrgOutboundEventsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.orgs.ListOrgOutboundEvents(ctx, p, req.OrgId, outboundFilter(req.Params.After, req.Params.Limit, req.Params.Types))
	if err != nil {
		return nil, err
	}
	out, err := apiOutboundPage(page)
	if err != nil {
		return nil, err
	}
	return api.ListOrgOutboundEvents200JSONResponse(out), nil
}

func outboundFilter(after *int64, limit *int, types *[]api.OutboundEventType) domain.OutboundFilter {
	var f domain.OutboundFilter
	if after != nil {
		f.After = *after
	}
	if limit != nil {
		f.Limit = *limit
	}
	if types != nil {
		for _, t := range *types {
			f.Types = append(f.Types, string(t))
		}
	}
	return f
}

func apiOutboundPage(p *service.OutboundPage) (api.OutboundEventPage, error) {
	out := api.OutboundEventPage{Events: make([]api.OutboundEvent, len(p.Events)), NextCursor: p.Next, HasMore: p.More}
	for i := range p.Events {
		e, err := apiOutboundEvent(&p.Events[i])
		if err != nil {
			return out, err
		}
		out.Events[i] = e
	}
	return out, nil
}

// outboundJSON is an outbound event as the spec's OutboundEvent shows it:
// the envelope and the payload its type declares.
type outboundJSON struct {
	ID        uuid.UUID      `json:"id"`
	Seq       int64          `json:"seq"`
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	OrgID     *uuid.UUID     `json:"org_id,omitempty"`
	UserID    *uuid.UUID     `json:"user_id,omitempty"`
	Data      map[string]any `json:"data"`
}

// apiOutboundEvent is the event as the generated union holds it (its JSON).
func apiOutboundEvent(e *domain.OutboundEvent) (api.OutboundEvent, error) {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	b, err := json.Marshal(outboundJSON{ID: e.ID, Seq: e.Seq, Type: e.Type, Timestamp: e.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00"),
		OrgID: e.OrgID, UserID: e.UserID, Data: data})
	var out api.OutboundEvent
	if err == nil {
		err = out.UnmarshalJSON(b)
	}
	return out, err
}
