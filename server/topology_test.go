package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/testutil"
)

// cutProxy is a TCP proxy between Latch and PostgreSQL that a test can cut
// (every connection closed, new ones refused) and restore on the same port.
// It counts what the clients send: every round trip to the database is at
// least one write.
type cutProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	// writes counts the reads from clients that the proxy forwarded.
	writes atomic.Int64
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	p := &cutProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, countingReader{c, &p.writes}); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// countingReader counts the reads that returned data.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.n.Add(1)
	}
	return n, err
}

// cut closes the listener and every proxied connection.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *cutProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// TestDatabaseOutageIs503 cuts the connection to PostgreSQL under a
// running Latch: requests that need the database answer 503 unavailable
// with Retry-After (never 500), and Latch recovers by itself when the
// database is back, with nothing acknowledged lost.
func TestDatabaseOutageIs503(t *testing.T) {
	direct := testutil.DatabaseURL(t, "postgres")
	u := strings.Replace(direct, "127.0.0.1:5432", "", 1)
	if u == direct {
		t.Fatalf("unexpected PostgreSQL URL %s", direct)
	}
	proxy := newCutProxy(t, "127.0.0.1:5432")
	proxied := strings.Replace(direct, "127.0.0.1:5432", proxy.addr, 1)
	s := testutil.StartURL(t, proxied, func(c *app.Config) { c.DBMaxConns = 4 })
	ctx := context.Background()
	tok := signup(t, s, "outage@example.com")

	proxy.cut()
	for _, what := range []string{"login", "signup", "refresh"} {
		var code int
		var body []byte
		var retry string
		switch what {
		case "login":
			r, _ := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "outage@example.com", Password: goodPassword})
			code, body, retry = r.StatusCode(), r.Body, r.HTTPResponse.Header.Get("Retry-After")
		case "signup":
			r, _ := s.Client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "during@example.com", Password: goodPassword})
			code, body, retry = r.StatusCode(), r.Body, r.HTTPResponse.Header.Get("Retry-After")
		case "refresh":
			r, _ := s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
			code, body, retry = r.StatusCode(), r.Body, r.HTTPResponse.Header.Get("Retry-After")
		}
		checkErr(t, what+" during the outage", code, body, 503, "unavailable")
		if retry == "" {
			t.Fatalf("%s during the outage: no Retry-After", what)
		}
	}
	if strings.Contains(s.Log.String(), "connection refused") && strings.Contains(s.Log.String(), "status=500") {
		t.Fatal("an outage was answered 500")
	}

	proxy.restore()
	var r *client.RefreshResponse
	for range 50 { // the pool redials on the next use
		r, _ = s.Client.RefreshWithResponse(ctx, client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
		if r.StatusCode() != 503 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	check(t, "refresh after the outage", r.StatusCode(), r.Body, 200)
	if l := login(s, "outage@example.com", goodPassword); l.StatusCode() != 200 {
		t.Fatalf("login after the outage: %d", l.StatusCode())
	}
}

func TestCancelledRequestsAreNotFailures(t *testing.T) {
	r := newRig(t, baseConfig())
	ctx := context.Background()
	su, _ := r.client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "gone@example.com", Password: goodPassword})
	r.store.blockListSessions = true
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := r.client.ListSessionsWithResponse(cctx, nil, testutil.Bearer(signupSession(t, su).AccessToken))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the client's request ended with %v", err)
	}
	// The handler saw the cancellation: its metrics say 499, and nothing
	// is logged above debug (no failure, no access-log line).
	for obs := ""; obs != "/sessions 499"; {
		select {
		case obs = <-r.observed:
			if strings.HasPrefix(obs, "/sessions ") && obs != "/sessions 499" {
				t.Fatalf("the cancelled request was observed as %q, want /sessions 499", obs)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the cancelled request was never observed")
		}
	}
	if l := r.logs.String(); strings.Contains(l, "request failed") || strings.Contains(l, "status=500") || strings.Contains(l, "path=/sessions") {
		t.Fatalf("a cancelled request was logged:\n%s", l)
	}
}

// TestRotationIsSeenAtOnceByOtherInstances: a token signed with a key that
// another instance just rotated in verifies at once here (one reload for
// the unknown kid), not after a reload ticker.
func TestRotationIsSeenAtOnceByOtherInstances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d string) {
		dbURL := testutil.DatabaseURL(t, d)
		a := testutil.StartURL(t, dbURL)
		b := testutil.StartURL(t, dbURL)
		ctx := context.Background()
		signup(t, a, "rotate@example.com")
		if _, err := a.App.Service.RotateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		tok := login(a, "rotate@example.com", goodPassword).JSON200
		if _, st := me(t, b, testutil.Bearer(tok.AccessToken)); st != 200 {
			t.Fatalf("another instance refused a token of the new key: %d", st)
		}
		// A forged kid costs at most one reload every few seconds, and is
		// refused.
		parts := strings.SplitN(tok.AccessToken, ".", 2)
		forged := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZvcmdlZCIsInR5cCI6ImF0K2p3dCJ9." + parts[1]
		if _, st := me(t, b, testutil.Bearer(forged)); st != 401 {
			t.Fatalf("a forged kid: %d, want 401", st)
		}
	})
}

// TestLoginLimitHoldsAcrossInstances: wrong-password logins for one account
// spread round-robin over 3 instances meet the same per-account limit as on
// one instance (the review saw the first 429 at attempt 16 instead of 6).
func TestLoginLimitHoldsAcrossInstances(t *testing.T) {
	stores := map[string]func(t *testing.T) testutil.Option{
		"postgres": func(*testing.T) testutil.Option { return func(c *app.Config) { c.RateLimitStore = app.LimitsPostgres } },
		"redis": func(t *testing.T) testutil.Option {
			url := testutil.RedisURL(t)
			prefix := "latch-test-" + uuid.NewString() + ":"
			return func(c *app.Config) { c.RateLimitStore, c.RedisURL, c.RedisPrefix = app.LimitsRedis, url, prefix }
		},
	}
	for name, opt := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			limits := func(c *app.Config) {
				c.RateLimits = true
				c.Limits.LoginAccount = ratelimit.Rule{Burst: 5, Per: time.Hour}
				c.Limits.LoginIP = ratelimit.Rule{Burst: 1000, Per: time.Hour}
			}
			dbURL := testutil.DatabaseURL(t, "postgres")
			shared := opt(t) // one Redis prefix for the three
			var instances []*testutil.Server
			for range 3 {
				instances = append(instances, testutil.StartURL(t, dbURL, limits, shared))
			}
			signup(t, instances[0], "limited@example.com")
			first429 := 0
			for i := 1; i <= 10 && first429 == 0; i++ {
				s := instances[i%3]
				if r := login(s, "limited@example.com", "not the password at all"); r.StatusCode() == 429 {
					first429 = i
				}
			}
			if first429 != 6 {
				t.Fatalf("first 429 at attempt %d, want 6 (5 failures allowed per account, whatever the instance)", first429)
			}
		})
	}
}

// TestLimiterOutageFailsClosedForLoginOpenForRefresh: with the shared
// limiter's Redis cut, a login answers 503 (no unlimited guessing), while
// refresh, whose limit is per instance, goes on.
func TestLimiterOutageFailsClosedForLoginOpenForRefresh(t *testing.T) {
	redisURL := testutil.RedisURL(t)
	pu := strings.TrimPrefix(redisURL, "redis://")
	host := pu[:strings.IndexByte(pu, '/')]
	proxy := newCutProxy(t, host)
	s := testutil.Start(t, "sqlite", func(c *app.Config) {
		c.RateLimits = true
		c.RateLimitStore, c.RedisURL, c.RedisPrefix = app.LimitsRedis, "redis://"+proxy.addr+"/0", "latch-test-"+uuid.NewString()+":"
	})
	tok := signup(t, s, "closed@example.com")
	proxy.cut()
	if r := login(s, "closed@example.com", goodPassword); r.StatusCode() != 503 || r.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("login with the limiter down: %d %s", r.StatusCode(), r.Body)
	}
	r, _ := s.Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
	check(t, "refresh with the limiter down", r.StatusCode(), r.Body, 200)
}

// eventually polls f until it is true, for at most d; it reports whether it
// became true. The deadlines here are far below the caches' lifetimes, so
// only the change notifications can meet them.
func eventually(d time.Duration, f func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if f() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f()
}

// listening waits until every instance receives the others' changes: a
// change published before an instance's LISTEN is in place never reaches
// it (its caches' lifetimes bound that, and readiness says so).
func listening(t *testing.T, instances ...*testutil.Server) {
	t.Helper()
	for i, s := range instances {
		if !eventually(15*time.Second, func() bool {
			r, _ := s.Client.GetReadinessWithResponse(context.Background())
			return r != nil && r.JSON200 != nil && r.JSON200.Notifications == client.NotificationsConnected
		}) {
			t.Fatalf("instance %d never listens for changes", i)
		}
	}
}

// TestRevocationsReachEveryInstance: with caches that would trust a stale
// entry for a minute, a logout, a key revocation and a password reset on
// one instance are refused by the others within a second or so, also after
// their notification connections were killed and came back.
func TestRevocationsReachEveryInstance(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	long := func(c *app.Config) { c.SessionCache = time.Minute; c.APIKeys.CacheTTL = 30 * time.Second }
	a := testutil.StartURL(t, dbURL, long)
	b := testutil.StartURL(t, dbURL, long)
	c := testutil.StartURL(t, dbURL, long)
	listening(t, a, b, c)
	ctx := context.Background()
	tok := signup(t, a, "spread@example.com")
	key := createKey(t, a, testutil.Bearer(tok.AccessToken), "spread", "users:read")
	for _, s := range []*testutil.Server{b, c} {
		if _, st := me(t, s, testutil.Bearer(tok.AccessToken)); st != 200 {
			t.Fatalf("before: %d", st)
		}
		if st := keyWorks(t, s, key.Key); st != 200 {
			t.Fatalf("key before: %d", st)
		}
	}
	lo, _ := a.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(tok.AccessToken))
	check(t, "logout", lo.StatusCode(), lo.Body, 204)
	rv, _ := a.Client.RevokeAPIKeyWithResponse(ctx, key.Id, testutil.Bearer(login(a, "spread@example.com", goodPassword).JSON200.AccessToken))
	check(t, "revoke key", rv.StatusCode(), rv.Body, 204)
	for name, s := range map[string]*testutil.Server{"b": b, "c": c} {
		if !eventually(2*time.Second, func() bool { _, st := me(t, s, testutil.Bearer(tok.AccessToken)); return st == 401 }) {
			t.Fatalf("instance %s still accepts a logged-out session", name)
		}
		if !eventually(2*time.Second, func() bool { return keyWorks(t, s, key.Key) == 401 }) {
			t.Fatalf("instance %s still accepts a revoked key", name)
		}
	}

	// Kill every listening connection: the instances flush, reconnect and
	// receive changes again.
	admin := a.App.Store.DB()
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool {
		var n int
		_ = admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen%'`).Scan(&n)
		return n >= 3 && !b.App.Service.NotificationsDegraded()
	}) {
		t.Fatal("the listeners did not come back")
	}
	tok2 := login(a, "spread@example.com", goodPassword).JSON200
	if _, st := me(t, b, testutil.Bearer(tok2.AccessToken)); st != 200 {
		t.Fatalf("after the reconnection: %d", st)
	}
	lo, _ = a.Client.LogoutWithResponse(ctx, nil, testutil.Bearer(tok2.AccessToken))
	check(t, "logout after the reconnection", lo.StatusCode(), lo.Body, 204)
	if !eventually(2*time.Second, func() bool { _, st := me(t, b, testutil.Bearer(tok2.AccessToken)); return st == 401 }) {
		t.Fatal("after the reconnection, a logout elsewhere is not seen")
	}
}

func TestReadiness(t *testing.T) {
	ctx := context.Background()
	lite := testutil.Start(t, "sqlite")
	r, _ := lite.Client.GetReadinessWithResponse(ctx)
	if check(t, "ready (SQLite)", r.StatusCode(), r.Body, 200); r.JSON200.Notifications != client.NotificationsNone || r.JSON200.Status != client.ReadinessReady {
		t.Fatalf("SQLite readiness: %s", r.Body)
	}
	direct := testutil.DatabaseURL(t, "postgres")
	proxy := newCutProxy(t, "127.0.0.1:5432")
	pg := testutil.StartURL(t, strings.Replace(direct, "127.0.0.1:5432", proxy.addr, 1))
	if !eventually(5*time.Second, func() bool {
		r, _ := pg.Client.GetReadinessWithResponse(ctx)
		return r.StatusCode() == 200 && r.JSON200.Notifications == client.NotificationsConnected
	}) {
		t.Fatal("PostgreSQL readiness never says connected")
	}
	proxy.cut()
	r, _ = pg.Client.GetReadinessWithResponse(ctx)
	checkErr(t, "ready with the database cut", r.StatusCode(), r.Body, 503, "unavailable")
	if r.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// TestStagedRotation: a rotated-in key is in every instance's JWKS at once
// and signs only after the publish delay, so a resource server that caches
// the JWKS (max-age below the delay) never meets a token of an unknown key;
// from then on it signs on every instance, with no reload in between.
func TestStagedRotation(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	delay := func(c *app.Config) { c.KeyPublishDelay = 10 * time.Minute }
	a := testutil.StartURL(t, dbURL, delay)
	b := testutil.StartURL(t, dbURL, delay)
	listening(t, a, b)
	ctx := context.Background()
	signup(t, a, "staged@example.com")
	kidOf := func(tok string) string {
		h, _, _ := strings.Cut(tok, ".")
		return verifyHeader(t, h)
	}
	before := kidOf(login(a, "staged@example.com", goodPassword).JSON200.AccessToken)
	kid, err := a.App.Service.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*testutil.Server{"a": a, "b": b} {
		if !eventually(2*time.Second, func() bool {
			j, _ := s.Client.GetJWKSWithResponse(ctx)
			return strings.Contains(string(j.Body), kid)
		}) {
			t.Fatalf("instance %s does not publish the new key", name)
		}
		j, _ := s.Client.GetJWKSWithResponse(ctx)
		if cc := j.HTTPResponse.Header.Get("Cache-Control"); cc != "public, max-age=300" {
			t.Fatalf("JWKS Cache-Control %q", cc)
		}
	}
	if got := kidOf(login(a, "staged@example.com", goodPassword).JSON200.AccessToken); got != before {
		t.Fatalf("the new key signs before its publish delay: %s", got)
	}
	// Each instance switches at the activation time itself, on its own
	// clock, without reloading its keys.
	for _, s := range []*testutil.Server{a, b} {
		s.Clock.Advance(11 * time.Minute)
	}
	// Signed on a, verified on b (whose test clock started later, so a
	// token's iat is never in its future).
	tok := login(a, "staged@example.com", goodPassword).JSON200.AccessToken
	if got := kidOf(tok); got != kid {
		t.Fatalf("after the delay, tokens are signed with %s, want %s", got, kid)
	}
	if _, st := me(t, b, testutil.Bearer(tok)); st != 200 {
		t.Fatalf("a token of the new key: %d", st)
	}
}

// verifyHeader returns the kid of a JWT header segment.
func verifyHeader(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestParallelRefreshesAcrossInstancesHaveOneSuccessor: 30 refreshes of one
// token spread over 3 instances all succeed with the same successor (the
// rotation's single winner and the grace window's replay).
func TestParallelRefreshesAcrossInstancesHaveOneSuccessor(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	var instances []*testutil.Server
	for range 3 {
		instances = append(instances, testutil.StartURL(t, dbURL))
	}
	tok := signup(t, instances[0], "parallel@example.com")
	var wg sync.WaitGroup
	results := make([]string, 30)
	codes := make([]int, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := instances[i%3].Client.RefreshWithResponse(context.Background(), client.RefreshJSONRequestBody{RefreshToken: tok.RefreshToken})
			if err != nil {
				return
			}
			codes[i] = r.StatusCode()
			if r.JSON200 != nil {
				results[i] = r.JSON200.RefreshToken
			}
		}()
	}
	wg.Wait()
	for i := range 30 {
		if codes[i] != 200 || results[i] != results[0] {
			t.Fatalf("refresh %d: %d, successor equal to the first: %v", i, codes[i], results[i] == results[0])
		}
	}
}

// TestRotationUnderTrafficHasNoFailures: three instances answer /auth/me in
// a loop while keys are rotated (staged and at once); not one request fails.
func TestRotationUnderTrafficHasNoFailures(t *testing.T) {
	dbURL := testutil.DatabaseURL(t, "postgres")
	var instances []*testutil.Server
	for range 3 {
		instances = append(instances, testutil.StartURL(t, dbURL))
	}
	signup(t, instances[0], "traffic@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	total, failed := 0, 0
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker logs in on one instance and calls the others.
			tok := login(instances[w], "traffic@example.com", goodPassword).JSON200
			for i := 0; ctx.Err() == nil; i++ {
				if i%20 == 0 {
					tok = login(instances[w], "traffic@example.com", goodPassword).JSON200
				}
				_, st := me(t, instances[(w+1+i%2)%3], testutil.Bearer(tok.AccessToken))
				mu.Lock()
				total++
				if st != 200 {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	for range 3 {
		if _, err := instances[1].App.Service.RotateSigningKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		// Time passes on the instances' clocks too: a reload for an
		// unknown kid is bounded to one per 3 s of the service's clock.
		for _, in := range instances {
			in.Clock.Advance(3 * time.Second)
		}
	}
	cancel()
	wg.Wait()
	if total < 30 || failed != 0 {
		t.Fatalf("%d of %d requests failed during the rotations", failed, total)
	}
}
