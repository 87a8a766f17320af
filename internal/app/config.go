// Package app wires Latch together: configuration from LATCH_* variables and
// flags, the store, the service and the HTTP server. cmd/latchd is a thin
// wrapper around it, and end-to-end tests start it on a random port.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/service"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/server"
)

// Config is the whole configuration of latchd.
type Config struct {
	Addr        string
	DatabaseURL string
	DBMaxConns  int
	// DBPreparedStatements uses named prepared statements for hot queries
	// (default). Behind a transaction-mode pooler it must be false.
	DBPreparedStatements bool
	// DatabaseDirectURL bypasses the pooler for migrations (default:
	// DatabaseURL).
	DatabaseDirectURL string
	// RateLimitStore is memory, postgres or redis ("": see limitStore).
	RateLimitStore string
	// RedisURL is the Redis of the rate limits; RedisPrefix names its keys.
	RedisURL    string
	RedisPrefix string
	// KeyPublishDelay is how long a rotated-in signing key is only
	// published (in the JWKS) before it signs.
	KeyPublishDelay time.Duration
	// Issuer is the iss of access tokens; empty means the public URL
	// (Recovery.PublicURL), the one source of every link.
	Issuer   string
	Audience string
	// ClientID is the client_id claim of user sessions' access tokens.
	ClientID string
	// PublicURLDerived is set when LATCH_PUBLIC_URL was not given and was
	// derived from LATCH_ADDR (latchd says so at start).
	PublicURLDerived     bool
	SigningAlg           string
	MasterKey            string
	AccessTTL            time.Duration
	RefreshIdle          time.Duration
	SessionMax           time.Duration
	ReuseGrace           time.Duration
	SessionCache         time.Duration
	Argon2               password.Params
	HashConc             int
	HashWait             time.Duration
	RateLimits           bool
	Limits               service.Limits
	CORSOrigins          []string
	TrustedProxies       []netip.Prefix // proxies whose X-Forwarded-For is believed; see server.Config
	AllowWeakHashing     bool           // accept argon2id parameters below OWASP's minimum (tests, development)
	MaxBodyBytes         int64
	LogLevel             slog.Level
	LogFormat            string
	PprofAddr            string
	RequireVerifiedEmail bool
	// AutoconfirmEmail marks every new account's email verified at signup,
	// with no mail (development and automated API tests only).
	AutoconfirmEmail bool
	ShutdownTimeout  time.Duration
	Recovery         RecoveryConfig
	APIKeys          APIKeyConfig
	Quotas           service.Quotas
}

type ruleFlag struct{ r *ratelimit.Rule }

func (f ruleFlag) String() string {
	if f.r == nil {
		return ""
	}
	return f.r.String()
}

func (f ruleFlag) Set(s string) error {
	r, err := ratelimit.ParseRule(s)
	if err != nil {
		return err
	}
	*f.r = r
	return nil
}

type proxiesFlag struct{ p *[]netip.Prefix }

func (f proxiesFlag) String() string {
	if f.p == nil {
		return ""
	}
	s := make([]string, len(*f.p))
	for i, p := range *f.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (f proxiesFlag) Set(s string) error {
	p, err := server.ParseTrustedProxies(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

type listFlag struct{ l *[]string }

func (f listFlag) String() string {
	if f.l == nil {
		return ""
	}
	return strings.Join(*f.l, ",")
}

func (f listFlag) Set(s string) error {
	*f.l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*f.l = append(*f.l, p)
		}
	}
	return nil
}

type levelFlag struct{ l *slog.Level }

func (f levelFlag) String() string {
	if f.l == nil {
		return ""
	}
	return f.l.String()
}
func (f levelFlag) Set(s string) error { return f.l.UnmarshalText([]byte(s)) }

// ParseConfig reads the configuration: defaults, then LATCH_* variables from
// getenv, then flags from args (flags win). Returns an error naming the bad
// setting.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Config{
		Addr:                 "127.0.0.1:8080",
		DatabaseURL:          "sqlite://latch.db",
		DBPreparedStatements: true,
		RedisPrefix:          "latch:",
		KeyPublishDelay:      10 * time.Minute,
		Audience:             "latch",
		ClientID:             "latch",
		SigningAlg:           token.ES256,
		AccessTTL:            15 * time.Minute,
		RefreshIdle:          7 * 24 * time.Hour,
		SessionMax:           30 * 24 * time.Hour,
		ReuseGrace:           10 * time.Second,
		SessionCache:         2 * time.Second,
		Argon2:               password.DefaultParams,
		HashConc:             runtime.NumCPU(),
		HashWait:             5 * time.Second,
		RateLimits:           true,
		Limits:               service.DefaultLimits,
		MaxBodyBytes:         64 << 10,
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
		ShutdownTimeout:      15 * time.Second,
		Recovery:             defaultRecovery(),
		APIKeys:              defaultAPIKeys(),
		Quotas:               service.DefaultQuotas,
	}
	var memKiB, timeCost, threads uint
	memKiB, timeCost, threads = uint(c.Argon2.MemoryKiB), uint(c.Argon2.Time), uint(c.Argon2.Threads)

	fs := flag.NewFlagSet("latchd", flag.ContinueOnError)
	fs.SetOutput(usage)
	type def struct{ flag, env string }
	var defs []def
	str := func(p *string, name, env, usage string) {
		fs.StringVar(p, name, *p, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}
	dur := func(p *time.Duration, name, env, usage string) {
		fs.DurationVar(p, name, *p, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}
	num := func(p *uint, name, env, usage string) {
		fs.UintVar(p, name, *p, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}
	integer := func(p *int, name, env, usage string) {
		fs.IntVar(p, name, *p, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}
	boolean := func(p *bool, name, env, usage string) {
		fs.BoolVar(p, name, *p, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}
	value := func(v flag.Value, name, env, usage string) {
		fs.Var(v, name, usage+" ("+env+")")
		defs = append(defs, def{name, env})
	}

	str(&c.Addr, "addr", "LATCH_ADDR", "listen address")
	str(&c.DatabaseURL, "database-url", "LATCH_DATABASE_URL", "sqlite://relative.db, sqlite:///absolute.db or postgres://...")
	integer(&c.DBMaxConns, "db-max-conns", "LATCH_DB_MAX_CONNS", "database connection pool size (0: per-driver default)")
	boolean(&c.DBPreparedStatements, "db-prepared-statements", "LATCH_DB_PREPARED_STATEMENTS", "named prepared statements for hot queries; false behind a transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy)")
	str(&c.RateLimitStore, "rate-limit-store", "LATCH_RATE_LIMIT_STORE", "memory, postgres or redis (default: redis with LATCH_REDIS_URL, postgres on PostgreSQL, else memory)")
	str(&c.RedisURL, "redis-url", "LATCH_REDIS_URL", "redis://host:6379/0 for the shared rate limits")
	str(&c.RedisPrefix, "redis-prefix", "LATCH_REDIS_PREFIX", "prefix of Latch's Redis keys")
	dur(&c.KeyPublishDelay, "key-publish-delay", "LATCH_KEY_PUBLISH_DELAY", "how long a rotated-in signing key is only published (JWKS) before it signs")
	str(&c.DatabaseDirectURL, "database-direct-url", "LATCH_DATABASE_DIRECT_URL", "postgres:// URL that bypasses the pooler, for migrations (default: LATCH_DATABASE_URL)")
	str(&c.Issuer, "issuer", "LATCH_ISSUER", "iss claim of access tokens (default: the public URL)")
	str(&c.Audience, "audience", "LATCH_AUDIENCE", "aud claim of access tokens")
	str(&c.ClientID, "client-id", "LATCH_CLIENT_ID", "client_id claim of user sessions' access tokens (RFC 9068)")
	str(&c.SigningAlg, "signing-alg", "LATCH_SIGNING_ALG", "ES256, EdDSA or RS256")
	str(&c.MasterKey, "master-key", "LATCH_MASTER_KEY", "base64 32-byte key that encrypts signing keys at rest")
	dur(&c.AccessTTL, "access-ttl", "LATCH_ACCESS_TTL", "access token lifetime")
	dur(&c.RefreshIdle, "refresh-idle-ttl", "LATCH_REFRESH_IDLE_TTL", "session idle lifetime")
	dur(&c.SessionMax, "session-max-ttl", "LATCH_SESSION_MAX_TTL", "session absolute lifetime")
	dur(&c.ReuseGrace, "refresh-reuse-grace", "LATCH_REFRESH_REUSE_GRACE", "how long the previous refresh token may be replayed")
	dur(&c.SessionCache, "session-cache-ttl", "LATCH_SESSION_CACHE_TTL", "how long another instance may trust a cached session")
	num(&memKiB, "argon2-memory-kib", "LATCH_ARGON2_MEMORY_KIB", "argon2id memory in KiB")
	num(&timeCost, "argon2-time", "LATCH_ARGON2_TIME", "argon2id iterations")
	num(&threads, "argon2-threads", "LATCH_ARGON2_THREADS", "argon2id parallelism")
	integer(&c.HashConc, "hash-concurrency", "LATCH_HASH_CONCURRENCY", "password hashes computed at once")
	dur(&c.HashWait, "hash-max-wait", "LATCH_HASH_MAX_WAIT", "how long a request waits for hashing capacity before 503")
	boolean(&c.RateLimits, "rate-limits", "LATCH_RATE_LIMITS", "enforce rate limits")
	value(ruleFlag{&c.Limits.LoginAccount}, "rate-login-account", "LATCH_RATE_LOGIN_ACCOUNT", "failed logins per account, N/duration")
	value(ruleFlag{&c.Limits.LoginIP}, "rate-login-ip", "LATCH_RATE_LOGIN_IP", "login attempts per client IP, N/duration")
	value(ruleFlag{&c.Limits.SignupIP}, "rate-signup-ip", "LATCH_RATE_SIGNUP_IP", "signups per client IP, N/duration")
	value(ruleFlag{&c.Limits.RefreshIP}, "rate-refresh-ip", "LATCH_RATE_REFRESH_IP", "refreshes per client IP, N/duration")
	value(listFlag{&c.CORSOrigins}, "cors-origins", "LATCH_CORS_ORIGINS", "comma-separated allowed CORS origins")
	value(proxiesFlag{&c.TrustedProxies}, "trusted-proxies", "LATCH_TRUSTED_PROXIES", "comma-separated addresses or CIDR prefixes of the proxies whose X-Forwarded-For is believed")
	// LATCH_TRUST_PROXY believed the last X-Forwarded-For hop from anyone.
	// It is refused when true rather than given a new meaning.
	var trustProxy bool
	boolean(&trustProxy, "trust-proxy", "LATCH_TRUST_PROXY", "removed: use LATCH_TRUSTED_PROXIES")
	boolean(&c.AllowWeakHashing, "allow-weak-hashing", "LATCH_ALLOW_WEAK_HASHING", "accept argon2id parameters below OWASP's minimum (tests, development)")
	var maxBody int = int(c.MaxBodyBytes)
	integer(&maxBody, "max-body-bytes", "LATCH_MAX_BODY_BYTES", "request body size limit")
	value(levelFlag{&c.LogLevel}, "log-level", "LATCH_LOG_LEVEL", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "LATCH_LOG_FORMAT", "text or json")
	str(&c.PprofAddr, "pprof-addr", "LATCH_PPROF_ADDR", "the admin listener's former name (LATCH_ADMIN_ADDR wins)")
	str(&c.PprofAddr, "admin-addr", "LATCH_ADMIN_ADDR", "admin listener: /metrics (Prometheus), pprof, /debug/vars; never the public port (off when empty)")
	boolean(&c.RequireVerifiedEmail, "require-verified-email", "LATCH_REQUIRE_VERIFIED_EMAIL", "refuse login until the email is verified")
	boolean(&c.AutoconfirmEmail, "autoconfirm-email", "LATCH_AUTOCONFIRM_EMAIL", "mark new accounts' emails verified at signup without mail (development only)")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "LATCH_SHUTDOWN_TIMEOUT", "graceful shutdown limit")
	// Password reset, email verification, mail and pruning.
	str(&c.Recovery.PublicURL, "public-url", "LATCH_PUBLIC_URL", "where clients reach Latch: the issuer (unless LATCH_ISSUER is set), the discovery endpoints and every mailed link (never taken from a request; default http:// + LATCH_ADDR)")
	str(&c.Recovery.ResetURL, "reset-url", "LATCH_RESET_URL", "password-reset page: absolute URL or path below the public URL, with {token}")
	str(&c.Recovery.VerifyURL, "verify-url", "LATCH_VERIFY_URL", "email-verification page: absolute URL or path below the public URL, with {token}")
	dur(&c.Recovery.ResetTTL, "reset-ttl", "LATCH_RESET_TTL", "password-reset token lifetime")
	dur(&c.Recovery.VerifyTTL, "verify-ttl", "LATCH_VERIFY_TTL", "email-verification token lifetime")
	str(&c.Recovery.InviteURL, "invite-url", "LATCH_INVITE_URL", "organization-invitation page: absolute URL or path below the public URL, with {token}")
	dur(&c.Recovery.InviteTTL, "invite-ttl", "LATCH_INVITE_TTL", "organization-invitation link lifetime")
	boolean(&c.Recovery.MailLogLinks, "mail-log-links", "LATCH_MAIL_LOG_LINKS", "show the links of mails written by the log transport (development only)")
	str(&c.Recovery.MailTransport, "mail-transport", "LATCH_MAIL_TRANSPORT", "log (development only), smtp or none; default smtp when LATCH_SMTP_URL is set, else log")
	str(&c.Recovery.SMTPURL, "smtp-url", "LATCH_SMTP_URL", "smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465")
	str(&c.Recovery.MailFrom, "mail-from", "LATCH_MAIL_FROM", "sender of mails")
	str(&c.Recovery.MailTemplatesDir, "mail-templates-dir", "LATCH_MAIL_TEMPLATES_DIR", "directory whose templates replace the embedded ones")
	integer(&c.Recovery.MailMaxAttempts, "mail-max-attempts", "LATCH_MAIL_MAX_ATTEMPTS", "delivery attempts before a mail is abandoned")
	dur(&c.Recovery.MailPoll, "mail-poll-interval", "LATCH_MAIL_POLL_INTERVAL", "how often the mail outbox is checked")
	dur(&c.Recovery.EventRetention, "event-retention", "LATCH_EVENT_RETENTION", "how long security events are kept")
	dur(&c.Recovery.PruneInterval, "prune-interval", "LATCH_PRUNE_INTERVAL", "how often expired rows are pruned")
	integer(&c.Recovery.PruneBatch, "prune-batch", "LATCH_PRUNE_BATCH", "most rows one pruning statement deletes")
	value(ruleFlag{&c.Limits.ForgotEmail}, "rate-forgot-email", "LATCH_RATE_FORGOT_EMAIL", "password-reset mails per email, N/duration")
	value(ruleFlag{&c.Limits.ForgotIP}, "rate-forgot-ip", "LATCH_RATE_FORGOT_IP", "password-reset requests per client IP, N/duration")
	value(ruleFlag{&c.Limits.ResetIP}, "rate-reset-ip", "LATCH_RATE_RESET_IP", "password resets per client IP, N/duration")
	value(ruleFlag{&c.Limits.VerifyIP}, "rate-verify-ip", "LATCH_RATE_VERIFY_IP", "email verifications per client IP, N/duration")
	value(ruleFlag{&c.Limits.ResendUser}, "rate-resend-user", "LATCH_RATE_RESEND_USER", "verification mails per user, N/duration")
	// API keys, token exchange and operator lookups.
	c.APIKeys.flags(dur, value)
	// Mail quotas, delegated sessions, invitations and per-owner quotas.
	quotaFlags(&c, integer, value)

	for _, d := range defs {
		if v := getenv(d.env); v != "" {
			if err := fs.Set(d.flag, v); err != nil {
				return c, fmt.Errorf("%s: %v", d.env, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c.MaxBodyBytes = int64(maxBody)
	c.Argon2.MemoryKiB, c.Argon2.Time = uint32(memKiB), uint32(timeCost)
	if threads > 255 {
		return c, errors.New("LATCH_ARGON2_THREADS: at most 255")
	}
	c.Argon2.Threads = uint8(threads)
	if trustProxy {
		return c, errors.New("LATCH_TRUST_PROXY is no longer supported: it believed the last X-Forwarded-For hop from any client; " +
			"list your proxies' addresses or CIDR prefixes in LATCH_TRUSTED_PROXIES and unset LATCH_TRUST_PROXY")
	}
	c.derivePublicURL()
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	bad := func(env, format string, args ...any) { errs = append(errs, fmt.Errorf(env+": "+format, args...)) }
	if !token.ValidAlg(c.SigningAlg) {
		bad("LATCH_SIGNING_ALG", "must be ES256, EdDSA or RS256, not %q", c.SigningAlg)
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite://") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("LATCH_DATABASE_URL", "must start with sqlite:// or postgres://")
	}
	if c.Issuer == "" {
		bad("LATCH_ISSUER", "must not be empty")
	}
	if c.Audience == "" {
		bad("LATCH_AUDIENCE", "must not be empty")
	}
	if c.ClientID == "" {
		bad("LATCH_CLIENT_ID", "must not be empty")
	}
	if c.AccessTTL < 10*time.Second || c.AccessTTL > 24*time.Hour {
		bad("LATCH_ACCESS_TTL", "must be between 10s and 24h")
	}
	if c.RefreshIdle < time.Minute {
		bad("LATCH_REFRESH_IDLE_TTL", "must be at least 1m")
	}
	if c.SessionMax < c.RefreshIdle {
		bad("LATCH_SESSION_MAX_TTL", "must be at least LATCH_REFRESH_IDLE_TTL")
	}
	if c.ReuseGrace < 0 || c.ReuseGrace > 5*time.Minute {
		bad("LATCH_REFRESH_REUSE_GRACE", "must be between 0 and 5m")
	}
	if c.SessionCache < 0 || c.SessionCache > time.Minute {
		bad("LATCH_SESSION_CACHE_TTL", "must be between 0 and 1m")
	}
	if c.Argon2.MemoryKiB < 8*uint32(max(c.Argon2.Threads, 1)) || c.Argon2.Time < 1 || c.Argon2.Threads < 1 {
		bad("LATCH_ARGON2_*", "memory must be at least 8 KiB per thread, time and threads at least 1")
	} else if !c.AllowWeakHashing && !c.Argon2.MeetsOWASPMinimum() {
		bad("LATCH_ARGON2_*", "m=%d KiB, t=%d is below OWASP's minimum for argon2id (m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4 or m=7168 t=5); "+
			"set LATCH_ALLOW_WEAK_HASHING=true to accept it (tests, development)", c.Argon2.MemoryKiB, c.Argon2.Time)
	}
	if c.HashConc < 1 {
		bad("LATCH_HASH_CONCURRENCY", "must be at least 1")
	}
	if c.MaxBodyBytes < 1024 {
		bad("LATCH_MAX_BODY_BYTES", "must be at least 1024")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LATCH_LOG_FORMAT", "must be text or json")
	}
	if _, err := token.NewSealer(c.MasterKey); err != nil {
		bad("LATCH_MASTER_KEY", "%v", err)
	}
	c.Recovery.validate(bad)
	c.APIKeys.validate(bad)
	c.validateQuotas(bad)
	c.validateLimits(bad)
	if c.KeyPublishDelay < 0 || c.KeyPublishDelay > 24*time.Hour {
		bad("LATCH_KEY_PUBLISH_DELAY", "must be between 0 and 24h")
	}
	return errors.Join(errs...)
}

// warnWeakSettings logs at WARN each setting that lets latchd start but
// weakens it: no master key while the API listens on a non-loopback
// address (addr is the listener's), and argon2id parameters below OWASP's
// minimum accepted by LATCH_ALLOW_WEAK_HASHING.
func warnWeakSettings(log *slog.Logger, c Config, addr net.Addr) {
	if tcp, ok := addr.(*net.TCPAddr); ok && c.MasterKey == "" && !tcp.IP.IsLoopback() {
		log.Warn("LATCH_MASTER_KEY is not set: signing keys and server secrets are stored unencrypted in the database",
			"setting", "LATCH_MASTER_KEY", "addr", addr.String())
	}
	if c.AutoconfirmEmail {
		log.Warn("LATCH_AUTOCONFIRM_EMAIL is on: new accounts count as verified without proving their address (development only)",
			"setting", "LATCH_AUTOCONFIRM_EMAIL")
	}
	if c.AllowWeakHashing && !c.Argon2.MeetsOWASPMinimum() {
		log.Warn("argon2id parameters below OWASP's minimum, accepted because of LATCH_ALLOW_WEAK_HASHING",
			"setting", "LATCH_ALLOW_WEAK_HASHING", "memory_kib", c.Argon2.MemoryKiB, "time", c.Argon2.Time, "threads", c.Argon2.Threads)
	}
}
