package sqlstore

import (
	"context"
	"encoding/json"
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
// transaction A may hold seq 10 while B's 11 is visible already; nor does
// A's transaction id tell (A may be younger than B, and then not even in
// the in-progress list of a snapshot, which stops at the newest completed
// id). So the read is in three steps, none needing session state (it
// works through a transaction-mode pooler):
//
//  1. one statement reads the highest visible seq, top, and then, from
//     pg_locks, the transactions writing outbound_events at that moment (a
//     writer takes the table's RowExclusiveLock before its seq, and keeps
//     it to its end). Any transaction holding a seq below top took it
//     before top's transaction committed, so it is one of these, or has
//     ended since;
//  2. it waits, up to Options.FeedWait, until every one of these has ended
//     (their virtual transaction's lock is gone); writers that start later
//     take seqs above top and are not waited for. If some are still
//     running at the deadline, the page is empty and the reader asks again;
//  3. it reads the page up to top: every seq up to top is final.
func (s *Store) ListOutboundEvents(ctx context.Context, f domain.OutboundFilter) ([]domain.OutboundEvent, error) {
	if s.dialect != Postgres {
		return outboundEvents(s.outboundPage(ctx, f, 0))
	}
	var r struct {
		Top     int64          `db:"top"`
		Writers pq.StringArray `db:"writers"`
	}
	if err := s.db.GetContext(ctx, &r, eventWriters); err != nil {
		return nil, translate(err)
	}
	if r.Top <= f.After {
		return []domain.OutboundEvent{}, nil
	}
	if len(r.Writers) > 0 {
		settled, err := s.awaitEnded(ctx, r.Writers)
		if err != nil || !settled {
			return []domain.OutboundEvent{}, err
		}
	}
	return outboundEvents(s.outboundPage(ctx, f, r.Top))
}

// eventWriters reads the highest visible seq and then the virtual
// transactions writing outbound_events (but this one).
const eventWriters = `SELECT COALESCE(MAX(seq), 0) AS top,
	ARRAY(SELECT virtualtransaction FROM pg_locks
		WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()
		  AND relation = 'outbound_events'::regclass
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS writers
	FROM outbound_events`

// runningOf counts the virtual transactions among $1 still running (each
// holds the lock on its own virtual transaction id until it ends).
const runningOf = `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY($1::text[])`

// awaitEnded waits until none of the virtual transactions vxids runs any
// more, polling, up to Options.FeedWait. It reports whether they all
// ended.
func (s *Store) awaitEnded(ctx context.Context, vxids []string) (bool, error) {
	deadline := time.Now().Add(s.feedWait)
	pause := time.Millisecond
	for {
		var n int
		if err := s.db.GetContext(ctx, &n, runningOf, pq.Array(vxids)); err != nil {
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

// outboundPage reads a page of the feed, up to seq upTo when it is not 0.
func (s *Store) outboundPage(ctx context.Context, f domain.OutboundFilter, upTo int64) ([]outboundRow, error) {
	q := `SELECT seq, id, type, org_id, user_id, data, created_at FROM outbound_events WHERE seq > ? AND type <> ?`
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
