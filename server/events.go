package server

import (
	"context"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
)

// ListEvents returns a page of the caller's own security events.
func (s *Server) ListEvents(ctx context.Context, req api.ListEventsRequestObject) (api.ListEventsResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	cursor := req.Params.Cursor
	if cursor == nil {
		cursor = req.Params.Before // its earlier name
	}
	page, err := pageRequest(req.Params.Limit, cursor)
	if err != nil {
		return nil, err
	}
	evs, next, err := s.events.ListEvents(ctx, p, page)
	if err != nil {
		return nil, err
	}
	return api.ListEvents200JSONResponse{Events: convertAll(evs, apiEvent), NextCursor: nextCursor(next)}, nil
}

func apiEvent(e *domain.Event) api.Event {
	out := api.Event{Id: e.ID, Type: api.EventType(e.Type), CreatedAt: e.CreatedAt,
		SessionId: e.SessionID, KeyId: e.KeyID, Ip: strPtr(e.IP), UserAgent: strPtr(e.UserAgent)}
	if len(e.Detail) > 0 {
		d := e.Detail
		out.Detail = &d
	}
	return out
}
