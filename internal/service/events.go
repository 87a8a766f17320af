package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Events lists users' security events. Recording them is the shared
// EventLog's (every feature records through it); this is the reading side.
// It is safe for concurrent use.
type Events struct {
	store EventStore
}

// NewEvents returns the security-event listing service.
func NewEvents(store EventStore) *Events { return &Events{store: store} }

// ListEvents returns a page of the principal's own security events, newest
// first. Returns CodeInsufficientPermissions for an organization key.
func (e *Events) ListEvents(ctx context.Context, p *domain.Principal, page PageRequest) ([]domain.Event, *domain.Cursor, error) {
	if p.UserID == uuid.Nil {
		return nil, nil, domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user")
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Event, error) {
		var cur domain.Cursor
		if after != nil {
			cur = *after
		}
		return e.store.ListEvents(ctx, p.UserID, cur, limit)
	}, func(x *domain.Event) domain.Cursor { return domain.Cursor{CreatedAt: x.CreatedAt, ID: x.ID} })
}
