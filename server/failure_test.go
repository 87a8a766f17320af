package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch"
	client "github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/testutil"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/server"
)

// failingStore injects a driver-level failure into one store method.
type failingStore struct {
	service.Store
	failListSessions  bool
	blockListSessions bool
}

func (f *failingStore) ListSessions(ctx context.Context, userID uuid.UUID, now time.Time, after *domain.Cursor, limit int) ([]domain.Session, error) {
	if f.failListSessions {
		return nil, errors.New("pq: connection to 10.0.0.7 reset: secret internal detail")
	}
	if f.blockListSessions {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.Store.ListSessions(ctx, userID, now, after, limit)
}

// countingHasher counts the password verifications the service asks for.
type countingHasher struct {
	*password.Hasher
	verifies atomic.Int32
}

func (c *countingHasher) Verify(ctx context.Context, pw, phc string) (bool, bool, error) {
	c.verifies.Add(1)
	return c.Hasher.Verify(ctx, pw, phc)
}

type rig struct {
	srv    *httptest.Server
	client *client.ClientWithResponses
	hasher *countingHasher
	store  *failingStore
	logs   *syncLog
	// observed receives what the handler tells its metrics: "path status".
	observed chan string
}

// syncLog is a log buffer that the server writes while a test reads it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newRig(t *testing.T, cfg service.Config) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, testutil.DatabaseURL(t, "sqlite"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h, _ := password.NewHasher(password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2, time.Second)
	iss, _ := token.NewIssuer(token.Config{Alg: token.ES256, Issuer: "http://127.0.0.1:8080", Audience: "latch"})
	sealer, _ := token.NewSealer("")
	r := &rig{hasher: &countingHasher{Hasher: h}, store: &failingStore{Store: st}, logs: &syncLog{}, observed: make(chan string, 64)}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	svc := service.New(cfg, service.Deps{Store: r.store, Hasher: r.hasher, Issuer: iss, Sealer: sealer, Log: log})
	if err := svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	observe := func(method, path string, status int, _ time.Duration) {
		select {
		case r.observed <- fmt.Sprintf("%s %d", path, status):
		default:
		}
	}
	sh := svc.Shared()
	orgs := service.NewOrgs(sh, st)
	apiKeys := service.NewAPIKeys(sh, st, orgs)
	handler, err := server.NewHandler(server.Config{Version: app.Version(), Observe: observe},
		server.Services{Core: svc, APIKeys: apiKeys, OAuth: service.NewOAuth(sh, st, apiKeys), Orgs: orgs, Recovery: service.NewRecovery(sh, st),
			Events: service.NewEvents(st), UserImport: service.NewUserImport(sh, st), Impersonation: service.NewImpersonation(sh, st),
			Webhooks: service.NewWebhooks(service.WebhookConfig{}, sh, st, orgs, nil),
			Users:    service.NewUsers(sh, st)}, log, latch.SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(handler)
	t.Cleanup(r.srv.Close)
	r.client, _ = client.NewClientWithResponses(r.srv.URL, client.WithHTTPClient(newValidatingClient(t)))
	return r
}

func baseConfig() service.Config {
	return service.Config{AccessTTL: 15 * time.Minute, RefreshIdleTTL: time.Hour, SessionMaxTTL: 24 * time.Hour, ReuseGrace: 10 * time.Second}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	r := newRig(t, baseConfig())
	ctx := context.Background()
	su, _ := r.client.SignupWithResponse(ctx, client.SignupJSONRequestBody{Email: "fail@example.com", Password: goodPassword})
	r.store.failListSessions = true
	res, err := r.client.ListSessionsWithResponse(ctx, nil, testutil.Bearer(signupSession(t, su).AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != 500 || res.JSON500.Error != client.ErrorCodeInternal {
		t.Fatalf("%d %s", res.StatusCode(), res.Body)
	}
	if strings.Contains(string(res.Body), "secret internal detail") || strings.Contains(string(res.Body), "pq:") {
		t.Fatalf("internal detail leaked: %s", res.Body)
	}
	if !strings.Contains(r.logs.String(), res.JSON500.RequestId) || !strings.Contains(r.logs.String(), "secret internal detail") {
		t.Fatal("the failure was not logged with its request id")
	}
}

func TestUnknownEmailStillVerifiesAHash(t *testing.T) {
	r := newRig(t, baseConfig())
	ctx := context.Background()
	res, _ := r.client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "nobody@example.com", Password: goodPassword})
	if res.StatusCode() != 401 {
		t.Fatalf("%d", res.StatusCode())
	}
	if n := r.hasher.verifies.Load(); n != 1 {
		t.Fatalf("unknown email cost %d verifications, want 1 (against the dummy hash)", n)
	}
}

func TestLoginRateLimitRunsBeforeHashing(t *testing.T) {
	cfg := baseConfig()
	cfg.RateLimits = true
	cfg.Limits = service.Limits{LoginAccount: ratelimit.Rule{Burst: 2, Per: time.Hour}, LoginIP: ratelimit.Rule{Burst: 1000, Per: time.Hour}}
	r := newRig(t, cfg)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		_, _ = r.client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "target@example.com", Password: "a wrong password"})
	}
	before := r.hasher.verifies.Load()
	for i := 0; i < 5; i++ {
		res, _ := r.client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: "target@example.com", Password: "a wrong password"})
		if res.StatusCode() != 429 {
			t.Fatalf("attempt over the limit: %d", res.StatusCode())
		}
	}
	if after := r.hasher.verifies.Load(); after != before {
		t.Fatalf("%d hashes computed for rate-limited attempts", after-before)
	}
}
