package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/metrics"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/service"
)

// The metrics are what the hasher and the service report to.
var (
	_ password.QueueObserver = (*metrics.Metrics)(nil)
	_ service.Metrics        = (*metrics.Metrics)(nil)
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestQueueAndLagMetrics: the hashing queue's waits and rejections and the
// notification lag are exported under their documented names, a zero wait
// in the le="0" bucket and a negative lag (clock skew) as zero.
func TestQueueAndLagMetrics(t *testing.T) {
	m := metrics.New()
	m.HashQueueWait(0)
	m.HashQueueWait(30 * time.Millisecond)
	m.HashQueueRejected()
	m.NotificationLag(-time.Second)
	m.NotificationLag(20 * time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`latch_password_hash_queue_wait_seconds_bucket{le="0"} 1`,
		`latch_password_hash_queue_wait_seconds_bucket{le="0.025"} 1`,
		`latch_password_hash_queue_wait_seconds_bucket{le="0.05"} 2`,
		`latch_password_hash_queue_wait_seconds_count 2`,
		`latch_password_hash_rejected_total 1`,
		`latch_notification_lag_seconds_bucket{le="0.001"} 1`,
		`latch_notification_lag_seconds_bucket{le="0.025"} 2`,
		`latch_notification_lag_seconds_count 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, grep(out, "latch_"))
		}
	}
}

// TestNilMetricsRecordNothing: every method is safe on a nil *Metrics.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.HashQueueWait(time.Second)
	m.HashQueueRejected()
	m.NotificationLag(time.Second)
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
