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
// it opened. In the same transaction it queues the event's webhook
// messages (fanOutWebhooks), so a message exists exactly when the change
// committed too. It sets e.Seq.
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
	if err := tx.GetContext(ctx, &e.Seq, s.q(`INSERT INTO outbound_events (id, type, org_id, user_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`),
		e.ID, e.Type, nullUUID(e.OrgID), nullUUID(e.UserID), string(data), ts(e.CreatedAt)); err != nil {
		return err
	}
	return s.fanOutWebhooks(ctx, tx, e, data)
}

// EmitEvent writes an outbound event that is no store change's, in its own
// transaction, with its webhook messages (tools and tests; a change emits
// through emit, in its transaction).
func (s *Store) EmitEvent(ctx context.Context, e *domain.OutboundEvent) error {
	return s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.emit(ctx, tx, e) })
}
