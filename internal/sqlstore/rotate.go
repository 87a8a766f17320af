package sqlstore

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/latchauth/latch/internal/domain"
)

// This file is the refresh-token rotation, the whole of it:
//
//   - RotateRefreshToken is the entry point. On PostgreSQL it hands the
//     request to the batcher; whatever the batch did not rotate, and every
//     request on SQLite, runs rotateAlone.
//   - rotatePlain is the one plain rotation (an active session, an unspent
//     token): touch the session, spend the token, insert its successor,
//     return the session and its user. The batch runs it for many requests
//     at once and rotateAlone for one, inside its transaction.
//   - rotateAlone runs rotatePlain in a transaction and, when it rotated
//     nothing, tells a replay within the grace window from a reuse.
//
// The session's use is recorded by one rule, touchExpiry: the idle expiry
// moves to now+idle, never past the absolute expiry.

// touchExpiry is the new expires_at of a session used at a time whose
// now+idle is the SQL expression idleExp. It is the only copy of the rule
// in SQL; RenewSession and rotatePlain use it, and domain.IdleExpiry is the
// same rule in Go, for a session not yet stored (TestIdleAndAbsoluteExpiry
// holds the two to the same results).
func touchExpiry(idleExp string) string {
	return `CASE WHEN absolute_expires_at < ` + idleExp + ` THEN absolute_expires_at ELSE ` + idleExp + ` END`
}

// activeAt is the condition that a session is active at the SQL expression
// now: not revoked, and neither its idle nor its absolute expiry reached.
// table qualifies the columns ("" leaves them bare). It is the only copy of
// the rule in SQL; every statement that reads, counts or updates active
// sessions uses it.
func activeAt(table, now string) string {
	if table != "" {
		table += "."
	}
	return table + `revoked_at IS NULL AND ` + table + `expires_at > ` + now + ` AND ` + table + `absolute_expires_at > ` + now
}

// prefixed qualifies each column of cols (a comma-separated list) with
// table, aliasing it table.column so that sqlx scans it into the field of
// the struct tagged table.
func prefixed(table, cols string, alias bool) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		c = strings.TrimSpace(c)
		if alias {
			parts[i] = table + "." + c + ` AS "` + table + "." + c + `"`
		} else {
			parts[i] = table + "." + c
		}
	}
	return strings.Join(parts, ", ")
}

// rotatePG is the plain rotation on PostgreSQL, one statement for any number
// of requests. Row i of the input is one request: its clock, its new idle
// expiry, the presented token's hash, the successor's id and hash. The
// session update locks each session before the token update, which joins on
// its output, locks that session's token (the order of every revocation);
// concurrent presentations of one token serialise on the session row and
// then on the token row, whose re-checked used_at IS NULL lets exactly one
// win. A session presented by two rows is touched once and only one of
// those rows rotates. It returns, for each row that rotated, its ordinal and
// the session and user. A session touched by a row that rotated nothing only
// has its use recorded, which rotateAlone does too.
var rotatePG = `WITH input AS (
		SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[], $3::bytea[], $4::uuid[], $5::bytea[])
			WITH ORDINALITY AS i(now, idle_exp, presented, new_id, successor, ord)
	), target AS (
		SELECT input.ord, input.now, input.idle_exp, rt.session_id
		FROM input JOIN refresh_tokens rt ON rt.token_hash = input.presented
	), sess AS (
		UPDATE sessions SET last_used_at = target.now, expires_at = ` + touchExpiry("target.idle_exp") + `
		FROM target
		WHERE sessions.id = target.session_id AND ` + activeAt("sessions", "target.now") + `
		RETURNING target.ord, ` + prefixed("sessions", sessionCols, false) + `
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
	SELECT tok.ord, ` + prefixed("sess", sessionCols, false) + `, ` + prefixed("u", userReadCols, true) + `
	FROM tok JOIN sess ON sess.ord = tok.ord JOIN users u ON u.id = sess.user_id`

// rotatedRow is a row of rotatePG, or the result of the SQLite plain
// rotation.
type rotatedRow struct {
	Ord int64 `db:"ord"`
	sessionRow
	User userRow `db:"u"`
}

// rotatePlain runs the plain rotation of reqs in the transaction tx (nil:
// on the pool, PostgreSQL's batch only) and returns, for each request that
// rotated, its index and result (with the user on PostgreSQL, whose
// statement reads it; without on SQLite, where rotateAlone reads it after
// the commit). A request that rotated nothing (unknown, spent or revoked
// token, ended session) is absent; the caller's rotateAlone says why.
func (s *Store) rotatePlain(ctx context.Context, tx *sqlx.Tx, reqs []domain.RotateRequest) (map[int]*domain.RotateResult, error) {
	out := make(map[int]*domain.RotateResult, len(reqs))
	if s.dialect == Postgres {
		n := len(reqs)
		nows, idles, ids := make([]string, n), make([]string, n), make([]string, n)
		presented, successors := make([][]byte, n), make([][]byte, n)
		for i, r := range reqs {
			nows[i] = r.Now.UTC().Format(timeLayout)
			idles[i] = r.Now.Add(r.IdleTTL).UTC().Format(timeLayout)
			presented[i], successors[i] = r.PresentedHash, r.SuccessorHash
			ids[i] = newTokenID().String()
		}
		args := []any{pq.Array(nows), pq.Array(idles), pq.ByteaArray(presented), pq.Array(ids), pq.ByteaArray(successors)}
		rows, err := s.queryx(ctx, tx, rotatePG, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var r rotatedRow
			if err := rows.StructScan(&r); err != nil {
				return nil, err
			}
			if i := int(r.Ord) - 1; i >= 0 && i < n && out[i] == nil {
				out[i] = &domain.RotateResult{Outcome: domain.Rotated, Session: r.sessionRow.domain(), User: *r.User.domain()}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return out, rows.Close()
	}
	// SQLite has no data-modifying CTE: the same steps as statements, in the
	// caller's transaction (its writer runs one transaction at a time).
	for i, r := range reqs {
		var sr sessionRow
		err := s.txGet(ctx, tx, &sr, `UPDATE sessions SET last_used_at = ?, expires_at = `+touchExpiry("?")+`
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ?) AND `+activeAt("", "?")+`
			RETURNING `+sessionCols,
			ts(r.Now), ts(r.Now.Add(r.IdleTTL)), ts(r.Now.Add(r.IdleTTL)), r.PresentedHash, ts(r.Now), ts(r.Now))
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		var spent uuid.UUID
		err = s.txGet(ctx, tx, &spent, `UPDATE refresh_tokens SET used_at = ?
			WHERE token_hash = ? AND session_id = ? AND used_at IS NULL AND revoked_at IS NULL RETURNING id`,
			ts(r.Now), r.PresentedHash, sr.ID)
		if domain.IsCode(translate(err), domain.CodeNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if err := s.insertRefreshToken(ctx, tx, &domain.RefreshToken{
			ID: newTokenID(), SessionID: sr.ID, ParentID: &spent, Hash: r.SuccessorHash, CreatedAt: r.Now,
		}); err != nil {
			return nil, err
		}
		// The user is read after the commit, off the writer's connection.
		out[i] = &domain.RotateResult{Outcome: domain.Rotated, Session: sr.domain()}
	}
	return out, nil
}

// queryx runs a query through the statement cache, inside tx when it is
// not nil, else on the pool.
func (s *Store) queryx(ctx context.Context, tx *sqlx.Tx, query string, args ...any) (*sqlx.Rows, error) {
	st := s.stmts.lookup(s.db, query)
	switch {
	case st != nil && tx != nil:
		return tx.StmtxContext(ctx, st).QueryxContext(ctx, args...)
	case st != nil:
		return st.QueryxContext(ctx, args...)
	case tx != nil:
		return tx.QueryxContext(ctx, query, args...)
	}
	return s.db.QueryxContext(ctx, query, args...)
}

// RotateRefreshToken spends a refresh token. Exactly one of any number of
// concurrent presentations of a token rotates it; a presentation of the
// token just spent, within the grace window, gets the same successor back
// (Replayed); any other presentation of a spent or revoked token revokes
// the session (ReuseDetected). Returns CodeInvalidGrant for an unknown token
// or an inactive session.
func (s *Store) RotateRefreshToken(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, error) {
	if s.rotator != nil {
		res, err := s.rotator.rotate(ctx, req)
		if err != nil || res != nil {
			return res, err
		}
	}
	return s.rotateAlone(ctx, req)
}

// rotateAlone runs one rotation in its own transaction: the plain rotation,
// and when that rotated nothing, the verdict on the presented token.
func (s *Store) rotateAlone(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, error) {
	invalid := domain.Errorf(domain.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	var res *domain.RotateResult
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res = nil
		done, err := s.rotatePlain(ctx, tx, []domain.RotateRequest{req})
		if err != nil {
			return err
		}
		if r := done[0]; r != nil {
			res = r
			return nil
		}
		// Nothing rotated. The plain rotation has touched (and on PostgreSQL
		// locked) the session if it is active, in the order every revocation
		// takes; an inactive session or an unknown token is invalid.
		var sr sessionRow
		if err := s.txGet(ctx, tx, &sr, `SELECT `+sessionCols+` FROM sessions
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ?) AND `+activeAt("", "?"),
			req.PresentedHash, ts(req.Now), ts(req.Now)); err != nil {
			return err
		}
		// The token was already spent (or revoked). A replay of the
		// immediately previous token within the grace window gets its live
		// successor back.
		var spent struct {
			ID        uuid.UUID `db:"id"`
			UsedAt    nts       `db:"used_at"`
			RevokedAt nts       `db:"revoked_at"`
		}
		if err := s.txGet(ctx, tx, &spent, `SELECT id, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?`, req.PresentedHash); err != nil {
			return err
		}
		if !spent.RevokedAt.Valid && spent.UsedAt.Valid && req.Now.Sub(spent.UsedAt.T) <= req.Grace {
			var child struct {
				Hash      []byte `db:"token_hash"`
				UsedAt    nts    `db:"used_at"`
				RevokedAt nts    `db:"revoked_at"`
			}
			err := s.txGet(ctx, tx, &child, `SELECT token_hash, used_at, revoked_at FROM refresh_tokens WHERE parent_id = ?`, spent.ID)
			if err == nil && !child.UsedAt.Valid && !child.RevokedAt.Valid && subtle.ConstantTimeCompare(child.Hash, req.SuccessorHash) == 1 {
				res = &domain.RotateResult{Outcome: domain.Replayed, Session: sr.domain()}
				return nil
			}
		}
		// Anything else is reuse: the family is compromised.
		if err := s.revokeSessions(ctx, tx, `id = ?`, req.Now, sr.ID); err != nil {
			return err
		}
		revoked := sr.domain()
		now := req.Now
		revoked.RevokedAt = &now
		res = &domain.RotateResult{Outcome: domain.ReuseDetected, Session: revoked}
		return s.emit(ctx, tx, sessionsRevoked(revoked.UserID, revoked.OrgID, []uuid.UUID{revoked.ID}, reasonReuseDetected, now))
	})
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, invalid
	}
	if err != nil {
		return nil, err
	}
	if res.User.ID == uuid.Nil {
		u, err := s.UserByID(ctx, res.Session.UserID)
		if err != nil {
			return nil, err
		}
		res.User = *u
	}
	return res, nil
}

// On PostgreSQL the rotations that arrive together share one rotatePG
// statement: a few batch goroutines each take the rotations waiting at that
// moment (none waits for more to arrive; collect, the loop the SQLite
// writer runs too) and run them with one implicit commit. A lone rotation is a batch of one. What a batch saves is the
// statement's start-up, the commit and its WAL flush, and the round trips:
// most of PostgreSQL's CPU per refresh. What a batch did not rotate goes to
// rotateAlone, which tells a replay from reuse.
const (
	rotateBatchWorkers = 4
	rotateBatchMax     = 32
)

// rotateCall is one rotation waiting for a batch.
type rotateCall struct {
	req   domain.RotateRequest
	reply chan *domain.RotateResult // buffered; nil: not rotated by the batch
}

// rotateBatcher runs the batch goroutines of one Store.
type rotateBatcher struct {
	s     *Store
	log   *slog.Logger
	calls chan *rotateCall
	stop  chan struct{}
	done  chan struct{} // closed once every batch goroutine has returned
	once  sync.Once
	wg    sync.WaitGroup
}

func newRotateBatcher(s *Store, log *slog.Logger) *rotateBatcher {
	b := &rotateBatcher{s: s, log: log, calls: make(chan *rotateCall, 4*rotateBatchMax), stop: make(chan struct{}), done: make(chan struct{})}
	for range rotateBatchWorkers {
		b.wg.Add(1)
		go b.run()
	}
	go func() { b.wg.Wait(); close(b.done) }()
	return b
}

// close stops the batch goroutines after the batches they are running; a
// rotation submitted afterwards is answered nil (the caller's rotateAlone
// then runs, and fails on the closed pool).
func (b *rotateBatcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

// rotate runs req in a batch and returns its result, or nil when the batch
// rotated nothing. The caller stops waiting when ctx ends; the rotation may
// still commit, and then the client's retry of the same token within the
// grace window gets the same successor.
func (b *rotateBatcher) rotate(ctx context.Context, req domain.RotateRequest) (*domain.RotateResult, error) {
	c := &rotateCall{req: req, reply: make(chan *domain.RotateResult, 1)}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, nil
	case <-ctx.Done():
		return nil, cancelled(ctx.Err())
	}
	select {
	case r := <-c.reply:
		return r, nil
	case <-b.done:
		// Closed after this call was queued and the queue drained: nobody
		// will run it (its reply may still have come just now).
		select {
		case r := <-c.reply:
			return r, nil
		default:
			return nil, nil
		}
	case <-ctx.Done():
		return nil, cancelled(ctx.Err())
	}
}

// run is one batch goroutine: it runs batches until the batcher is closed.
func (b *rotateBatcher) run() {
	defer b.wg.Done()
	collect(b.calls, b.stop, rotateBatchMax, b.runBatch)
	b.drain()
}

// drain answers the calls still queued at close: not rotated.
func (b *rotateBatcher) drain() {
	for {
		select {
		case c := <-b.calls:
			c.reply <- nil
		default:
			return
		}
	}
}

// runBatch runs one batch and answers each call. A presented hash that
// appears twice in the batch goes in once; the other call is answered nil
// and its rotateAlone tells the replay from reuse after this batch has
// committed. When the statement fails (a deadlock with a revocation that
// locks several sessions in another order, a lost connection), the failure
// is logged and every call runs its own rotateAlone, which answers it.
func (b *rotateBatcher) runBatch(batch []*rotateCall) {
	in := make([]*rotateCall, 0, len(batch))
	reqs := make([]domain.RotateRequest, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, c := range batch {
		if seen[string(c.req.PresentedHash)] {
			c.reply <- nil
			continue
		}
		seen[string(c.req.PresentedHash)] = true
		in = append(in, c)
		reqs = append(reqs, c.req)
	}
	// The batch is everyone's: it runs to completion whoever stops waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done, err := b.s.rotatePlain(ctx, nil, reqs)
	if err != nil {
		b.log.Warn("refresh rotation batch failed; its rotations run alone", "rotations", len(reqs), "err", err)
		done = nil
	}
	for i, c := range in {
		c.reply <- done[i]
	}
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
