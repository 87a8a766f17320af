package service

import (
	"context"
	"expvar"
	"log/slog"
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

// Pruner deletes what is no longer needed, in batches, on a schedule
// (Run) or at once (Prune). It is safe for concurrent use.
type Pruner struct {
	store   pruneStore
	cfg     RecoveryConfig
	clock   domain.Clock
	log     *slog.Logger
	metrics PruneMetrics
}

// pruneStore is what the Pruner needs of the store.
type pruneStore interface {
	Prune(ctx context.Context, kind string, before time.Time, limit int) (int, error)
}

// Pruner returns the service's pruner.
func (s *Service) Pruner() *Pruner { return s.pruner }

// Metrics returns the pruning counters.
func (p *Pruner) Metrics() *PruneMetrics { return &p.metrics }

// pruneCutoff is when the rows of the kind must have ended to go.
func (p *Pruner) pruneCutoff(kind string, now time.Time) time.Time {
	switch kind {
	case domain.PruneEvents, domain.PruneWebhookMessages, domain.PruneWebhookAttempts:
		return now.Add(-p.cfg.EventRetention)
	case domain.PruneOutbox:
		return now.Add(-p.cfg.OutboxRetention)
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
// ceremonies, factors left unconfirmed for UnconfirmedFactorTTL, and
// webhook messages and delivery attempts older than the event retention.
// Each statement deletes at most PruneBatch rows. It returns the rows
// deleted per kind; on a failure it stops and returns what it did so far.
func (p *Pruner) Prune(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	now := p.clock.Now()
	p.metrics.Runs.Add(1)
	for _, kind := range domain.PruneKinds() {
		before := p.pruneCutoff(kind, now)
		for range maxPrunePasses {
			n, err := p.store.Prune(ctx, kind, before, p.cfg.PruneBatch)
			if err != nil {
				p.metrics.Errors.Add(1)
				return out, err
			}
			out[kind] += n
			p.metrics.Deleted.Add(kind, int64(n))
			if n < p.cfg.PruneBatch {
				break
			}
		}
	}
	return out, nil
}

// Run prunes every PruneInterval until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.PruneInterval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Error("prune", "err", err)
		case err == nil:
			total := 0
			var counts []any
			for _, kind := range domain.PruneKinds() {
				total += n[kind]
				counts = append(counts, kind, n[kind])
			}
			if total > 0 {
				p.log.Info("pruned", counts...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
