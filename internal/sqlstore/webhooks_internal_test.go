package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// A webhook message exists exactly when the change that emitted its event
// committed: emit's fan-out is in the change's transaction, so a change
// that rolls back leaves neither the event nor a message, and a committed
// one leaves one message per enabled endpoint that wants the type.
func TestWebhookMessagesExistIffTheChangeCommitted(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "w.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, e := range []*domain.WebhookEndpoint{
		{ID: uuid.New(), URL: "https://a.example.com", Enabled: true},
		{ID: uuid.New(), URL: "https://b.example.com", Enabled: true, EventTypes: []string{domain.OutUserCreated, domain.OutUserDeleted}},
		{ID: uuid.New(), URL: "https://c.example.com", Enabled: true, EventTypes: []string{domain.OutUserDeleted}},
		{ID: uuid.New(), URL: "https://d.example.com", Enabled: false},
	} {
		e.Secret, e.CreatedAt, e.UpdatedAt = []byte("whsec_x"), now, now
		if err := s.CreateWebhookEndpoint(ctx, e, 0); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) int {
		var n int
		if err := s.db.Get(&n, `SELECT COUNT(*) FROM `+table); err != nil {
			t.Fatal(err)
		}
		return n
	}
	boom := errors.New("the change failed after emitting")
	err = s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutUserCreated, CreatedAt: now}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if e, m := count("outbound_events"), count("webhook_messages"); e != 0 || m != 0 {
		t.Fatalf("a rolled-back change left %d events and %d messages", e, m)
	}
	if err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return s.emit(ctx, tx, &domain.OutboundEvent{Type: domain.OutUserCreated, CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	// a (every type) and b (user.created among its types); not c, not the
	// disabled d.
	if e, m := count("outbound_events"), count("webhook_messages"); e != 1 || m != 2 {
		t.Fatalf("a committed change left %d events and %d messages, want 1 and 2", e, m)
	}
}
