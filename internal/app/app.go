package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/metrics"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/server"
)

// version is the version latchd reports; the build may override it with
// -ldflags "-X github.com/latchauth/latch/internal/app.version=...".
var version = "0.1.0"

// Version returns the version latchd reports.
func Version() string { return version }

// App is a running Latch: store, service and HTTP handler.
type App struct {
	Config  Config
	Log     *slog.Logger
	Store   *sqlstore.Store
	Service *service.Service
	Handler http.Handler
	Clock   domain.Clock
	// Mail drains the mail outbox; nil when mail is off.
	Mail *mail.Worker
	// Webhooks manages webhook endpoints and delivers their messages.
	Webhooks *service.Webhooks
	// Metrics are served at /metrics on the admin listener.
	Metrics *metrics.Metrics
	// limiter is the rate-limit store's connection, when it has its own.
	limiter io.Closer
	// stopListen ends the change listener (nil on SQLite).
	stopListen func()
}

// NewLogger returns the structured logger the configuration asks for.
func NewLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open connects to the database and applies pending migrations, for the
// commands that do not serve (what the store cannot return to a caller is
// discarded).
func Open(ctx context.Context, c Config) (*sqlstore.Store, error) { return openStore(ctx, c, nil) }

// openStore is Open with a logger for what the store cannot return to a
// caller (a failed refresh-rotation batch).
func openStore(ctx context.Context, c Config, log *slog.Logger) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, c.DatabaseURL, sqlstore.Options{MaxOpenConns: c.DBMaxConns,
		NoPreparedStatements: !c.DBPreparedStatements, DirectURL: c.DatabaseDirectURL, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// New opens the store, migrates it, and builds the service (creating the
// signing key on first start) and the HTTP handler. clock may be nil.
func New(ctx context.Context, c Config, log *slog.Logger, clock domain.Clock) (*App, error) {
	if clock == nil {
		clock = domain.SystemClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	st, err := openStore(ctx, c, log)
	if err != nil {
		return nil, err
	}
	a, err := build(ctx, c, log, clock, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

func build(ctx context.Context, c Config, log *slog.Logger, clock domain.Clock, st *sqlstore.Store) (*App, error) {
	m := metrics.New()
	hasher, err := password.NewHasher(c.Argon2, c.HashConc, c.HashWait, password.WithQueueObserver(m), password.WithClock(clock))
	if err != nil {
		return nil, err
	}
	issuer, err := token.NewIssuer(token.Config{Alg: c.SigningAlg, Issuer: c.Issuer, Audience: c.Audience, Clock: clock})
	if err != nil {
		return nil, err
	}
	sealer, err := token.NewSealer(c.MasterKey)
	if err != nil {
		return nil, err
	}
	m.WatchDB(st.DB())
	limiter, limiterCloser, err := newLimiter(ctx, c, st, clock)
	if err != nil {
		return nil, err
	}
	var worker *mail.Worker // set once the service is initialised; nil-safe
	svc := service.New(service.Config{
		AccessTTL: c.AccessTTL, RefreshIdleTTL: c.RefreshIdle, SessionMaxTTL: c.SessionMax, ReuseGrace: c.ReuseGrace,
		SessionCacheTTL: c.SessionCache, RateLimits: c.RateLimits, Limits: c.Limits,
		RequireVerifiedEmail: c.RequireVerifiedEmail, AutoconfirmEmail: c.AutoconfirmEmail, Recovery: c.Recovery.serviceConfig(),
		APIKeys: c.APIKeys, Quotas: c.Quotas, ClientID: c.ClientID, KeyPublishDelay: c.KeyPublishDelay,
	}, service.Deps{Store: st, Hasher: hasher, Issuer: issuer, Sealer: sealer, Clock: clock, Log: log, Limiter: limiter, Notifier: notifier(st),
		Metrics:    m,
		MailQueued: func() { worker.Notify() }})
	if err := svc.Init(ctx); err != nil {
		return nil, err
	}
	if worker, err = newMailWorker(c, st, svc, clock, log); err != nil {
		return nil, err
	}
	// Each feature is made with the shared pieces it uses.
	sh := svc.Shared()
	mfa, err := newMFA(c, sh, st)
	if err != nil {
		return nil, err
	}
	fed, err := newFederation(c, sh, st)
	if err != nil {
		return nil, err
	}
	orgs := service.NewOrgs(sh, st)
	otp := service.NewOTP(sh, st, c.otpServiceConfig())
	if err := otp.Init(ctx); err != nil {
		return nil, err
	}
	apiKeys := service.NewAPIKeys(sh, st, orgs)
	webhooks := service.NewWebhooks(c.Webhooks, sh, st, orgs, m)
	h, err := server.NewHandler(server.Config{
		Version: Version(), MaxBodyBytes: c.MaxBodyBytes, CORSOrigins: c.CORSOrigins, TrustedProxies: c.TrustedProxies,
		PublicURL: c.Recovery.PublicURL, Observe: m.Request,
	}, server.Services{Core: svc, APIKeys: apiKeys, OAuth: service.NewOAuth(sh, st, apiKeys), Orgs: orgs, Recovery: service.NewRecovery(sh, st),
		Events: service.NewEvents(st), UserImport: service.NewUserImport(sh, st), Impersonation: service.NewImpersonation(sh, st), Webhooks: webhooks, MFA: mfa,
		Users: service.NewUsers(sh, st), OTP: otp, Federation: fed, SSO: service.NewSSO(sh, st, orgs, fed, newResolver(c))}, log, latch.SpecYAML())
	if err != nil {
		return nil, err
	}
	a := &App{Config: c, Log: log, Store: st, Service: svc, Handler: h, Clock: clock, Mail: worker, Webhooks: webhooks, limiter: limiterCloser, Metrics: m}
	a.listen()
	return a, nil
}

// notifier is the store on PostgreSQL, where several instances share the
// database; nil on SQLite.
func notifier(st *sqlstore.Store) service.Notifier {
	if st.Dialect() == sqlstore.Postgres {
		return st
	}
	return nil
}

// listen receives the other instances' changes for as long as the app
// lives (PostgreSQL only), so that a revocation anywhere reaches this
// instance's caches within about a second.
func (a *App) listen() {
	if a.Store.Dialect() != sqlstore.Postgres {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		state := 0 // 0 starting, 1 connected, 2 lost
		_ = a.Store.Listen(ctx, a.Service.Invalidate, a.Service.ChangeSent, func(up bool) {
			switch {
			case up && state != 1:
				a.Log.Info("listening for changes from other instances")
				state = 1
			case !up && state == 1:
				a.Log.Warn("not receiving changes from other instances: caches flushed and off until the connection is back")
				state = 2
			}
			a.Service.NotificationsConnected(up)
		})
	}()
	a.stopListen = func() { cancel(); <-done }
}

// Close waits for the service's background work, then releases the store.
func (a *App) Close() error {
	a.Service.Close()
	if a.stopListen != nil {
		a.stopListen()
	}
	if a.limiter != nil {
		a.limiter.Close()
	}
	return a.Store.Close()
}

// Listeners are the bound addresses of a latchd: the API's and the admin
// listener's (nil when LATCH_ADMIN_ADDR is empty).
type Listeners struct {
	API   net.Listener
	Admin net.Listener
}

// Close closes the listeners.
func (l Listeners) Close() {
	if l.API != nil {
		l.API.Close()
	}
	if l.Admin != nil {
		l.Admin.Close()
	}
}

// Listen binds c's API address and, when set, its admin address. serve
// calls it before anything touches the database, so that an address in use
// fails at once and leaves no trace. Returns an error naming the setting
// whose address could not be bound.
func Listen(c Config) (Listeners, error) {
	var l Listeners
	var err error
	if l.API, err = net.Listen("tcp", c.Addr); err != nil {
		return l, fmt.Errorf("LATCH_ADDR=%q: %w", c.Addr, err)
	}
	if c.PprofAddr != "" {
		if l.Admin, err = net.Listen("tcp", c.PprofAddr); err != nil {
			l.Close()
			return Listeners{}, fmt.Errorf("LATCH_ADMIN_ADDR=%q: %w", c.PprofAddr, err)
		}
	}
	return l, nil
}

// Serve serves the API on ln, and the admin listener on LATCH_ADMIN_ADDR
// when set, until ctx ends; see ServeListeners.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	l := Listeners{API: ln}
	if a.Config.PprofAddr != "" {
		admin, err := net.Listen("tcp", a.Config.PprofAddr)
		if err != nil {
			return fmt.Errorf("LATCH_ADMIN_ADDR=%q: %w", a.Config.PprofAddr, err)
		}
		l.Admin = admin
	}
	return a.ServeListeners(ctx, l)
}

// ServeListeners serves the API on l.API, and the admin listener on
// l.Admin when it is not nil, until ctx ends, then shuts down gracefully.
// It also runs the service's background work. It returns a non-nil error
// unless the shutdown was clean.
func (a *App) ServeListeners(ctx context.Context, l Listeners) error {
	ln := l.API
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Service.Run(bg) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.Service.Pruner().Run(bg) }()
	if a.Mail != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.Mail.Run(bg) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.Webhooks.Run(bg) }()
	if l.Admin != nil {
		mux := http.NewServeMux()
		// No /debug/pprof/cmdline: the command line may hold secrets
		// (-master-key, -smtp-url); pprof.Index answers it 404.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/vars", a.varsHandler())
		mux.Handle("/metrics", a.Metrics.Handler())
		admin := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := admin.Serve(l.Admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.Log.Error("admin listener", "err", err)
			}
		}()
		defer admin.Close()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("latchd listening", "addr", ln.Addr().String(), "version", Version())
	warnWeakSettings(a.Log, a.Config, ln.Addr())
	if a.Config.PublicURLDerived {
		a.Log.Info("LATCH_PUBLIC_URL is not set: derived from LATCH_ADDR; it is the issuer and the base of every link, so set it when clients reach Latch at another address",
			"public_url", a.Config.Recovery.PublicURL, "issuer", a.Config.Issuer)
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		a.Log.Info("latchd stopped")
	}
	// Let the requests' background work (queueing reset mails) finish before
	// the workers stop.
	a.Service.Close()
	stop()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveCommand is latchd serve. It binds the listeners before it opens the
// database: a busy address fails at once, before migrations or key
// generation write anything.
func serveCommand(ctx context.Context, r runEnv, c Config) int {
	if n := applyGCSettings(c); n > 0 {
		r.log.Debug("soft memory limit", "bytes", n)
	}
	l, err := Listen(c)
	if err != nil {
		fmt.Fprintln(r.stderr, "latchd:", err)
		return 1
	}
	a, err := New(ctx, c, r.log, r.clock)
	if err != nil {
		l.Close()
		fmt.Fprintln(r.stderr, "latchd:", err)
		return 1
	}
	defer a.Close()
	if err := a.ServeListeners(ctx, l); err != nil {
		fmt.Fprintln(r.stderr, "latchd:", err)
		return 1
	}
	return 0
}
