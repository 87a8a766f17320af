package sqlstore

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/latchauth/latch/internal/domain"
)

type outboundRow struct {
	Seq       int64         `db:"seq"`
	ID        uuid.UUID     `db:"id"`
	Type      string        `db:"type"`
	OrgID     uuid.NullUUID `db:"org_id"`
	UserID    uuid.NullUUID `db:"user_id"`
	Data      []byte        `db:"data"`
	CreatedAt ts            `db:"created_at"`
	// Snap is the reading statement's snapshot (PostgreSQL only).
	Snap string `db:"snap"`
}

func (r *outboundRow) domain() (domain.OutboundEvent, error) {
	e := domain.OutboundEvent{Seq: r.Seq, ID: r.ID, Type: r.Type, OrgID: ptrUUID(r.OrgID), UserID: ptrUUID(r.UserID),
		CreatedAt: time.Time(r.CreatedAt)}
	if len(r.Data) > 0 {
		if err := json.Unmarshal(r.Data, &e.Data); err != nil {
			return e, err
		}
	}
	return e, nil
}

// defaultFeedWait is how long a read of the feed on PostgreSQL waits, at
// most, for the transactions that may still commit events below the page's
// last seq (Options.FeedWait).
const defaultFeedWait = 2 * time.Second

// ListOutboundEvents returns up to f.Limit events after f.After in
// ascending seq, of f.Types and f.OrgID when set; webhook.test events are
// never in the feed. It never skips an event: once it has returned seq n,
// no event below n can appear later.
//
// On SQLite writes are serial, so seqs become visible in order. On
// PostgreSQL a BIGSERIAL seq is taken before its transaction commits, so a
// transaction A may hold seq 10 while B's 11 is visible already. The page
// is read with its statement's snapshot; when that snapshot had
// transactions in flight, those of them that write outbound_events (they
// hold its RowExclusiveLock) are waited for, up to Options.FeedWait, and the
// page is read again up to its last seq, now final. Every emit follows the
// first write of its transaction, so a transaction that holds a seq has its
// xid (and is in the snapshot's in-flight list) before it takes that seq.
// If they are still running after the wait, the page is empty (the reader
// asks again). This needs no session state, so it works through a
// transaction-mode pooler.
func (s *Store) ListOutboundEvents(ctx context.Context, f domain.OutboundFilter) ([]domain.OutboundEvent, error) {
	rows, err := s.outboundPage(ctx, f, 0)
	if err != nil || len(rows) == 0 || s.dialect != Postgres {
		return outboundEvents(rows, err)
	}
	xip := snapshotXIP(rows[0].Snap)
	if len(xip) == 0 {
		return outboundEvents(rows, nil)
	}
	last := rows[len(rows)-1].Seq
	settled, err := s.awaitEventWriters(ctx, xip)
	if err != nil || !settled {
		return nil, err
	}
	rows, err = s.outboundPage(ctx, f, last)
	return outboundEvents(rows, err)
}

// outboundPage reads a page of the feed, up to seq upTo when it is not 0.
func (s *Store) outboundPage(ctx context.Context, f domain.OutboundFilter, upTo int64) ([]outboundRow, error) {
	cols := `seq, id, type, org_id, user_id, data, created_at`
	if s.dialect == Postgres {
		cols += `, pg_current_snapshot()::text AS snap`
	} else {
		cols += `, '' AS snap`
	}
	q := `SELECT ` + cols + ` FROM outbound_events WHERE seq > ? AND type <> ?`
	args := []any{f.After, domain.OutWebhookTest}
	if upTo > 0 {
		q += ` AND seq <= ?`
		args = append(args, upTo)
	}
	if len(f.Types) > 0 {
		q += ` AND type IN (?` + strings.Repeat(`, ?`, len(f.Types)-1) + `)`
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.OrgID != nil {
		q += ` AND org_id = ?`
		args = append(args, *f.OrgID)
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, f.Limit)
	var rows []outboundRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, translate(err)
	}
	return rows, nil
}

func outboundEvents(rows []outboundRow, err error) ([]domain.OutboundEvent, error) {
	if err != nil {
		return nil, err
	}
	out := make([]domain.OutboundEvent, len(rows))
	for i := range rows {
		if out[i], err = rows[i].domain(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// snapshotXIP returns the in-flight transaction ids of a pg_snapshot's text
// form (xmin:xmax:xip,...), as 32-bit xids in text, as pg_locks shows
// them.
func snapshotXIP(snap string) []string {
	parts := strings.Split(snap, ":")
	if len(parts) != 3 || parts[2] == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(parts[2], ",") {
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, strconv.FormatUint(n&0xffffffff, 10))
	}
	return out
}

// eventWriters counts the transactions among xids that are still running
// and write outbound_events (each holds the table's RowExclusiveLock and
// the ExclusiveLock on its own xid, in one virtual transaction).
const eventWriters = `SELECT COUNT(*) FROM pg_locks r JOIN pg_locks x
	ON x.virtualtransaction = r.virtualtransaction AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
	WHERE r.locktype = 'relation' AND r.relation = 'outbound_events'::regclass AND r.mode = 'RowExclusiveLock'
	  AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND x.transactionid::text = ANY($1::text[])`

// awaitEventWriters waits until no transaction among xids writes
// outbound_events any more, polling, up to Options.FeedWait. It reports
// whether they all ended.
func (s *Store) awaitEventWriters(ctx context.Context, xids []string) (bool, error) {
	deadline := time.Now().Add(s.feedWait)
	pause := time.Millisecond
	for {
		var n int
		if err := s.db.GetContext(ctx, &n, eventWriters, pq.Array(xids)); err != nil {
			return false, translate(err)
		}
		if n == 0 {
			return true, nil
		}
		if !time.Now().Add(pause).Before(deadline) {
			return false, nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, cancelled(ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}
