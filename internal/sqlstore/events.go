package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

type eventRow struct {
	ID        uuid.UUID     `db:"id"`
	Type      string        `db:"type"`
	UserID    uuid.NullUUID `db:"user_id"`
	SessionID uuid.NullUUID `db:"session_id"`
	KeyID     uuid.NullUUID `db:"key_id"`
	IP        string        `db:"ip"`
	UserAgent string        `db:"user_agent"`
	Detail    []byte        `db:"detail"`
	CreatedAt ts            `db:"created_at"`
}

func ptrUUID(n uuid.NullUUID) *uuid.UUID {
	if !n.Valid {
		return nil
	}
	id := n.UUID
	return &id
}

// RecordEvent appends an event.
func (s *Store) RecordEvent(ctx context.Context, e *domain.Event) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return err
		}
		detail = b
	}
	_, err := s.exec(ctx, `INSERT INTO security_events (id, type, user_id, session_id, key_id, ip, user_agent, detail, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Type, nullUUID(e.UserID), nullUUID(e.SessionID), nullUUID(e.KeyID), e.IP, e.UserAgent, string(detail), ts(e.CreatedAt))
	return translate(err)
}

// ListEvents returns up to limit events of the user created before the
// cursor, newest first.
func (s *Store) ListEvents(ctx context.Context, userID uuid.UUID, before domain.EventCursor, limit int) ([]domain.Event, error) {
	var rows []eventRow
	const cols = `id, type, user_id, session_id, key_id, ip, user_agent, detail, created_at`
	var after *domain.Cursor
	if !before.CreatedAt.IsZero() {
		after = &before
	}
	pc, pargs := pageCond(after, true)
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT `+cols+` FROM security_events WHERE user_id = ?`+pc+`
		ORDER BY created_at DESC, id DESC LIMIT ?`), append(append([]any{userID}, pargs...), limit)...)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]domain.Event, len(rows))
	for i, r := range rows {
		e := domain.Event{ID: r.ID, Type: r.Type, UserID: ptrUUID(r.UserID), SessionID: ptrUUID(r.SessionID), KeyID: ptrUUID(r.KeyID),
			IP: r.IP, UserAgent: r.UserAgent, CreatedAt: time.Time(r.CreatedAt)}
		if len(r.Detail) > 0 {
			_ = json.Unmarshal(r.Detail, &e.Detail)
		}
		out[i] = e
	}
	return out, nil
}
