package service

import (
	"context"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// EventStore is the storage that listing security events needs; the SQL
// store implements it. Its methods return an error only for a storage
// failure.
type EventStore interface {
	// ListEvents returns up to limit events of the user created before the
	// cursor (the zero cursor means from the newest), newest first.
	ListEvents(ctx context.Context, userID uuid.UUID, before domain.EventCursor, limit int) ([]domain.Event, error)
	outboundStore
}
