package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// emit writes an outbound event inside the transaction that makes the
// change it tells of: a webhook or a feed reader sees it exactly when that
// change committed, never before and never lost after. Every store method
// whose change has an outbound event type calls it, with the transaction
// it opened.
func (s *Store) emit(ctx context.Context, tx *sqlx.Tx, e *domain.OutboundEvent) error {
	if e.ID == uuid.Nil {
		e.ID = uuid.New()
	}
	data := []byte("{}")
	if len(e.Data) > 0 {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		data = b
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO outbound_events (id, type, org_id, user_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		e.ID, e.Type, nullUUID(e.OrgID), nullUUID(e.UserID), string(data), ts(e.CreatedAt))
	return err
}
