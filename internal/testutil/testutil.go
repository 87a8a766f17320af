// Package testutil starts real Latch servers for tests: a real store (a
// fresh SQLite file, or a fresh PostgreSQL database per run), the real HTTP
// handler on an httptest server, the generated client, and a transport that
// validates every response against openapi.yaml.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	_ "github.com/lib/pq"

	"github.com/latchauth/latch"
	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/server"
)

// Clock is a settable clock for tests. The zero value is not usable; use
// NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to the current time.
func NewClock() *Clock { return &Clock{now: time.Now().UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// PostgresURL is where the PostgreSQL tests find a server.
func PostgresURL() string {
	if u := os.Getenv("LATCH_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Dialects lists the databases every storage-facing test runs on:
// SQLite, PostgreSQL, and PostgreSQL through a transaction-mode PgBouncer
// (Pooler) with prepared statements off.
var Dialects = []string{"sqlite", "postgres", Pooler}

// Pooler is the dialect of PostgreSQL behind the PgBouncer at
// LATCH_TEST_PGBOUNCER_URL (tools/pgbouncer.sh starts one; .ci/run does).
const Pooler = "pgbouncer"

// StoreOptions returns the store options a dialect's URL needs: behind the
// pooler, no prepared statements and migrations on the direct URL.
func StoreOptions(t testing.TB, dialect, dbURL string) sqlstore.Options {
	if dialect != Pooler {
		return sqlstore.Options{}
	}
	return sqlstore.Options{NoPreparedStatements: true, DirectURL: directURL(t, dbURL)}
}

// isPoolerURL reports whether dbURL points at the test PgBouncer.
func isPoolerURL(dbURL string) bool {
	p, err1 := url.Parse(os.Getenv("LATCH_TEST_PGBOUNCER_URL"))
	u, err2 := url.Parse(dbURL)
	return os.Getenv("LATCH_TEST_PGBOUNCER_URL") != "" && err1 == nil && err2 == nil && p.Host == u.Host
}

// directURL is the pooler URL's database on the PostgreSQL server itself.
func directURL(t testing.TB, poolerURL string) string {
	u, err := url.Parse(poolerURL)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := url.Parse(PostgresURL())
	d.Path = u.Path
	return d.String()
}

// DatabaseURL returns the URL of a fresh, empty database of the dialect for
// this test: a new SQLite file, or a new PostgreSQL database dropped at the
// end. When PostgreSQL is unreachable the test is skipped with a loud
// message, except under CI=true, where it fails.
func DatabaseURL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
	case Pooler:
		pooler := os.Getenv("LATCH_TEST_PGBOUNCER_URL")
		if pooler == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("PgBouncer is required under CI=true: set LATCH_TEST_PGBOUNCER_URL (tools/pgbouncer.sh start)")
			}
			t.Skip("\n\n*** SKIPPING PgBouncer TEST: LATCH_TEST_PGBOUNCER_URL is not set (tools/pgbouncer.sh start prints it); under CI=true this fails. ***\n\n")
		}
		direct, _ := url.Parse(DatabaseURL(t, "postgres"))
		u, err := url.Parse(pooler)
		if err != nil {
			t.Fatalf("LATCH_TEST_PGBOUNCER_URL: %v", err)
		}
		u.Path = direct.Path
		return u.String()
	case "postgres":
		admin := PostgresURL()
		db, err := sql.Open("postgres", admin)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = db.PingContext(ctx)
			cancel()
		}
		if err != nil {
			if db != nil {
				db.Close()
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("PostgreSQL is required under CI=true but unreachable at %s: %v", redact(admin), err)
			}
			t.Skipf("\n\n*** SKIPPING PostgreSQL TEST: no PostgreSQL at %s (%v). Set LATCH_TEST_POSTGRES_URL or start one; under CI=true this fails. ***\n\n", redact(admin), err)
		}
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := "latch_test_" + hex.EncodeToString(b)
		if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
			db.Close()
			t.Fatalf("create database: %v", err)
		}
		t.Cleanup(func() {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			db.Close()
		})
		u, _ := url.Parse(admin)
		u.Path = "/" + name
		return u.String()
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Config returns a configuration for tests: cheap argon2 parameters, rate
// limits off, quiet logs, the given database.
func Config(t testing.TB, dbURL string) app.Config {
	t.Helper()
	c, err := app.ParseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.DatabaseURL = dbURL
	// Rotations in tests sign at once unless a test asks for a delay.
	c.KeyPublishDelay = 0
	if isPoolerURL(dbURL) {
		c.DBPreparedStatements = false
		c.DatabaseDirectURL = directURL(t, dbURL)
	}
	c.Argon2 = password.Params{MemoryKiB: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	c.RateLimits = false
	c.LogLevel = slog.LevelError
	return c
}

// Server is a running Latch for a test.
type Server struct {
	URL    string
	App    *app.App
	Clock  *Clock
	HTTP   *httptest.Server
	Client *client.ClientWithResponses
	// Doer is the validating HTTP client the generated client uses.
	Doer *http.Client
	Log  *bytes.Buffer
}

// Option adjusts the configuration before the server starts.
type Option func(*app.Config)

// ownURL marks a public URL that Start replaces with the test server's.
const ownURL = "http://testutil.invalid"

// OwnPublicURL is an Option that makes the public URL the test server's
// own (http://127.0.0.1:port), for flows whose redirects come back to
// Latch (provider sign-in). The issuer stays the default.
func OwnPublicURL(c *app.Config) { c.Recovery.PublicURL = ownURL }

// Start starts a Latch on a fresh database of the dialect ("sqlite" or
// "postgres") behind an httptest server; it stops at the end of the test.
func Start(t testing.TB, dialect string, opts ...Option) *Server {
	t.Helper()
	return StartURL(t, DatabaseURL(t, dialect), opts...)
}

// StartURL starts a Latch on the database at dbURL.
func StartURL(t testing.TB, dbURL string, opts ...Option) *Server {
	t.Helper()
	c := Config(t, dbURL)
	for _, o := range opts {
		o(&c)
	}
	clock := NewClock()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := httptest.NewUnstartedServer(nil)
	if c.Recovery.PublicURL == ownURL {
		c.Recovery.PublicURL = "http://" + ts.Listener.Addr().String()
	}
	a, err := app.New(context.Background(), c, log, clock)
	if err != nil {
		ts.Close()
		t.Fatalf("start latch: %v", err)
	}
	ts.Config.Handler = a.Handler
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	doer := &http.Client{Transport: NewValidatingTransport(t, http.DefaultTransport), Timeout: 30 * time.Second}
	cl, err := client.NewClientWithResponses(ts.URL, client.WithHTTPClient(doer))
	if err != nil {
		t.Fatal(err)
	}
	return &Server{URL: ts.URL, App: a, Clock: clock, HTTP: ts, Client: cl, Doer: doer, Log: &logs.buf}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bearer returns a request editor that sets an Authorization header.
func Bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// APIKey returns a request editor that sets X-API-Key.
func APIKey(key string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-API-Key", key)
		return nil
	}
}

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

func init() {
	// kin-openapi decodes no HTML by itself; the reference page is a string.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
}

// Spec returns the parsed openapi.yaml and a router over it.
func Spec() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		specDoc, specErr = server.LoadSpec(latch.SpecYAML())
		if specErr != nil {
			return
		}
		specDoc.Servers = nil
		specRouter, specErr = gorillamux.NewRouter(specDoc)
	})
	return specDoc, specRouter, specErr
}

// ValidateResponse checks a response against the spec: a declared status,
// a declared content type, a body and headers matching their schemas. The
// response body is read and replaced so the caller can still read it.
func ValidateResponse(req *http.Request, res *http.Response) error {
	_, router, err := Spec()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	// Route on a copy whose URL has no host, as the spec's servers are
	// relative, and keeps its escaping, as the server's router sees it (a
	// path parameter "..%2F.." is one segment).
	r2 := req.Clone(context.Background())
	r2.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	route, params, err := router.FindRoute(r2)
	if err != nil {
		if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed || res.StatusCode == http.StatusBadRequest {
			return validateErrorBody(body, res)
		}
		return fmt.Errorf("no route in the spec for %s %s (answered %d %.120s): %v", req.Method, req.URL.Path, res.StatusCode, body, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode,
		Header: res.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{server.FormatValidators()},
		},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s -> %d does not match the spec: %v\nbody: %s", req.Method, req.URL.Path, res.StatusCode, err, truncate(body))
	}
	if res.StatusCode >= 400 {
		return validateErrorBody(body, res)
	}
	return nil
}

// validateErrorBody checks the Error schema by hand for responses that have
// no route (404 and 405 on unknown paths).
func validateErrorBody(body []byte, res *http.Response) error {
	doc, _, err := Spec()
	if err != nil {
		return err
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("error response %d has content type %q", res.StatusCode, ct)
	}
	var v any
	if err := jsonUnmarshal(body, &v); err != nil {
		return fmt.Errorf("error response %d is not JSON: %v", res.StatusCode, err)
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		return fmt.Errorf("error response %d does not match the Error schema: %v\nbody: %s", res.StatusCode, err, truncate(body))
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

type validatingTransport struct {
	t    testing.TB
	next http.RoundTripper
}

// NewValidatingTransport returns a transport that fails the test (t.Errorf)
// for every response that does not match the spec.
func NewValidatingTransport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	return &validatingTransport{t: t, next: next}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := v.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	if err := ValidateResponse(req, res); err != nil {
		v.t.Errorf("response validation: %v", err)
	}
	return res, nil
}

// MarkVerified marks the password account's email verified a second
// before the clock's now, as following its verification link would, so
// that a test can go on to what needs a verified address (creating API
// keys). The verification flow itself is tested through its endpoints.
func (s *Server) MarkVerified(t testing.TB, email string) {
	t.Helper()
	q := `UPDATE users SET email_verified = true, email_verified_at = $1 WHERE email = $2 AND org_id IS NULL`
	now := s.Clock.Now().Add(-time.Second).UTC().Format("2006-01-02 15:04:05.000000+00:00")
	res, err := s.App.Store.DB().Exec(q, now, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		t.Fatalf("mark %s verified: %v", email, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("mark %s verified: no such account", email)
	}
}

// Autoconfirm is an Option that marks new accounts' emails verified at
// signup (LATCH_AUTOCONFIRM_EMAIL), for tests of clients that create API
// keys right after signing up; the verification flow has its own tests.
func Autoconfirm(c *app.Config) { c.AutoconfirmEmail = true }

// RedisURL returns the test Redis (LATCH_TEST_REDIS_URL, default
// redis://127.0.0.1:6379/0) after checking that it answers; it skips loudly
// when none does, and fails under CI=true. Tests give their keys a prefix of
// their own.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("LATCH_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("LATCH_TEST_REDIS_URL: %v", err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required under CI=true but unreachable at %s: %v", pu.Host, err)
		}
		t.Skipf("\n\n*** SKIPPING Redis TEST: no Redis at %s (%v); under CI=true this fails. ***\n\n", pu.Host, err)
	}
	c.Close()
	return u
}
