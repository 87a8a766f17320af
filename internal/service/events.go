package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// ListEvents returns a page of the principal's own security events, newest
// first. Returns CodeInsufficientPermissions for an organization key.
func (s *Service) ListEvents(ctx context.Context, p *domain.Principal, page PageRequest) ([]domain.Event, *domain.Cursor, error) {
	if p.UserID == uuid.Nil {
		return nil, nil, domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user")
	}
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.Event, error) {
		var cur domain.Cursor
		if after != nil {
			cur = *after
		}
		return s.store.ListEvents(ctx, p.UserID, cur, limit)
	}, func(e *domain.Event) domain.Cursor { return domain.Cursor{CreatedAt: e.CreatedAt, ID: e.ID} })
}
