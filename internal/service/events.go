package service

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Event page sizes.
const (
	DefaultEventLimit = 50
	MaxEventLimit     = 200
)

// eventCursorLen is the length of an encoded cursor: 8 bytes of creation
// time (Unix microseconds) and the 16-byte event id, in unpadded base64url.
var eventCursorLen = base64.RawURLEncoding.EncodedLen(8 + 16)

// EncodeEventCursor returns the opaque cursor of a position in an event
// list.
func EncodeEventCursor(c domain.EventCursor) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(c.CreatedAt.UnixMicro()))
	b = append(b, c.ID[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeEventCursor parses a cursor that EncodeEventCursor returned.
// Returns CodeInvalidRequest for anything else.
func DecodeEventCursor(s string) (domain.EventCursor, error) {
	bad := domain.Errorf(domain.CodeInvalidRequest, "the before cursor is malformed")
	if len(s) != eventCursorLen {
		return domain.EventCursor{}, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 24 {
		return domain.EventCursor{}, bad
	}
	us := int64(binary.BigEndian.Uint64(b[:8]))
	if us <= 0 {
		return domain.EventCursor{}, bad
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return domain.EventCursor{}, bad
	}
	return domain.EventCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// ListEvents returns a page of the principal's own security events, newest
// first, starting after the cursor before ("" for the newest), and the
// cursor of the next page ("" on the last page). limit is clamped to 1..200
// (0 means 50). Returns CodeInvalidRequest for a malformed cursor.
func (s *Service) ListEvents(ctx context.Context, p *domain.Principal, limit int, before string) ([]domain.Event, string, error) {
	if p.UserID == uuid.Nil {
		return nil, "", domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user")
	}
	switch {
	case limit == 0:
		limit = DefaultEventLimit
	case limit < 1:
		limit = 1
	case limit > MaxEventLimit:
		limit = MaxEventLimit
	}
	var cur domain.EventCursor
	if before != "" {
		var err error
		if cur, err = DecodeEventCursor(before); err != nil {
			return nil, "", err
		}
	}
	evs, err := s.store.ListEvents(ctx, p.UserID, cur, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(evs) > limit {
		evs = evs[:limit]
		last := evs[len(evs)-1]
		next = EncodeEventCursor(domain.EventCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return evs, next, nil
}
