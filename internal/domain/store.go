package domain

import (
	"time"

	"github.com/google/uuid"
)

// Cursor marks a position in a list ordered by creation time and id. Every
// list of the API pages with one.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// EventCursor marks a position in a user's event list.
type EventCursor = Cursor
