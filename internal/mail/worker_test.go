package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
	"github.com/latchauth/latch/internal/token"
)

// outbox is a worker over a real store with a test clock and a
// switchable transport.
type outbox struct {
	store  *sqlstore.Store
	clock  *testutil.Clock
	sealer *token.Sealer
	worker *mail.Worker
	logs   *bytes.Buffer

	mu   sync.Mutex
	sent []*mail.Message
	down bool
}

func (o *outbox) Send(_ context.Context, m *mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		return errors.New("421 service not available")
	}
	o.sent = append(o.sent, m)
	return nil
}

func (o *outbox) setDown(d bool) { o.mu.Lock(); o.down = d; o.mu.Unlock() }

func (o *outbox) delivered() int { o.mu.Lock(); defer o.mu.Unlock(); return len(o.sent) }

func newOutbox(t *testing.T, dialect string, cfg mail.WorkerConfig) *outbox {
	t.Helper()
	u := testutil.DatabaseURL(t, dialect)
	st, err := sqlstore.Open(context.Background(), u, testutil.StoreOptions(t, dialect, u))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	sealer, err := token.NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")
	if err != nil {
		t.Fatal(err)
	}
	r, err := mail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	o := &outbox{store: st, clock: testutil.NewClock(), sealer: sealer, logs: &bytes.Buffer{}}
	cfg.From = "Latch <no-reply@example.com>"
	o.worker = mail.NewWorker(cfg, mail.WorkerDeps{Store: st, Opener: sealer, Renderer: r, Transport: o, Clock: o.clock,
		Log: slog.New(slog.NewTextHandler(o.logs, nil))})
	return o
}

func (o *outbox) enqueue(t *testing.T, to string, ttl time.Duration) uuid.UUID {
	t.Helper()
	now := o.clock.Now()
	id := uuid.New()
	exp := now.Add(ttl)
	b, _ := json.Marshal(domain.MailData{Email: to, Link: "https://app.example.com/r#token=" + id.String(), ExpiresAt: exp, TTL: ttl})
	sealed, err := o.sealer.Seal(b, domain.OutboxPayloadLabel(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.store.EnqueueMail(context.Background(), &domain.OutboxMessage{ID: id, Template: domain.PurposePasswordReset,
		Recipient: to, Payload: sealed, CreatedAt: now, NextAttemptAt: now, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestWorkerRetriesWithBackoffUntilSent(t *testing.T) {
	for _, d := range testutil.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			o := newOutbox(t, d, mail.WorkerConfig{MaxAttempts: 5, RetryBase: time.Minute, RetryMax: 10 * time.Minute})
			ctx := context.Background()
			o.enqueue(t, "ada@example.com", 24*time.Hour)
			o.setDown(true)
			for attempt, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
				if n, err := o.worker.RunOnce(ctx); err != nil || n != 1 {
					t.Fatalf("attempt %d: claimed %d, %v", attempt+1, n, err)
				}
				// Not due again before its backoff...
				o.clock.Advance(wait - time.Second)
				if n, _ := o.worker.RunOnce(ctx); n != 0 {
					t.Fatalf("attempt %d: retried before the backoff of %v", attempt+1, wait)
				}
				// ...and due after it (plus at most 10% jitter).
				o.clock.Advance(wait/10 + 2*time.Second)
			}
			o.setDown(false)
			if n, err := o.worker.RunOnce(ctx); err != nil || n != 1 || o.delivered() != 1 {
				t.Fatalf("after the server came back: claimed %d, delivered %d, %v", n, o.delivered(), err)
			}
			m := o.sent[0]
			if m.To != "ada@example.com" || m.From != "Latch <no-reply@example.com>" || !strings.Contains(m.Text, "https://app.example.com/r#token=") {
				t.Fatalf("message %+v", m)
			}
			if n, _ := o.worker.Drain(ctx); n != 0 {
				t.Fatal("sent twice")
			}
			mt := o.worker.Metrics()
			if mt.Retried.Value() != 3 || mt.Sent.Value() != 1 || mt.Claimed.Value() != 4 || mt.Abandoned.Value() != 0 {
				t.Fatalf("metrics %s", mt.Var())
			}
			if !strings.Contains(o.logs.String(), "will retry") {
				t.Fatal("retries are not logged")
			}
		})
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	o := newOutbox(t, "sqlite", mail.WorkerConfig{MaxAttempts: 3, RetryBase: time.Second, RetryMax: time.Second})
	ctx := context.Background()
	id := o.enqueue(t, "gone@example.com", 24*time.Hour)
	o.setDown(true)
	for range 3 {
		if n, _ := o.worker.RunOnce(ctx); n != 1 {
			t.Fatal("not claimed")
		}
		o.clock.Advance(2 * time.Second)
	}
	o.setDown(false)
	o.clock.Advance(time.Hour)
	if n, _ := o.worker.Drain(ctx); n != 0 || o.delivered() != 0 {
		t.Fatal("an abandoned mail was sent")
	}
	var lastErr string
	var wiped bool
	if err := o.store.DB().QueryRow(`SELECT last_error, payload IS NULL FROM mail_outbox WHERE id = ? AND failed_at IS NOT NULL`, id.String()).Scan(&lastErr, &wiped); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lastErr, "421") || !wiped {
		t.Fatalf("abandoned row: %q, wiped %v", lastErr, wiped)
	}
	if o.worker.Metrics().Abandoned.Value() != 1 || !strings.Contains(o.logs.String(), "abandoned after the last attempt") {
		t.Fatalf("abandonment not counted or logged: %s", o.worker.Metrics().Var())
	}
}

func TestWorkerDropsMailWhoseLinkExpired(t *testing.T) {
	o := newOutbox(t, "sqlite", mail.WorkerConfig{RetryBase: time.Hour})
	ctx := context.Background()
	o.enqueue(t, "late@example.com", 30*time.Minute)
	o.setDown(true)
	_, _ = o.worker.RunOnce(ctx)
	o.setDown(false)
	o.clock.Advance(2 * time.Hour)
	if n, _ := o.worker.RunOnce(ctx); n != 1 || o.delivered() != 0 {
		t.Fatalf("claimed %d, delivered %d: a dead link was mailed", n, o.delivered())
	}
	if o.worker.Metrics().Expired.Value() != 1 {
		t.Fatal("not counted")
	}
}

func TestWorkerRefusesAPayloadMovedToAnotherRow(t *testing.T) {
	o := newOutbox(t, "sqlite", mail.WorkerConfig{MaxAttempts: 1})
	ctx := context.Background()
	a := o.enqueue(t, "a@example.com", time.Hour)
	b := o.enqueue(t, "b@example.com", time.Hour)
	// Someone with write access copies a's payload (and its link) into b.
	if _, err := o.store.DB().Exec(`UPDATE mail_outbox SET payload = (SELECT payload FROM mail_outbox WHERE id = ?) WHERE id = ?`, a.String(), b.String()); err != nil {
		t.Fatal(err)
	}
	_, _ = o.worker.Drain(ctx)
	if o.delivered() != 1 || o.sent[0].To != "a@example.com" {
		t.Fatalf("delivered %d", o.delivered())
	}
}

func TestWorkerRunWakesOnNotify(t *testing.T) {
	o := newOutbox(t, "sqlite", mail.WorkerConfig{Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.worker.Run(ctx); close(done) }()
	o.enqueue(t, "now@example.com", time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for o.delivered() == 0 && time.Now().Before(deadline) {
		o.worker.Notify()
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if o.delivered() != 1 {
		t.Fatalf("delivered %d", o.delivered())
	}
}
