package service

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// The page sizes of every list.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// PageRequest asks for one page of a list: at most Limit items (0: the
// default) after the cursor (nil: from the start).
type PageRequest struct {
	Limit int
	After *domain.Cursor
}

// listPage reads one page through fetch, asking for one item more than the
// page holds to learn whether another page follows, and returns the page
// with the cursor of the next one (nil on the last page). Returns
// CodeInvalidRequest for a limit out of range.
func listPage[T any](page PageRequest, fetch func(after *domain.Cursor, limit int) ([]T, error), pos func(*T) domain.Cursor) ([]T, *domain.Cursor, error) {
	limit := page.Limit
	if limit == 0 {
		limit = DefaultPageLimit
	}
	if limit < 1 || limit > MaxPageLimit {
		return nil, nil, domain.Errorf(domain.CodeInvalidRequest, "limit must be between 1 and %d", MaxPageLimit)
	}
	items, err := fetch(page.After, limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(items) <= limit {
		return items, nil, nil
	}
	items = items[:limit]
	next := pos(&items[limit-1])
	return items, &next, nil
}

// cursorLen is the length of an encoded cursor: 8 bytes of creation time
// (Unix microseconds) and the 16-byte id, in unpadded base64url.
var cursorLen = base64.RawURLEncoding.EncodedLen(8 + 16)

// EncodeCursor returns the opaque form of a position in a list, as the
// API's next_cursor.
func EncodeCursor(c domain.Cursor) string {
	b := make([]byte, 8, 24)
	binary.BigEndian.PutUint64(b, uint64(c.CreatedAt.UnixMicro()))
	b = append(b, c.ID[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses what EncodeCursor returned; "" is the first page
// (nil). Returns CodeInvalidRequest for anything else.
func DecodeCursor(s string) (*domain.Cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := domain.Errorf(domain.CodeInvalidRequest, "the cursor is malformed")
	if len(s) != cursorLen {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 24 {
		return nil, bad
	}
	us := int64(binary.BigEndian.Uint64(b[:8]))
	if us <= 0 {
		return nil, bad
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return nil, bad
	}
	return &domain.Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}
