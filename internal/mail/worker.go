package mail

import (
	"context"
	"encoding/json"
	"expvar"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/poll"
)

// Opener decrypts a sealed outbox payload; *token.Sealer is one.
type Opener interface {
	Open(sealed []byte, label string) ([]byte, error)
}

// WorkerConfig tunes the outbox worker. Zero fields take the defaults.
type WorkerConfig struct {
	// From is the sender, such as "Latch <no-reply@example.com>".
	From string
	// MaxAttempts is how many times a message is tried before it is
	// abandoned (default 10).
	MaxAttempts int
	// Poll is how often the outbox is checked when nothing wakes the worker
	// (default 2s).
	Poll time.Duration
	// Lease is how long a claim holds a message; it must be well over
	// SendTimeout (default 2m).
	Lease time.Duration
	// SendTimeout bounds one delivery (default 30s).
	SendTimeout time.Duration
	// Batch is how many messages one pass claims (default 10).
	Batch int
	// RetryBase is the first retry's delay; each retry doubles it up to
	// RetryMax (defaults 30s and 30m).
	RetryBase time.Duration
	RetryMax  time.Duration
}

// Worker drains the outbox: it claims due messages, renders and sends them,
// and records the outcome. Several workers (in one process or many) may
// run at once; the store's claims keep them from sending a message twice.
type Worker struct {
	cfg       WorkerConfig
	store     domain.OutboxStore
	opener    Opener
	render    *Renderer
	transport Transport
	clock     domain.Clock
	log       *slog.Logger
	wake      chan struct{}
	metrics   *Metrics
}

// Metrics are the worker's counters, published with expvar by the caller
// (there is no global registration, so several workers can coexist).
type Metrics struct {
	Claimed   expvar.Int // messages claimed (one per attempt)
	Sent      expvar.Int // messages delivered
	Retried   expvar.Int // failed attempts that will be retried
	Abandoned expvar.Int // messages given up after the last attempt
	Expired   expvar.Int // messages dropped because their link expired first
	LeaseLost expvar.Int // messages sent after their claim had lapsed
	Errors    expvar.Int // outbox passes that failed (database errors)
}

// Var returns the counters as one expvar value.
func (m *Metrics) Var() expvar.Var {
	v := new(expvar.Map).Init()
	v.Set("claimed", &m.Claimed)
	v.Set("sent", &m.Sent)
	v.Set("retried", &m.Retried)
	v.Set("abandoned", &m.Abandoned)
	v.Set("expired", &m.Expired)
	v.Set("lease_lost", &m.LeaseLost)
	v.Set("errors", &m.Errors)
	return v
}

// WorkerDeps are the worker's collaborators.
type WorkerDeps struct {
	Store     domain.OutboxStore
	Opener    Opener
	Renderer  *Renderer
	Transport Transport
	Clock     domain.Clock
	Log       *slog.Logger
}

// NewWorker returns a worker; call Run to start it.
func NewWorker(cfg WorkerConfig, d WorkerDeps) *Worker {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 4 * cfg.SendTimeout
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Minute
	}
	if d.Clock == nil {
		d.Clock = domain.SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Worker{cfg: cfg, store: d.Store, opener: d.Opener, render: d.Renderer, transport: d.Transport,
		clock: d.Clock, log: d.Log, wake: make(chan struct{}, 1), metrics: &Metrics{}}
}

// WithTransport returns a worker like w that sends through t. It shares
// w's metrics and wake-ups.
func (w *Worker) WithTransport(t Transport) *Worker {
	c := *w
	c.transport = t
	return &c
}

// WithStore returns a worker like w that drains the outbox through st, as
// another instance would.
func (w *Worker) WithStore(st domain.OutboxStore) *Worker {
	c := *w
	c.store = st
	return &c
}

// Metrics returns the worker's counters.
func (w *Worker) Metrics() *Metrics { return w.metrics }

// Config returns the worker's configuration, defaults applied.
func (w *Worker) Config() WorkerConfig { return w.cfg }

// Notify wakes the worker: a message was just queued. It never blocks.
func (w *Worker) Notify() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run drains the outbox until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	poll.Loop(ctx, w.wake, w.cfg.Poll, func(ctx context.Context) bool {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.metrics.Errors.Add(1)
			w.log.Error("mail outbox", "err", err)
		}
		return err == nil && n == w.cfg.Batch
	})
}

// RunOnce claims one batch of due messages and tries to send each. It
// returns how many it claimed; an error only when the outbox could not be
// read (a failed delivery is recorded on its row, not returned).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := w.store.ClaimMail(ctx, w.clock.Now(), w.cfg.Lease, w.cfg.Batch, w.cfg.MaxAttempts)
	if err != nil {
		return 0, err
	}
	w.metrics.Claimed.Add(int64(len(msgs)))
	for i := range msgs {
		w.deliver(ctx, &msgs[i])
	}
	return len(msgs), nil
}

// Drain runs passes until no message is due; for tests and tools.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := w.RunOnce(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func (w *Worker) deliver(ctx context.Context, m *domain.OutboxMessage) {
	log := w.log.With("mail_id", m.ID, "template", m.Template, "attempt", m.Attempts)
	now := w.clock.Now()
	if m.ExpiresAt != nil && !now.Before(*m.ExpiresAt) {
		w.metrics.Expired.Add(1)
		log.Warn("mail abandoned: its link expired before it could be sent")
		w.settle(log, w.store.MarkMailFailed(context.WithoutCancel(ctx), m.ID, m.ClaimID, now, "the link expired before the mail could be sent", nil))
		return
	}
	err := w.send(ctx, m)
	now = w.clock.Now()
	if err == nil {
		w.metrics.Sent.Add(1)
		log.Info("mail sent")
		if err := w.store.MarkMailSent(context.WithoutCancel(ctx), m.ID, m.ClaimID, now); err != nil {
			if domain.IsCode(err, domain.CodeNotFound) {
				w.metrics.LeaseLost.Add(1)
				log.Warn("mail sent after its claim had lapsed; it may be sent twice (raise the lease)")
				return
			}
			log.Error("record sent mail", "err", err)
		}
		return
	}
	if m.Attempts >= w.cfg.MaxAttempts {
		w.metrics.Abandoned.Add(1)
		log.Error("mail abandoned after the last attempt", "attempts", m.Attempts, "err", err)
		w.settle(log, w.store.MarkMailFailed(context.WithoutCancel(ctx), m.ID, m.ClaimID, now, err.Error(), nil))
		return
	}
	retry := now.Add(w.backoff(m.Attempts))
	w.metrics.Retried.Add(1)
	log.Warn("mail not sent; will retry", "retry_at", retry, "err", err)
	w.settle(log, w.store.MarkMailFailed(context.WithoutCancel(ctx), m.ID, m.ClaimID, now, err.Error(), &retry))
}

// settle logs the failure to record a message's outcome.
func (w *Worker) settle(log *slog.Logger, err error) {
	if err == nil {
		return
	}
	if domain.IsCode(err, domain.CodeNotFound) {
		w.metrics.LeaseLost.Add(1)
		log.Warn("the claim on the mail lapsed before its outcome was recorded")
		return
	}
	log.Error("record mail outcome", "err", err)
}

// send opens, renders and delivers one message.
func (w *Worker) send(ctx context.Context, m *domain.OutboxMessage) error {
	plain, err := w.opener.Open(m.Payload, domain.OutboxPayloadLabel(m.ID))
	if err != nil {
		return err
	}
	var d domain.MailData
	if err := json.Unmarshal(plain, &d); err != nil {
		return err
	}
	d.Email = m.Recipient
	msg, err := w.render.Render(m.Template, d)
	if err != nil {
		return err
	}
	msg.ID, msg.From = m.ID.String(), w.cfg.From
	sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	defer cancel()
	return w.transport.Send(sctx, msg)
}

// backoff is the delay before the attempt after the n-th: RetryBase
// doubled n-1 times, at most RetryMax, plus up to 10% jitter so that
// messages failed together do not retry together.
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < n && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMax)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}
