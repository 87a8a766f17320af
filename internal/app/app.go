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
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latchauth/latch"
	"github.com/latchauth/latch/docs"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/mail"
	"github.com/latchauth/latch/internal/metrics"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/sqlstore"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/server"
)

// Version is the version latchd reports; the build may override it with
// -ldflags "-X github.com/latchauth/latch/internal/app.Version=...".
var Version = "0.1.0"

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

// Open connects to the database and applies pending migrations.
func Open(ctx context.Context, c Config) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, c.DatabaseURL, sqlstore.Options{MaxOpenConns: c.DBMaxConns,
		NoPreparedStatements: !c.DBPreparedStatements, DirectURL: c.DatabaseDirectURL})
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
	st, err := Open(ctx, c)
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
	hasher, err := password.NewHasher(c.Argon2, c.HashConc, c.HashWait)
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
	m := metrics.New()
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
		APIKeys: c.APIKeys.serviceConfig(), Quotas: c.Quotas, ClientID: c.ClientID, KeyPublishDelay: c.KeyPublishDelay,
	}, service.Deps{Store: st, Hasher: hasher, Issuer: issuer, Sealer: sealer, Clock: clock, Log: log, Limiter: limiter, Notifier: notifier(st),
		Metrics:    m,
		MailQueued: func() { worker.Notify() }})
	if err := svc.Init(ctx); err != nil {
		return nil, err
	}
	if worker, err = newMailWorker(c, st, svc, clock, log); err != nil {
		return nil, err
	}
	h, err := server.NewHandler(server.Config{
		Version: Version, MaxBodyBytes: c.MaxBodyBytes, CORSOrigins: c.CORSOrigins, TrustedProxies: c.TrustedProxies,
		PublicURL: c.Recovery.PublicURL, Observe: m.Request,
	}, svc, log, latch.SpecYAML, docs.Page)
	if err != nil {
		return nil, err
	}
	a := &App{Config: c, Log: log, Store: st, Service: svc, Handler: h, Clock: clock, Mail: worker, limiter: limiterCloser, Metrics: m}
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
		_ = a.Store.Listen(ctx, a.Service.Invalidate, func(up bool) {
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

// Serve serves on ln until ctx ends, then shuts down gracefully. It also
// runs the service's background work. Serve always returns a non-nil error
// unless the shutdown was clean.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
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
	go func() { defer wg.Done(); a.Service.RunPruner(bg) }()
	if a.Mail != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.Mail.Run(bg) }()
	}
	if a.Config.PprofAddr != "" {
		mux := http.NewServeMux()
		// No /debug/pprof/cmdline: the command line may hold secrets
		// (-master-key, -smtp-url); pprof.Index answers it 404.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/vars", a.varsHandler())
		mux.Handle("/metrics", a.Metrics.Handler())
		admin := &http.Server{Addr: a.Config.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := admin.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.Log.Error("pprof listener", "err", err)
			}
		}()
		defer admin.Close()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("latchd listening", "addr", ln.Addr().String(), "version", Version)
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

// Main runs the latchd command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	sub := ""
	if cmd == "keys" {
		if len(args) == 0 {
			fmt.Fprintln(stderr, "usage: latchd keys rotate|list|seal [flags]")
			return 2
		}
		sub, args = args[0], args[1:]
		// keys rotate --alg X is -signing-alg X: the algorithm of the new key.
		for i, a := range args {
			switch {
			case a == "--alg" || a == "-alg":
				args[i] = "-signing-alg"
			case strings.HasPrefix(a, "--alg=") || strings.HasPrefix(a, "-alg="):
				args[i] = "-signing-alg=" + a[strings.IndexByte(a, '=')+1:]
			}
		}
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "latchd", Version)
		return 0
	}
	c, err := ParseConfig(args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "latchd: bad configuration:", err)
		return 2
	}
	log := NewLogger(c, stderr)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	switch cmd {
	case "serve":
		if n := applyGCSettings(c); n > 0 {
			log.Debug("soft memory limit", "bytes", n)
		}
		a, err := New(ctx, c, log, nil)
		if err != nil {
			fmt.Fprintln(stderr, "latchd:", err)
			return 1
		}
		defer a.Close()
		ln, err := net.Listen("tcp", c.Addr)
		if err != nil {
			fmt.Fprintln(stderr, "latchd:", err)
			return 1
		}
		if err := a.Serve(ctx, ln); err != nil {
			fmt.Fprintln(stderr, "latchd:", err)
			return 1
		}
		return 0
	case "migrate":
		st, err := Open(ctx, c)
		if err != nil {
			fmt.Fprintln(stderr, "latchd:", err)
			return 1
		}
		st.Close()
		fmt.Fprintln(stdout, "migrations applied")
		return 0
	case "keys":
		switch sub {
		case "seal":
			// Not through New: its start refuses unsealed values.
			return sealCommand(ctx, c, stdout, stderr)
		case "rotate":
			// Not through New either: an instance's start checks that
			// LATCH_SIGNING_ALG is the active key's, and rotating is how
			// the algorithm changes.
			return rotateCommand(ctx, c, stdout, stderr)
		case "list":
			return listKeysCommand(ctx, c, stdout, stderr)
		}
		fmt.Fprintln(stderr, "usage: latchd keys rotate|list|seal [flags]")
		return 2
	}
	fmt.Fprintf(stderr, "latchd: unknown command %q (serve, migrate, keys rotate|list|seal, version)\n", cmd)
	return 2
}
