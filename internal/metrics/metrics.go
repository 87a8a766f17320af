// Package metrics is Latch's Prometheus instrumentation
// (github.com/prometheus/client_golang), served on the admin listener at
// /metrics. Every method is safe on a nil *Metrics, which records nothing.
//
// The metrics:
//
//	latch_http_requests_total{operation,status}      requests answered
//	latch_http_request_duration_seconds{operation}   their latency
//	latch_refresh_total{outcome}                     rotated, replayed (grace), reuse_detected, refused
//	latch_rate_limit_decisions_total{rule,decision}  allowed, refused, unavailable
//	latch_cache_requests_total{cache,result}         session and api_key caches: hit, miss
//	latch_notifications_received_total{topic}        changes received from other instances
//	latch_notifications_connected                    1 while the change listener is connected
//	latch_notification_lag_seconds                   from a change's publication on another instance to its arrival here
//	latch_password_hash_queue_wait_seconds           how long a hash or verification waited for a hashing slot
//	latch_password_hash_rejected_total               hashes and verifications refused after the maximum wait (503)
//	latch_webhook_attempts_total{result}             webhook delivery attempts: delivered, http_error, transport_error
//	latch_webhook_failures_total                     webhook messages abandoned after their last attempt
//	latch_webhook_oldest_pending_seconds             age of the oldest webhook message not yet delivered nor failed
//	latch_webhook_endpoints_disabled_total           webhook endpoints disabled after days of failures only
//	go_sql_*{db_name="latch"}                       the database pool (sql.DBStats)
//	go_*, process_*                                  the Go runtime and the process
package metrics

import (
	"database/sql"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds Latch's collectors in a registry of its own (no global
// state: several apps may share a process in tests).
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	refresh      *prometheus.CounterVec
	rateLimit    *prometheus.CounterVec
	cache        *prometheus.CounterVec
	notified     *prometheus.CounterVec
	connected    prometheus.Gauge
	lag          prometheus.Histogram
	hashWait     prometheus.Histogram
	hashRejected prometheus.Counter
	whAttempts   *prometheus.CounterVec
	whFailures   prometheus.Counter
	whOldest     prometheus.Gauge
	whDisabled   prometheus.Counter
	// cacheCounters holds the resolved cache counters: a lookup on every
	// request skips the label hashing.
	cacheCounters sync.Map
}

// New returns the metrics with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_http_requests_total",
			Help: "HTTP requests answered, by operation (method and route) and status."}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "latch_http_request_duration_seconds",
			Help:    "HTTP request latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"operation"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_refresh_total",
			Help: "Refresh-token presentations by outcome: rotated, replayed (within the grace window), reuse_detected, refused."}, []string{"outcome"}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_rate_limit_decisions_total",
			Help: "Rate-limit checks by rule and decision: allowed, refused, unavailable (the limiter's store did not answer)."}, []string{"rule", "decision"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_cache_requests_total",
			Help: "Cache lookups by cache (session, api_key) and result (hit, miss)."}, []string{"cache", "result"}),
		notified: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_notifications_received_total",
			Help: "Changes received from the other instances, by topic."}, []string{"topic"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "latch_notifications_connected",
			Help: "1 while this instance receives the other instances' changes."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_notification_lag_seconds",
			Help:    "Time from a change's publication on another instance (after its commit, on that instance's clock) to its arrival here.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latch_password_hash_queue_wait_seconds",
			Help:    "Time a password hash or verification waited for a hashing slot (0 when one was free).",
			Buckets: []float64{0, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		hashRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "latch_password_hash_rejected_total",
			Help: "Password hashes and verifications refused because no hashing slot freed within LATCH_HASH_MAX_WAIT (answered 503)."}),
		whAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "latch_webhook_attempts_total",
			Help: "Webhook delivery attempts by result: delivered (2xx), http_error (another status), transport_error (no answer)."}, []string{"result"}),
		whFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "latch_webhook_failures_total",
			Help: "Webhook messages abandoned after their last attempt."}),
		whOldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "latch_webhook_oldest_pending_seconds",
			Help: "Age of the oldest webhook message neither delivered nor failed (0 when none), as of this instance's last pass."}),
		whDisabled: prometheus.NewCounter(prometheus.CounterOpts{Name: "latch_webhook_endpoints_disabled_total",
			Help: "Webhook endpoints disabled because all their attempts failed for five days."}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.refresh, m.rateLimit, m.cache, m.notified, m.connected, m.lag, m.hashWait, m.hashRejected,
		m.whAttempts, m.whFailures, m.whOldest, m.whDisabled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// WatchDB exports the database pool's statistics as go_sql_*{db_name="latch"}.
func (m *Metrics) WatchDB(db *sql.DB) {
	if m != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, "latch"))
	}
}

// ids matches the path segments that name a resource, so that an
// operation's label does not grow with its ids.
var ids = regexp.MustCompile(`/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// Request records an answered request. Unrouted paths (404, 405) share one
// label, so a scan cannot grow the label set.
func (m *Metrics) Request(method, path string, status int, d time.Duration) {
	if m == nil {
		return
	}
	op := "unmatched"
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		if strings.IndexByte(path, '-') >= 0 { // only a path with an id pays for the regexp
			path = ids.ReplaceAllString(path, "/{id}")
		}
		op = method + " " + path
	}
	m.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(op).Observe(d.Seconds())
}

// Refresh records a refresh's outcome.
func (m *Metrics) Refresh(outcome string) {
	if m != nil {
		m.refresh.WithLabelValues(outcome).Inc()
	}
}

// RateLimit records a rate-limit decision.
func (m *Metrics) RateLimit(rule, decision string) {
	if m != nil {
		m.rateLimit.WithLabelValues(rule, decision).Inc()
	}
}

// Cache records a cache lookup.
func (m *Metrics) Cache(cache string, hit bool) {
	if m == nil {
		return
	}
	r := "miss"
	if hit {
		r = "hit"
	}
	c, ok := m.cacheCounters.Load(cache + "/" + r)
	if !ok {
		c, _ = m.cacheCounters.LoadOrStore(cache+"/"+r, m.cache.WithLabelValues(cache, r))
	}
	c.(prometheus.Counter).Inc()
}

// Notification records a change received from another instance.
func (m *Metrics) Notification(topic string) {
	if m != nil {
		m.notified.WithLabelValues(topic).Inc()
	}
}

// NotificationsConnected records the change listener's state.
func (m *Metrics) NotificationsConnected(up bool) {
	if m == nil {
		return
	}
	if up {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// NotificationLag records how long a change took from its publication on
// another instance to its arrival here. A negative lag (the clocks of the
// two instances disagree) counts as zero.
func (m *Metrics) NotificationLag(d time.Duration) {
	if m != nil {
		m.lag.Observe(max(d, 0).Seconds())
	}
}

// HashQueueWait records how long a password hash waited for a hashing slot
// (password.QueueObserver).
func (m *Metrics) HashQueueWait(d time.Duration) {
	if m != nil {
		m.hashWait.Observe(d.Seconds())
	}
}

// HashQueueRejected records a password hash refused after the maximum
// wait (password.QueueObserver).
func (m *Metrics) HashQueueRejected() {
	if m != nil {
		m.hashRejected.Inc()
	}
}

// WebhookAttempt counts a webhook delivery attempt by result.
func (m *Metrics) WebhookAttempt(result string) {
	if m != nil {
		m.whAttempts.WithLabelValues(result).Inc()
	}
}

// WebhookFailed counts a webhook message abandoned after its last attempt.
func (m *Metrics) WebhookFailed() {
	if m != nil {
		m.whFailures.Inc()
	}
}

// WebhookEndpointDisabled counts an endpoint disabled for failing.
func (m *Metrics) WebhookEndpointDisabled() {
	if m != nil {
		m.whDisabled.Inc()
	}
}

// WebhookOldestPending sets the age of the oldest pending webhook message.
func (m *Metrics) WebhookOldestPending(d time.Duration) {
	if m != nil {
		m.whOldest.Set(max(d, 0).Seconds())
	}
}
