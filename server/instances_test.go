package server_test

import (
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/testutil"
)

// metricValue returns the value of the sample named (with its labels, as
// the text format writes them) on the instance's /metrics, 0 when absent.
func metricValue(t *testing.T, s *testutil.Server, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.App.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPasswordResetReachesEveryInstance: a password reset on one instance
// ends the user's sessions on the others within about a second (their
// caches would trust them for a minute), and there the old password no
// longer logs in while the new one does.
func TestPasswordResetReachesEveryInstance(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	long := func(c *app.Config) { c.SessionCache = time.Minute; c.APIKeys.CacheTTL = 30 * time.Second }
	a := testutil.StartURL(t, dbURL, long)
	b := testutil.StartURL(t, dbURL, long)
	c := testutil.StartURL(t, dbURL, long)
	listening(t, a, b, c)
	box := &mailbox{}
	tok := signup(t, a, "reset-everywhere@example.com")
	flush(t, a, box) // the verification mail
	others := map[string]*testutil.Server{"b": b, "c": c}
	for name, s := range others {
		if _, st := me(t, s, testutil.Bearer(tok.AccessToken)); st != 200 {
			t.Fatalf("instance %s before the reset: %d", name, st)
		}
	}
	rt := resetMail(t, a, box, "reset-everywhere@example.com")
	if r := reset(a, rt, newPassword); r.StatusCode() != 204 {
		t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
	}
	for name, s := range others {
		if !eventually(2*time.Second, func() bool { _, st := me(t, s, testutil.Bearer(tok.AccessToken)); return st == 401 }) {
			t.Fatalf("instance %s still accepts a session the reset ended", name)
		}
		if r := login(s, "reset-everywhere@example.com", goodPassword); r.StatusCode() != 401 {
			t.Fatalf("instance %s: the old password after the reset: %d", name, r.StatusCode())
		}
		if r := login(s, "reset-everywhere@example.com", newPassword); r.StatusCode() != 200 {
			t.Fatalf("instance %s: the new password: %d %s", name, r.StatusCode(), r.Body)
		}
	}
}

// TestUserChangesReachEveryInstance: the user GET /auth/me serves comes
// from the service's cache on each instance; a change of the user on one
// instance (here the email's verification) shows on another within about a
// second, although that instance would trust its cached copy for a minute
// and its clock does not move.
func TestUserChangesReachEveryInstance(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	long := func(c *app.Config) { c.SessionCache = time.Minute }
	a := testutil.StartURL(t, dbURL, long)
	b := testutil.StartURL(t, dbURL, long)
	listening(t, a, b)
	box := &mailbox{}
	tok := signupUnverified(t, a, "user-everywhere@example.com")
	if res, st := me(t, b, testutil.Bearer(tok.AccessToken)); st != 200 || res.JSON200.EmailVerified {
		t.Fatalf("instance b before the verification: %d %s", st, res.Body)
	}
	msgs := flush(t, a, box)
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want the verification", len(msgs))
	}
	if r := verify(a, tokenIn(t, msgs[0])); r.StatusCode() != 204 {
		t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
	}
	if !eventually(2*time.Second, func() bool {
		res, st := me(t, b, testutil.Bearer(tok.AccessToken))
		return st == 200 && res.JSON200.EmailVerified
	}) {
		t.Fatal("instance b still serves the user as it was before the verification")
	}
}

// TestNotificationLagAndHashQueueMetrics: a change published on one
// instance is measured on the other as latch_notification_lag_seconds (the
// publishing instance does not measure its own), and password hashing
// reports its queue waits.
func TestNotificationLagAndHashQueueMetrics(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	a := testutil.StartURL(t, dbURL)
	b := testutil.StartURL(t, dbURL)
	listening(t, a, b)
	tok := signup(t, a, "lag@example.com")
	if n := metricValue(t, a, "latch_password_hash_queue_wait_seconds_count"); n < 1 {
		t.Fatalf("signup hashed a password, but the queue wait count is %v", n)
	}
	lo, _ := a.Client.LogoutWithResponse(context.Background(), nil, testutil.Bearer(tok.AccessToken))
	check(t, "logout", lo.StatusCode(), lo.Body, 204)
	if !eventually(5*time.Second, func() bool { return metricValue(t, b, "latch_notification_lag_seconds_count") >= 1 }) {
		t.Fatal("the other instance measured no notification lag")
	}
	if n := metricValue(t, a, "latch_notification_lag_seconds_count"); n != 0 {
		t.Fatalf("the publishing instance measured its own change: %v", n)
	}
	if n := metricValue(t, b, `latch_notifications_received_total{topic="session"}`); n < 1 {
		t.Fatalf("session notifications received on b: %v", n)
	}
	if n := metricValue(t, b, `latch_notifications_received_total{topic="sent"}`); n != 0 {
		t.Fatalf("the send time was counted as a change: %v", n)
	}
}

// TestMeMakesNoDatabaseRoundTrip: with the shared rate limiter on
// PostgreSQL and the change notifications on, GET /auth/me is answered
// from the caches: 200 of them reach the database far fewer times than
// once each (only the user cache's refreshes), while as many refreshes,
// which must, reach it at least once each.
func TestMeMakesNoDatabaseRoundTrip(t *testing.T) {
	direct := testutil.DatabaseURL(t, "postgres")
	proxy := newCutProxy(t, "127.0.0.1:5432")
	pooled := strings.Replace(direct, "127.0.0.1:5432", proxy.addr, 1)
	s := testutil.StartURL(t, pooled, func(c *app.Config) {
		c.DatabaseDirectURL = direct // LISTEN outside the counted pool
		c.RateLimits = true
		c.RateLimitStore = app.LimitsPostgres
		c.SessionCache = time.Minute
	})
	listening(t, s) // until then nothing is cached, by design
	ctx := context.Background()
	tok := signup(t, s, "no-round-trip@example.com")
	if _, st := me(t, s, testutil.Bearer(tok.AccessToken)); st != 200 {
		t.Fatalf("me: %d", st)
	}
	const n = 200
	before := proxy.writes.Load()
	for range n {
		if _, st := me(t, s, testutil.Bearer(tok.AccessToken)); st != 200 {
			t.Fatalf("me: %d", st)
		}
	}
	got := proxy.writes.Load() - before
	t.Logf("%d requests to /auth/me: %d writes to the database", n, got)
	if got >= n/4 {
		t.Fatalf("%d requests to /auth/me wrote to the database %d times", n, got)
	}
	before = proxy.writes.Load()
	rt := tok.RefreshToken
	for range 20 {
		r, err := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: rt})
		if err != nil || r.StatusCode() != 200 {
			t.Fatalf("refresh: %v %d", err, r.StatusCode())
		}
		rt = r.JSON200.RefreshToken
	}
	got = proxy.writes.Load() - before
	t.Logf("20 refreshes: %d writes to the database", got)
	if got < 20 {
		t.Fatalf("20 refreshes wrote to the database %d times: the count misses round trips", got)
	}
}

// TestNotificationsDownMeansNothingCached: when an instance's change
// listener loses its connection (the database itself still answers), it
// says degraded on /health/ready, has flushed its caches and caches
// nothing, so a logout on another instance, whose notification it cannot
// receive, is refused there at once; once the listener is back, it says
// connected and changes propagate again.
func TestNotificationsDownMeansNothingCached(t *testing.T) {
	direct := testutil.DatabaseURL(t, "postgres")
	proxy := newCutProxy(t, "127.0.0.1:5432")
	long := func(c *app.Config) { c.SessionCache = time.Minute }
	a := testutil.StartURL(t, direct, long, func(c *app.Config) {
		// Only the listener (and migrations) go through the proxy.
		c.DatabaseDirectURL = strings.Replace(direct, "127.0.0.1:5432", proxy.addr, 1)
	})
	b := testutil.StartURL(t, direct, long)
	ctx := context.Background()
	notifications := func() client.ReadinessNotifications {
		r, _ := a.Client.GetReadinessWithResponse(ctx)
		if r == nil || r.JSON200 == nil {
			return ""
		}
		return r.JSON200.Notifications
	}
	if !eventually(10*time.Second, func() bool { return notifications() == client.NotificationsConnected }) {
		t.Fatalf("never connected: %q", notifications())
	}
	tok := signup(t, b, "listener-down@example.com")
	if _, st := me(t, a, testutil.Bearer(tok.AccessToken)); st != 200 {
		t.Fatalf("me before: %d", st)
	}

	proxy.cut()
	if !eventually(10*time.Second, func() bool { return notifications() == client.NotificationsDegraded }) {
		t.Fatalf("readiness with the listener down: %q", notifications())
	}
	if _, st := me(t, a, testutil.Bearer(tok.AccessToken)); st != 200 {
		t.Fatalf("me while degraded: %d", st)
	}
	lo, _ := b.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
	check(t, "logout on b", lo.StatusCode(), lo.Body, 204)
	if _, st := me(t, a, testutil.Bearer(tok.AccessToken)); st != 401 {
		t.Fatalf("a degraded instance answered %d from its cache for a session ended elsewhere", st)
	}

	proxy.restore()
	if !eventually(15*time.Second, func() bool { return notifications() == client.NotificationsConnected }) {
		t.Fatalf("readiness after the listener is back: %q", notifications())
	}
	tok2 := login(b, "listener-down@example.com", goodPassword).JSON200
	if _, st := me(t, a, testutil.Bearer(tok2.AccessToken)); st != 200 {
		t.Fatalf("me after: %d", st)
	}
	lo, _ = b.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(tok2.AccessToken))
	check(t, "logout on b after", lo.StatusCode(), lo.Body, 204)
	if !eventually(2*time.Second, func() bool { _, st := me(t, a, testutil.Bearer(tok2.AccessToken)); return st == 401 }) {
		t.Fatal("after the listener is back, a logout elsewhere is not seen")
	}
}
