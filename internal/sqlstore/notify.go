package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// notifyChannel is the PostgreSQL channel of Latch's change notifications.
const notifyChannel = "latch_changes"

// sentTopic marks the notification that carries a change's send time:
// "sent:<unix microseconds>:<origin>". It is a topic no release acts on, so
// an instance that predates it (and reads every payload as "topic:id")
// ignores it.
const sentTopic = "sent"

// newOrigin returns a random id for a store's notifications.
func newOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Publish tells every instance listening on the database that something
// changed at time at (after its commit, on the caller's clock): NOTIFY with
// "topic:id", the payload every release reads, and in the same statement
// (so the same transaction, delivered together) the send time. It works
// through a transaction-mode pooler (a NOTIFY needs no session). On
// SQLite, where one process owns the file, it does nothing.
func (s *Store) Publish(ctx context.Context, topic, id string, at time.Time) error {
	if s.dialect != Postgres {
		return nil
	}
	sent := sentTopic + ":" + strconv.FormatInt(at.UnixMicro(), 10) + ":" + s.origin
	_, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2), pg_notify($1, $3)`, notifyChannel, topic+":"+id, sent)
	return translate(err)
}

// Listen receives the changes every instance publishes, on a connection of
// its own to the direct URL (LISTEN needs a session, which a
// transaction-mode pooler does not keep), until ctx ends. apply gets each
// change, this instance's own included; sent gets the send time of each
// change another instance published (none for an instance that predates
// send times, nor for this store's own); connected(false) is called when
// the connection drops (changes may be missed until it is back) and
// connected(true) when it is listening again. It reconnects by itself with
// backoff. On SQLite it returns at once.
func (s *Store) Listen(ctx context.Context, apply func(topic, id string), sent func(at time.Time), connected func(bool)) error {
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
			if topic != sentTopic {
				apply(topic, id)
			} else if at, origin, ok := parseSent(id); ok && origin != s.origin {
				sent(at)
			}
		case ev := <-events:
			switch ev {
			case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
				connected(false)
			case pq.ListenerEventReconnected:
				// lib/pq re-issues every LISTEN before it says so.
				connected(true)
				// ListenerEventConnected is not enough: it may come before
				// the first LISTEN is in place, whose result says connected.
			}
		case <-ping.C:
			if err := l.Ping(); err != nil {
				connected(false)
			}
		}
	}
}

// parseSent reads "<unix microseconds>:<origin>", the rest of a send-time
// notification.
func parseSent(rest string) (time.Time, string, bool) {
	us, origin, ok := strings.Cut(rest, ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n).UTC(), origin, true
}
