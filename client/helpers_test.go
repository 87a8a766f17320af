package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/internal/testutil"
)

const password = "correct horse battery staple"

// latch is a real in-process Latch behind a front server that counts
// requests by path and status, so tests can count refreshes.
type latch struct {
	*testutil.Server
	// URL is the counting front; clients under test use it.
	URL string
	// front serves URL; closing it takes Latch off the network.
	front *httptest.Server

	mu       sync.Mutex
	calls    map[string]int // "POST /auth/refresh" -> n
	statuses map[string]int // "GET /auth/me 401" -> n
	// intercept, when set, may answer a request itself.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

func start(t *testing.T, opts ...testutil.Option) *latch {
	t.Helper()
	s := testutil.Start(t, "sqlite", append([]testutil.Option{testutil.Autoconfirm}, opts...)...)
	l := &latch{Server: s, calls: map[string]int{}, statuses: map[string]int{}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		l.mu.Lock()
		l.calls[key]++
		l.mu.Unlock()
		rec := &statusWriter{ResponseWriter: w, status: 200}
		if f := l.intercept.Load(); f == nil || !(*f)(rec, r) {
			s.App.Handler.ServeHTTP(rec, r)
		}
		l.mu.Lock()
		l.statuses[key+" "+strconv.Itoa(rec.status)]++
		l.mu.Unlock()
	}))
	t.Cleanup(front.Close)
	l.URL, l.front = front.URL, front
	return l
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

// count returns how many requests "METHOD /path" reached the front.
func (l *latch) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[key]
}

// countStatus returns how many "METHOD /path STATUS" answers were sent.
func (l *latch) countStatus(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statuses[key]
}

func (l *latch) refreshes() int { return l.count("POST /auth/refresh") }

// newClient returns an SDK client for l whose responses are validated
// against openapi.yaml; its clock is the server's unless opts say else.
func (l *latch) newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	all := append([]client.Option{
		client.WithTransport(testutil.NewValidatingTransport(t, http.DefaultTransport)),
		client.WithClock(l.Clock.Now),
	}, opts...)
	c, err := client.New(l.URL, all...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func email() string { return "u" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12] + "@example.com" }

// signup creates a user through c and returns its tokens.
func signup(t *testing.T, c *client.Client) *client.TokenResponse {
	t.Helper()
	tr, err := c.SignUp(context.Background(), email(), password)
	if err != nil {
		t.Fatalf("signup: %v", err)
	}
	return tr
}

// orgKey signs up an owner, creates an organization and an organization
// key with scopes, and returns the organization id and the key.
func orgKey(t *testing.T, l *latch, scopes ...string) (client.OrgId, string) {
	t.Helper()
	ctx := context.Background()
	owner := l.newClient(t)
	signup(t, owner)
	org, err := owner.CreateOrganization(ctx, "Acme "+uuid.NewString()[:8])
	if err != nil {
		t.Fatalf("create organization: %v", err)
	}
	key, err := owner.CreateOrgAPIKey(ctx, org.Id, client.CreateAPIKeyRequest{Label: "test", Scopes: scopes})
	if err != nil {
		t.Fatalf("create organization key: %v", err)
	}
	return org.Id, key.Key
}

// fakeClock is a settable clock for clients whose server has none.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
