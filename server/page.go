package server

import (
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// pageRequest turns a list operation's limit and cursor parameters into a
// page request. Returns CodeInvalidRequest for a malformed cursor.
func pageRequest(limit *int, cursor *string) (service.PageRequest, error) {
	var p service.PageRequest
	if limit != nil {
		p.Limit = *limit
	}
	if cursor != nil {
		after, err := service.DecodeCursor(*cursor)
		if err != nil {
			return p, err
		}
		p.After = after
	}
	return p, nil
}

// nextCursor is a list response's next_cursor: absent on the last page.
func nextCursor(c *domain.Cursor) *string {
	if c == nil {
		return nil
	}
	s := service.EncodeCursor(*c)
	return &s
}
