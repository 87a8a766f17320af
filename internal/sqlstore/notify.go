package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// notifyChannel is the PostgreSQL channel of Latch's change notifications.
const notifyChannel = "latch_changes"

// Publish tells every instance listening on the database that something
// changed: NOTIFY with "topic:id". It works through a transaction-mode
// pooler (a NOTIFY needs no session). On SQLite, where one process owns the
// file, it does nothing.
func (s *Store) Publish(ctx context.Context, topic, id string) error {
	if s.dialect != Postgres {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, topic+":"+id)
	return translate(err)
}

// ForgetUser drops a user (every user for uuid.Nil) from the user cache.
func (s *Store) ForgetUser(id uuid.UUID) {
	if id == uuid.Nil {
		s.users.invalidate()
		return
	}
	s.users.invalidate(id)
}

// Listen receives the changes every instance publishes, on a connection of
// its own to the direct URL (LISTEN needs a session, which a
// transaction-mode pooler does not keep), until ctx ends. apply gets each
// change; connected(false) is called when the connection drops (changes
// may be missed until it is back) and connected(true) when it is listening
// again. It reconnects by itself with backoff. On SQLite it returns at once.
func (s *Store) Listen(ctx context.Context, apply func(topic, id string), connected func(bool)) error {
	if s.dialect != Postgres {
		return nil
	}
	events := make(chan pq.ListenerEventType, 8)
	l := pq.NewListener(s.listenURL, 100*time.Millisecond, 2*time.Second, func(ev pq.ListenerEventType, err error) {
		select {
		case events <- ev:
		default:
		}
	})
	defer func() {
		// Close waits for the listener's goroutine, which may be blocked
		// handing over a notification: keep draining until it is closed.
		go func() {
			for range l.Notify {
			}
		}()
		l.Close()
	}()
	connected(false) // until the first LISTEN is in place
	listening := make(chan error, 1)
	// Listen blocks until a connection exists; Close (on ctx's end)
	// releases it.
	go func() { listening <- l.Listen(notifyChannel) }()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-listening:
			connected(err == nil || errors.Is(err, pq.ErrChannelAlreadyOpen))
		case n := <-l.Notify:
			if n == nil {
				continue // a reconnection; its event below flushes
			}
			topic, id, _ := strings.Cut(n.Extra, ":")
			apply(topic, id)
		case ev := <-events:
			switch ev {
			case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
				connected(false)
			case pq.ListenerEventReconnected, pq.ListenerEventConnected:
				connected(true)
			}
		case <-ping.C:
			if err := l.Ping(); err != nil {
				connected(false)
			}
		}
	}
}
