package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/testutil"
)

// TestWebhookSurvivesKill9: a latchd killed with SIGKILL while it delivers
// a message loses nothing: another latchd on the same PostgreSQL database
// delivers the message, with the same webhook-id, once the dead one's lease
// has run out.
func TestWebhookSurvivesKill9(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	ctx := context.Background()
	// The receiver holds its first request until the test ends and
	// answers the later ones 200.
	var mu sync.Mutex
	var ids []string
	first := make(chan struct{})
	release := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		n := len(ids)
		mu.Unlock()
		if n == 1 {
			close(first)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	defer close(release)

	// The endpoint and its message, written as a change would.
	st, err := app.Open(ctx, testutil.Config(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	ep := &domain.WebhookEndpoint{ID: uuid.New(), URL: rcv.URL, Enabled: true, Secret: []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
		CreatedAt: now, UpdatedAt: now}
	if err := st.CreateWebhookEndpoint(ctx, ep, 0); err != nil {
		t.Fatal(err)
	}
	ev := &domain.OutboundEvent{ID: uuid.New(), Type: domain.OutUserCreated, CreatedAt: now}
	if err := st.EmitEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}

	// A two-second timeout makes the lease twelve seconds.
	start := func() (*exec.Cmd, chan struct{}) {
		cmd := exec.Command(os.Args[0], "serve", "-addr", freeAddr(t), "-database-url", dbURL, "-log-level", "error")
		cmd.Env = append(os.Environ(), "LATCH_TEST_AS_LATCHD=1", "LATCH_WEBHOOK_ALLOW_PRIVATE=true", "LATCH_WEBHOOK_TIMEOUT=2s")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
		})
		return cmd, done
	}
	a, aDone := start()
	select {
	case <-first:
	case <-aDone:
		t.Fatal("the first latchd exited")
	case <-time.After(30 * time.Second):
		t.Fatal("the first latchd did not deliver")
	}
	if err := a.Process.Kill(); err != nil { // SIGKILL: no shutdown, no outcome recorded
		t.Fatal(err)
	}
	<-aDone
	start()
	var delivered bool
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !delivered {
		time.Sleep(250 * time.Millisecond)
		var at *time.Time
		if err := st.DB().QueryRowContext(ctx, `SELECT delivered_at FROM webhook_messages WHERE event_id = $1`, ev.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		delivered = at != nil
	}
	if !delivered {
		t.Fatal("the message was not delivered after the first latchd was killed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 2 || ids[0] != ev.ID.String() || ids[1] != ev.ID.String() {
		t.Fatalf("requests' webhook-ids %v, want the event's id twice", ids)
	}
}
