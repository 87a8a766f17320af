package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/latchauth/latch/internal/domain"
)

// On PostgreSQL the common case of RotateRefreshToken (a live session, an
// unspent token) is one statement, and the rotations that arrive together
// share it: a few batch goroutines each take the rotations waiting at that
// moment (none waits for more to arrive) and run them as one statement with
// one implicit commit. A lone rotation is a batch of one. Per rotation the
// statement does what the full transaction does for a plain rotation: touch
// the active session (locking its row first, the order every revocation
// takes), spend the presented token if it is still unused, insert its
// successor, and return the session with its user. What a batch saves is
// the statement's start-up, the commit and its WAL flush, and the round
// trips: most of PostgreSQL's CPU per refresh. Anything but a plain
// rotation (unknown, spent, revoked or expired token, ended session) rotates
// nothing here, and the caller's full transaction tells a grace-window
// replay from reuse. A session row touched by a statement that rotated
// nothing only has its use recorded, which the full transaction does too.
const (
	rotateBatchWorkers = 4
	rotateBatchMax     = 32
)

// rotateBatchQuery rotates the tokens of its input rows. Row i of the input
// is one rotation: its clock, its new idle expiry, the presented token's
// hash, the successor's id and hash. The session update locks each session
// before the token update, which joins on its output, locks that session's
// token (the order of the full transaction and of every revocation);
// concurrent presentations of one token serialise on the session row and
// then on the token row, whose re-checked used_at IS NULL lets exactly one
// win. A session presented by two rows is touched once and only one of
// those rows rotates. It returns, for each row that rotated, its ordinal and
// the session and user.
const rotateBatchQuery = `WITH input AS (
		SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[], $3::bytea[], $4::uuid[], $5::bytea[])
			WITH ORDINALITY AS i(now, idle_exp, presented, new_id, successor, ord)
	), target AS (
		SELECT input.ord, input.now, input.idle_exp, rt.session_id
		FROM input JOIN refresh_tokens rt ON rt.token_hash = input.presented
	), sess AS (
		UPDATE sessions s SET last_used_at = target.now,
			expires_at = CASE WHEN s.absolute_expires_at < target.idle_exp THEN s.absolute_expires_at ELSE target.idle_exp END
		FROM target
		WHERE s.id = target.session_id
		  AND s.revoked_at IS NULL AND s.expires_at > target.now AND s.absolute_expires_at > target.now
		RETURNING target.ord, s.id, s.user_id, s.org_id, s.created_at, s.last_used_at, s.expires_at,
			s.absolute_expires_at, s.revoked_at, s.user_agent, s.ip, s.aal, s.amr
	), tok AS (
		UPDATE refresh_tokens t SET used_at = input.now
		FROM input JOIN sess ON sess.ord = input.ord
		WHERE t.token_hash = input.presented AND t.used_at IS NULL AND t.revoked_at IS NULL
		  AND t.session_id = sess.id
		RETURNING input.ord, t.id, t.session_id, input.new_id, input.successor, input.now
	), ins AS (
		INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, created_at)
		SELECT new_id, session_id, id, successor, now FROM tok
	)
	SELECT tok.ord, sess.id, sess.user_id, sess.org_id, sess.created_at, sess.last_used_at, sess.expires_at,
		sess.absolute_expires_at, sess.revoked_at, sess.user_agent, sess.ip, sess.aal, sess.amr,
		u.id, u.email, u.email_verified, u.password_hash, u.org_id, u.external_id, u.metadata, u.created_at, u.updated_at
	FROM tok JOIN sess ON sess.ord = tok.ord JOIN users u ON u.id = sess.user_id`

// rotateCall is one rotation waiting for a batch.
type rotateCall struct {
	req   domain.RotateRequest
	reply chan rotateReply // buffered: a batch never blocks on a caller that left
}

type rotateReply struct {
	res *domain.RotateResult
	ok  bool
	err error
}

// rotateBatcher runs the batch goroutines of one Store.
type rotateBatcher struct {
	s     *Store
	calls chan *rotateCall
	stop  chan struct{}
	done  chan struct{} // closed once every batch goroutine has returned
	once  sync.Once
	wg    sync.WaitGroup
}

func newRotateBatcher(s *Store) *rotateBatcher {
	b := &rotateBatcher{s: s, calls: make(chan *rotateCall, 4*rotateBatchMax), stop: make(chan struct{}), done: make(chan struct{})}
	for range rotateBatchWorkers {
		b.wg.Add(1)
		go b.run()
	}
	go func() { b.wg.Wait(); close(b.done) }()
	return b
}

// close stops the batch goroutines after the batches they are running; a
// rotation submitted afterwards is answered ok=false (the caller's own
// transaction then runs, and fails on the closed pool).
func (b *rotateBatcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

// rotate runs req in a batch and reports ok=false when it rotated nothing.
// The caller stops waiting when ctx ends; the rotation may still
// commit, and then the client's retry of the same token within the grace
// window gets the same successor.
func (b *rotateBatcher) rotate(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, bool, error) {
	c := &rotateCall{req: req, reply: make(chan rotateReply, 1)}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, false, nil
	case <-ctx.Done():
		return nil, false, &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
	}
	select {
	case r := <-c.reply:
		return r.res, r.ok, r.err
	case <-b.done:
		// Closed after this call was queued and the queue drained: nobody
		// will run it (its reply may still have come just now).
		select {
		case r := <-c.reply:
			return r.res, r.ok, r.err
		default:
			return nil, false, nil
		}
	case <-ctx.Done():
		return nil, false, &domain.Error{Code: domain.CodeUnavailable, Message: "request cancelled", Err: ctx.Err()}
	}
}

func (b *rotateBatcher) run() {
	defer b.wg.Done()
	batch := make([]*rotateCall, 0, rotateBatchMax)
	for {
		batch = batch[:0]
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		case <-b.stop:
			b.drain()
			return
		}
	fill:
		for len(batch) < rotateBatchMax {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		b.runBatch(batch)
	}
}

// drain answers the calls still queued at close: not rotated.
func (b *rotateBatcher) drain() {
	for {
		select {
		case c := <-b.calls:
			c.reply <- rotateReply{}
		default:
			return
		}
	}
}

// runBatch runs one batch and answers each call. A presented hash that
// appears twice in the batch goes in once; the other call is answered
// ok=false and its caller's full transaction tells the replay from reuse
// after this batch has committed. When the statement fails (a deadlock
// with a revocation that locks several sessions in another order, a lost
// connection), every call is answered ok=false and runs its own
// transaction.
func (b *rotateBatcher) runBatch(batch []*rotateCall) {
	n := len(batch)
	nows := make([]string, 0, n)
	idles := make([]string, 0, n)
	presented := make([][]byte, 0, n)
	ids := make([]string, 0, n)
	successors := make([][]byte, 0, n)
	in := make([]*rotateCall, 0, n) // in[i] is input row i+1
	seen := make(map[string]bool, n)
	for _, c := range batch {
		if seen[string(c.req.PresentedHash)] {
			c.reply <- rotateReply{}
			continue
		}
		seen[string(c.req.PresentedHash)] = true
		in = append(in, c)
		nows = append(nows, c.req.Now.UTC().Format(timeLayout))
		idles = append(idles, c.req.Now.Add(c.req.IdleTTL).UTC().Format(timeLayout))
		presented = append(presented, c.req.PresentedHash)
		ids = append(ids, newTokenID().String())
		successors = append(successors, c.req.SuccessorHash)
	}
	answered := make([]bool, len(in))
	// The batch is everyone's: it runs to completion whoever stops waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []any{pq.Array(nows), pq.Array(idles), pq.ByteaArray(presented), pq.Array(ids), pq.ByteaArray(successors)}
	query := func(ctx context.Context, args ...any) (*sql.Rows, error) {
		return b.s.db.QueryContext(ctx, rotateBatchQuery, args...)
	}
	if st := b.s.stmts.lookup(b.s.db, rotateBatchQuery); st != nil {
		query = st.QueryContext
	}
	// scan answers the calls that rotated, and nobody when the statement
	// failed (then nothing committed). The rest run their own transaction,
	// which says why.
	_ = b.scan(ctx, query, args, in, answered)
	for i, c := range in {
		if !answered[i] {
			c.reply <- rotateReply{}
		}
	}
}

// scan runs the batch statement and answers the calls whose rows it
// returns, only once the statement has completed (its commit is implicit).
func (b *rotateBatcher) scan(ctx context.Context, query func(context.Context, ...any) (*sql.Rows, error), args []any, in []*rotateCall, answered []bool) error {
	rows, err := query(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	type done struct {
		i   int
		res *domain.RotateResult
	}
	var out []done
	for rows.Next() {
		var ord int64
		var sr sessionRow
		var ur userRow
		if err := rows.Scan(&ord, &sr.ID, &sr.UserID, &sr.OrgID, &sr.CreatedAt, &sr.LastUsedAt, &sr.ExpiresAt,
			&sr.AbsoluteExpiresAt, &sr.RevokedAt, &sr.UserAgent, &sr.IP, &sr.AAL, &sr.AMR,
			&ur.ID, &ur.Email, &ur.EmailVerified, &ur.PasswordHash, &ur.OrgID, &ur.ExternalID, &ur.Metadata, &ur.CreatedAt, &ur.UpdatedAt); err != nil {
			return err
		}
		if ord < 1 || int(ord) > len(in) {
			continue
		}
		out = append(out, done{int(ord) - 1, &domain.RotateResult{Outcome: domain.Rotated, Session: sr.domain(), User: *ur.domain()}})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, d := range out {
		if !answered[d.i] {
			answered[d.i] = true
			in[d.i].reply <- rotateReply{res: d.res, ok: true}
		}
	}
	return nil
}

// newTokenID returns the id of a successor refresh token: a UUIDv7, whose
// time order keeps inserts at the right edge of the primary-key and parent
// indexes. The id is internal; it is never shown to anyone.
func newTokenID() uuid.UUID {
	if id, err := uuid.NewV7(); err == nil {
		return id
	}
	return uuid.New()
}
