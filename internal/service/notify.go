package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Notifier publishes a change to every instance of the deployment, so that
// their caches drop what it made stale within about a second, not a cache
// lifetime; at is when it was published (after the change committed), for
// the other instances' notification lag. *sqlstore.Store implements it on
// PostgreSQL (NOTIFY); on SQLite there is one instance and no notifier.
type Notifier interface {
	Publish(ctx context.Context, topic, id string, at time.Time) error
}

// The topics of published changes; the id is a session, key or user id, and
// empty for the signing keys.
const (
	TopicSession     = "session"
	TopicAPIKey      = "key"
	TopicUser        = "user"
	TopicSigningKeys = "signing-keys"
)

// publish tells the other instances about a change made here. A failure is
// logged: the caches' lifetimes still bound how long they trust stale
// entries.
func (s *Service) publish(topic, id string) {
	if s.changes.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.changes.notifier.Publish(ctx, topic, id, s.clock.Now()); err != nil {
		s.log.Warn("publish a change to the other instances", "topic", topic, "err", err)
	}
}

// Invalidate applies a change that an instance (possibly this one)
// published: the session, API key or user leaves this instance's caches;
// new signing keys are loaded.
func (s *Service) Invalidate(topic, id string) {
	s.metrics.Notification(topic)
	switch topic {
	case TopicSession:
		if sid, err := uuid.Parse(id); err == nil {
			s.sessions.cache.Forget(sid)
		}
	case TopicAPIKey:
		if kid, err := uuid.Parse(id); err == nil {
			s.keys.forgetKeyID(kid)
		}
	case TopicUser:
		if uid, err := uuid.Parse(id); err == nil {
			s.sessions.users.Forget(uid)
		}
	case TopicSigningKeys:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.ReloadKeys(ctx); err != nil {
			s.log.Warn("reload signing keys after a change elsewhere", "err", err)
		}
	}
}

// ChangeSent records the notification lag of a change another instance
// published at at: from then to now on this instance's clock (a negative
// lag, from clocks that disagree, counts as zero).
func (s *Service) ChangeSent(at time.Time) {
	s.metrics.NotificationLag(s.clock.Now().Sub(at))
}

// NotificationsConnected tells the service whether it receives the other
// instances' changes. Either way its caches are flushed (changes may have
// been missed); while disconnected nothing is cached, so nothing stale is
// trusted longer than one request.
func (s *Service) NotificationsConnected(connected bool) {
	s.metrics.NotificationsConnected(connected)
	s.changes.degraded.Store(!connected)
	s.flushCaches()
}

// NotificationsDegraded reports whether the service runs without the other
// instances' changes (for readiness).
func (s *Service) NotificationsDegraded() bool { return s.changes.degraded.Load() }

func (s *Service) flushCaches() {
	s.sessions.cache.Purge()
	s.sessions.users.Purge()
	s.keys.state.purge()
}

// The states of the change notifications, for readiness.
const (
	NotificationsConnected = "connected"
	NotificationsDegraded  = "degraded"
	NotificationsNone      = "none"
)

// Readiness checks what an instance needs to serve: the database answers
// and signing keys are loaded. It returns the notifications' state
// (NotificationsNone when there is no notifier). Returns CodeUnavailable
// otherwise.
func (s *Service) Readiness(ctx context.Context) (string, error) {
	if err := s.Health(ctx); err != nil {
		return "", err
	}
	if len(s.issuer.JWKS()) == 0 {
		return "", domain.Errorf(domain.CodeUnavailable, "no signing key is loaded")
	}
	switch {
	case s.changes.notifier == nil:
		return NotificationsNone, nil
	case s.changes.degraded.Load():
		return NotificationsDegraded, nil
	}
	return NotificationsConnected, nil
}

// Metrics records what operators watch; *metrics.Metrics implements it.
type Metrics interface {
	Refresh(outcome string)
	RateLimit(rule, decision string)
	Cache(cache string, hit bool)
	Notification(topic string)
	NotificationLag(d time.Duration)
	NotificationsConnected(up bool)
}

// noMetrics records nothing.
type noMetrics struct{}

func (noMetrics) Refresh(string)                {}
func (noMetrics) RateLimit(string, string)      {}
func (noMetrics) Cache(string, bool)            {}
func (noMetrics) Notification(string)           {}
func (noMetrics) NotificationLag(time.Duration) {}
func (noMetrics) NotificationsConnected(bool)   {}
