package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/latchauth/latch/internal/sqlstore"
)

// listener is a store's Listen with what it hears on channels.
type listener struct {
	applied chan string    // "topic:id"
	sent    chan time.Time // send times of other instances' changes
	up      chan bool
}

func listen(t *testing.T, s *sqlstore.Store) *listener {
	t.Helper()
	l := &listener{applied: make(chan string, 16), sent: make(chan time.Time, 16), up: make(chan bool, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, func(topic, id string) { l.applied <- topic + ":" + id },
			func(at time.Time) { l.sent <- at }, func(up bool) { l.up <- up })
	}()
	t.Cleanup(func() { cancel(); <-done })
	for !recv(t, l.up, "connected") {
	}
	return l
}

// recv returns the next value of c; the deadline only keeps a broken
// build from hanging.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// The topics a release before send times acts on; it reads every payload
// as "topic:id" and ignores any other topic.
var oldTopics = map[string]bool{"session": true, "key": true, "user": true, "signing-keys": true}

// TestNotificationsCarryTheSendTime: a published change reaches another
// instance with its send time to the microsecond (for the notification
// lag), its own instance without one, and an instance of the release
// before send times with the same "topic:id" payload it always read (the
// send time comes as a topic it ignores). A change from such an older
// instance, without a send time, is applied and has no lag.
func TestNotificationsCarryTheSendTime(t *testing.T) {
	forEachPostgres(t, func(t *testing.T, a *sqlstore.Store, pg pgTest) {
		ctx := context.Background()
		b := pg.another()
		// The older instance: a bare LISTEN, parsing as that release did.
		old := pq.NewListener(pg.direct, 100*time.Millisecond, time.Second, nil)
		t.Cleanup(func() { old.Close() })
		if err := old.Listen("latch_changes"); err != nil {
			t.Fatal(err)
		}
		la, lb := listen(t, a), listen(t, b)

		id := uuid.NewString()
		at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
		if err := a.Publish(ctx, "session", id, at); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, lb.applied, "change on b"); got != "session:"+id {
			t.Fatalf("b applied %q", got)
		}
		if got := recv(t, lb.sent, "send time on b"); !got.Equal(at) {
			t.Fatalf("b got send time %v, want %v", got, at)
		}
		if got := recv(t, la.applied, "change on a"); got != "session:"+id {
			t.Fatalf("a applied %q", got)
		}
		var acted []string
		for range 2 {
			n := recv(t, old.Notify, "notification on the older instance")
			topic, oid, _ := strings.Cut(n.Extra, ":")
			if oldTopics[topic] {
				acted = append(acted, topic+":"+oid)
			}
		}
		if len(acted) != 1 || acted[0] != "session:"+id {
			t.Fatalf("the older instance acts on %q, want only session:%s", acted, id)
		}
		if _, err := uuid.Parse(strings.TrimPrefix(acted[0], "session:")); err != nil {
			t.Fatalf("the older instance cannot parse the id: %v", err)
		}

		// b publishes: a hears b's send time first, so it skipped its own.
		at2 := at.Add(time.Second)
		if err := b.Publish(ctx, "user", id, at2); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, la.sent, "send time on a"); !got.Equal(at2) {
			t.Fatalf("a's first send time is %v, want b's %v (its own must be skipped)", got, at2)
		}

		// An older instance publishes "topic:id" alone: applied, no lag.
		if _, err := a.DB().Exec(`SELECT pg_notify('latch_changes', 'key:` + id + `')`); err != nil {
			t.Fatal(err)
		}
		for got := ""; got != "key:"+id; {
			got = recv(t, lb.applied, "older instance's change on b")
		}
		at3 := at.Add(2 * time.Second)
		if err := a.Publish(ctx, "session", id, at3); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, lb.sent, "send time on b"); !got.Equal(at3) {
			t.Fatalf("b's next send time is %v, want %v (none for the older instance's change)", got, at3)
		}
	})
}
