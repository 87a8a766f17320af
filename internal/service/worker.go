package service

import (
	"context"
	"expvar"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// maxPrunePasses bounds the batches of one kind in one run, so that one run
// ends even while rows keep expiring; the next run goes on.
const maxPrunePasses = 100

// PruneMetrics count what pruning deleted, per kind, and the runs that
// failed. They are published with expvar by the caller.
type PruneMetrics struct {
	Deleted expvar.Map
	Runs    expvar.Int
	Errors  expvar.Int
}

// Var returns the counters as one expvar value.
func (m *PruneMetrics) Var() expvar.Var {
	v := new(expvar.Map).Init()
	v.Set("deleted", &m.Deleted)
	v.Set("runs", &m.Runs)
	v.Set("errors", &m.Errors)
	return v
}

// PruneMetrics returns the pruning counters.
func (s *Service) PruneMetrics() *PruneMetrics { return &s.rec.metrics }

// pruneCutoff is when the rows of the kind must have ended to go.
func (s *Service) pruneCutoff(kind string, now time.Time) time.Time {
	switch kind {
	case domain.PruneEvents:
		return now.Add(-s.cfg.Recovery.EventRetention)
	case domain.PruneOutbox:
		return now.Add(-s.cfg.Recovery.OutboxRetention)
	case domain.PruneMFAFactors:
		return now.Add(-UnconfirmedFactorTTL)
	}
	return now
}

// UnconfirmedFactorTTL is how long a factor whose enrolment was never
// confirmed (a TOTP secret shown but no code sent back) is kept before
// pruning removes it; until then it is listed, unverified, and can be
// confirmed or removed.
const UnconfirmedFactorTTL = 24 * time.Hour

// Prune deletes what is no longer needed: refresh tokens and sessions that
// ended, spent or expired reset and verification tokens, security events
// older than the retention, sent or abandoned mails older than theirs,
// shared rate-limit rows whose bucket is full again, expired WebAuthn
// ceremonies, and factors left unconfirmed for UnconfirmedFactorTTL.
// Each statement deletes at most PruneBatch rows. It returns the rows
// deleted per kind; on a failure it stops and returns what it did so far.
func (s *Service) Prune(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	now := s.clock.Now()
	s.rec.metrics.Runs.Add(1)
	for _, kind := range domain.PruneKinds() {
		before := s.pruneCutoff(kind, now)
		for range maxPrunePasses {
			n, err := s.store.Prune(ctx, kind, before, s.cfg.Recovery.PruneBatch)
			if err != nil {
				s.rec.metrics.Errors.Add(1)
				return out, err
			}
			out[kind] += n
			s.rec.metrics.Deleted.Add(kind, int64(n))
			if n < s.cfg.Recovery.PruneBatch {
				break
			}
		}
	}
	return out, nil
}

// RunPruner prunes every PruneInterval until ctx ends.
func (s *Service) RunPruner(ctx context.Context) {
	t := time.NewTicker(s.cfg.Recovery.PruneInterval)
	defer t.Stop()
	for {
		n, err := s.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("prune", "err", err)
		case err == nil:
			total := 0
			var counts []any
			for _, kind := range domain.PruneKinds() {
				total += n[kind]
				counts = append(counts, kind, n[kind])
			}
			if total > 0 {
				s.log.Info("pruned", counts...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
