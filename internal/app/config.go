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
	"strconv"
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
	Addr string
	// Webhooks tunes webhook delivery (LATCH_WEBHOOK_*).
	Webhooks    service.WebhookConfig
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
	APIKeys          service.APIKeyConfig
	Quotas           service.Quotas
	// WebAuthnRPID and WebAuthnOrigins are the WebAuthn relying party id
	// and origins (default: from the public URL, see webauthnConfig).
	WebAuthnRPID    string
	WebAuthnOrigins []string
	// MFAMaxAge is how recent a session's second factor must be for an
	// aal2 operation; MFAEnrollmentTTL how long a TOTP enrolment may be
	// confirmed.
	MFAMaxAge        time.Duration
	MFAEnrollmentTTL time.Duration
	// OTP configures email sign-in links and codes.
	OTP OTPConfig
	// ProvidersJSON (LATCH_PROVIDERS) or ProvidersFile
	// (LATCH_PROVIDERS_FILE) is the JSON array of identity providers;
	// Providers is what validate parsed from it.
	ProvidersJSON string
	ProvidersFile string
	Providers     []service.ProviderConfig
	// RedirectURLs is the allow-list of provider sign-ins' redirect_to.
	RedirectURLs []string
	// DNSResolver (LATCH_DNS_RESOLVER), host:port, is the DNS server that
	// answers the TXT lookups of organizations' domain verification; empty
	// is the system's resolver.
	DNSResolver string
	// SSOAllowPrivate (LATCH_SSO_ALLOW_PRIVATE) lets organizations' SSO
	// connections use http and private, loopback or link-local addresses.
	SSOAllowPrivate bool
}

type ruleFlag struct{ r *ratelimit.Rule }

func (f ruleFlag) String() string {
	if f.r == nil {
		return ""
	}
	return strconv.Itoa(f.r.Burst) + "/" + shortDuration(f.r.Per)
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
	return strings.ToLower(f.l.String())
}
func (f levelFlag) Set(s string) error { return f.l.UnmarshalText([]byte(s)) }

// removedFlag is a setting that is no longer supported: true is refused
// with msg, false is accepted and ignored.
type removedFlag struct{ msg string }

func (removedFlag) String() string   { return "false" }
func (removedFlag) IsBoolFlag() bool { return true }
func (f removedFlag) Set(s string) error {
	if b, err := strconv.ParseBool(s); err != nil || b {
		return errors.New(f.msg)
	}
	return nil
}

// DefaultConfig returns latchd's defaults. It is the one place they are
// set; each feature's defaults come from its own package's function.
func DefaultConfig() Config {
	return Config{
		Addr:                 "127.0.0.1:8080",
		DatabaseURL:          "sqlite://latch.db",
		DBPreparedStatements: true,
		RedisPrefix:          "latch:",
		KeyPublishDelay:      10 * time.Minute,
		MFAMaxAge:            service.DefaultMFAMaxAge,
		MFAEnrollmentTTL:     service.DefaultEnrollmentTTL,
		Audience:             "latch",
		ClientID:             service.DefaultClientID,
		SigningAlg:           token.ES256,
		AccessTTL:            15 * time.Minute,
		RefreshIdle:          7 * 24 * time.Hour,
		SessionMax:           30 * 24 * time.Hour,
		ReuseGrace:           10 * time.Second,
		SessionCache:         service.DefaultSessionCacheTTL,
		Argon2:               password.DefaultParams(),
		HashConc:             runtime.NumCPU(),
		HashWait:             5 * time.Second,
		RateLimits:           true,
		Limits:               service.DefaultLimits(),
		MaxBodyBytes:         64 << 10,
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
		ShutdownTimeout:      15 * time.Second,
		Recovery:             defaultRecovery(),
		APIKeys:              service.DefaultAPIKeyConfig(),
		Quotas:               service.DefaultQuotas(),
		Webhooks:             service.WebhookConfig{Timeout: 10 * time.Second},
		OTP:                  defaultOTP(),
	}
}

// ParseConfig reads the configuration: defaults, then LATCH_* variables from
// getenv, then flags from args (flags win). A bad value is an error that
// names the setting, shows the value (never a secret) and says what a good
// one looks like: LATCH_ACCESS_TTL="banana": want a duration such as 15m.
// With -h in args, it writes the settings' help to usage and returns
// flag.ErrHelp.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := DefaultConfig()
	s := c.settings()
	if err := s.apply(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeSettings(usage, s.list)
		}
		return c, err
	}
	c.derivePublicURL()
	return c, c.validate(s)
}

// settings registers every setting of c: its flag, its LATCH_* variable
// and the field it writes.
func (c *Config) settings() *settings {
	s := newSettings()
	example := func(def, fallback string) string {
		if def == "" || def == "0" || def == "0s" {
			return fallback
		}
		return def
	}
	str := func(p *string, name, env, usage string) {
		s.add(stringValue{p}, name, env, usage, "string", "")
	}
	dur := func(p *time.Duration, name, env, usage string) {
		s.add(durationValue{p, example(shortDuration(*p), "30s")}, name, env, usage, "duration", "")
	}
	integer := func(p *int, name, env, usage string) {
		s.add(intValue{p, example(strconv.Itoa(*p), "10")}, name, env, usage, "int", "")
	}
	boolean := func(p *bool, name, env, usage string) {
		s.add(boolValue{p}, name, env, usage, "bool", "")
	}
	value := func(v flag.Value, name, env, usage string) {
		kind, want := "string", ""
		switch v.(type) {
		case ruleFlag:
			kind, want = "N/duration", "N/duration, N at least 1, such as "+example(v.String(), "5/1m")
		case proxiesFlag:
			kind, want = "list", "comma-separated addresses or CIDR prefixes such as 10.0.0.0/8,192.0.2.1"
		case listFlag:
			kind = "list"
		case levelFlag:
			kind, want = "level", "debug, info, warn or error"
		}
		s.add(v, name, env, usage, kind, want)
	}
	u32 := func(p *uint32, name, env, usage string) {
		s.add(uintValue{set: func(n uint64) { *p = uint32(n) }, get: func() uint64 { return uint64(*p) }, bits: 32,
			example: strconv.FormatUint(uint64(*p), 10)}, name, env, usage, "uint", "")
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
	u32(&c.Argon2.MemoryKiB, "argon2-memory-kib", "LATCH_ARGON2_MEMORY_KIB", "argon2id memory in KiB")
	u32(&c.Argon2.Time, "argon2-time", "LATCH_ARGON2_TIME", "argon2id iterations")
	s.add(uintValue{set: func(n uint64) { c.Argon2.Threads = uint8(n) }, get: func() uint64 { return uint64(c.Argon2.Threads) }, bits: 8,
		example: "1"}, "argon2-threads", "LATCH_ARGON2_THREADS", "argon2id parallelism", "uint", "")
	integer(&c.HashConc, "hash-concurrency", "LATCH_HASH_CONCURRENCY", "password hashes computed at once (default: the number of CPUs)")
	dur(&c.HashWait, "hash-max-wait", "LATCH_HASH_MAX_WAIT", "how long a request waits for hashing capacity before 503")
	boolean(&c.RateLimits, "rate-limits", "LATCH_RATE_LIMITS", "enforce rate limits")
	value(ruleFlag{&c.Limits.LoginAccount}, "rate-login-account", "LATCH_RATE_LOGIN_ACCOUNT", "failed logins per account, N/duration")
	value(ruleFlag{&c.Limits.LoginIP}, "rate-login-ip", "LATCH_RATE_LOGIN_IP", "login attempts per client IP, N/duration")
	value(ruleFlag{&c.Limits.SignupIP}, "rate-signup-ip", "LATCH_RATE_SIGNUP_IP", "signups per client IP, N/duration")
	value(ruleFlag{&c.Limits.RefreshIP}, "rate-refresh-ip", "LATCH_RATE_REFRESH_IP", "refreshes per client IP, N/duration")
	value(ruleFlag{&c.Limits.MFAAccount}, "rate-mfa-account", "LATCH_RATE_MFA_ACCOUNT", "failed second-factor attempts per account, N/duration")
	value(ruleFlag{&c.Limits.MFAIP}, "rate-mfa-ip", "LATCH_RATE_MFA_IP", "second-factor and passkey attempts per client IP, N/duration")
	str(&c.WebAuthnRPID, "webauthn-rp-id", "LATCH_WEBAUTHN_RP_ID", "WebAuthn relying party id, a domain (default: the public URL's host; localhost for a loopback address)")
	dur(&c.MFAMaxAge, "mfa-max-age", "LATCH_MFA_MAX_AGE", "how recent a session's second factor must be for an aal2 operation (NIST: at most 24h)")
	dur(&c.MFAEnrollmentTTL, "mfa-enrollment-ttl", "LATCH_MFA_ENROLLMENT_TTL", "how long a started TOTP enrolment may be confirmed")
	value(listFlag{&c.WebAuthnOrigins}, "webauthn-origins", "LATCH_WEBAUTHN_ORIGINS", "comma-separated origins of WebAuthn ceremonies (default: the public URL's origin)")
	str(&c.ProvidersJSON, "providers", "LATCH_PROVIDERS", "identity providers users may sign in with: a JSON array (see docs/configuration.md); holds client secrets")
	str(&c.ProvidersFile, "providers-file", "LATCH_PROVIDERS_FILE", "a file holding the JSON array of LATCH_PROVIDERS")
	value(listFlag{&c.RedirectURLs}, "redirect-urls", "LATCH_REDIRECT_URLS", "comma-separated URLs a provider sign-in may return to (an entry ending in /* is a prefix)")
	str(&c.DNSResolver, "dns-resolver", "LATCH_DNS_RESOLVER", "host:port of the DNS server that answers domain verification's TXT lookups (default: the system's resolver)")
	boolean(&c.SSOAllowPrivate, "sso-allow-private", "LATCH_SSO_ALLOW_PRIVATE",
		"let organizations' SSO connections use http and private, loopback or link-local addresses (tests, internal providers)")
	value(listFlag{&c.CORSOrigins}, "cors-origins", "LATCH_CORS_ORIGINS", "comma-separated allowed CORS origins")
	value(proxiesFlag{&c.TrustedProxies}, "trusted-proxies", "LATCH_TRUSTED_PROXIES", "comma-separated addresses or CIDR prefixes of the proxies whose X-Forwarded-For is believed")
	// LATCH_TRUST_PROXY believed the last X-Forwarded-For hop from anyone.
	// It is refused when true rather than given a new meaning.
	s.add(removedFlag{"LATCH_TRUST_PROXY is no longer supported: it believed the last X-Forwarded-For hop from any client; " +
		"list your proxies' addresses or CIDR prefixes in LATCH_TRUSTED_PROXIES and unset LATCH_TRUST_PROXY"},
		"trust-proxy", "LATCH_TRUST_PROXY", "removed: use LATCH_TRUSTED_PROXIES", "bool", "")
	boolean(&c.AllowWeakHashing, "allow-weak-hashing", "LATCH_ALLOW_WEAK_HASHING", "accept argon2id parameters below OWASP's minimum (tests, development)")
	s.add(int64Value{&c.MaxBodyBytes, "65536"}, "max-body-bytes", "LATCH_MAX_BODY_BYTES", "request body size limit", "int", "")
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
	dur(&c.Recovery.EventsRetention, "events-retention", "LATCH_EVENTS_RETENTION", "how long outbound events (the events feed) are kept")
	dur(&c.Recovery.PruneInterval, "prune-interval", "LATCH_PRUNE_INTERVAL", "how often expired rows are pruned")
	integer(&c.Recovery.PruneBatch, "prune-batch", "LATCH_PRUNE_BATCH", "most rows one pruning statement deletes")
	value(ruleFlag{&c.Limits.ForgotEmail}, "rate-forgot-email", "LATCH_RATE_FORGOT_EMAIL", "password-reset mails per email, N/duration")
	value(ruleFlag{&c.Limits.ForgotIP}, "rate-forgot-ip", "LATCH_RATE_FORGOT_IP", "password-reset requests per client IP, N/duration")
	value(ruleFlag{&c.Limits.ResetIP}, "rate-reset-ip", "LATCH_RATE_RESET_IP", "password resets per client IP, N/duration")
	value(ruleFlag{&c.Limits.VerifyIP}, "rate-verify-ip", "LATCH_RATE_VERIFY_IP", "email verifications per client IP, N/duration")
	value(ruleFlag{&c.Limits.ResendUser}, "rate-resend-user", "LATCH_RATE_RESEND_USER", "verification mails per user, N/duration")
	// API keys, token exchange and operator lookups.
	apiKeyFlags(&c.APIKeys, dur, value)
	// Email sign-in links and codes.
	otpFlags(c, str, dur, value)
	// Mail quotas, delegated sessions, invitations and per-owner quotas.
	quotaFlags(c, integer, value)
	// Webhooks.
	dur(&c.Webhooks.Timeout, "webhook-timeout", "LATCH_WEBHOOK_TIMEOUT", "how long one webhook delivery may take")
	boolean(&c.Webhooks.AllowPrivate, "webhook-allow-private", "LATCH_WEBHOOK_ALLOW_PRIVATE",
		"let webhook endpoints use http and private, loopback or link-local addresses (tests, internal receivers)")
	return s
}

// validate checks the settings that parsed, alone and together; s shows
// their values in the errors.
func (c *Config) validate(s *settings) error {
	var errs []error
	bad := func(env, format string, args ...any) { errs = append(errs, s.badValue(env, format, args...)) }
	if w := wantAddress(c.Addr, "127.0.0.1:8080"); w != "" {
		bad("LATCH_ADDR", "want %s", w)
	}
	if c.PprofAddr != "" {
		if w := wantAddress(c.PprofAddr, "127.0.0.1:9090"); w != "" {
			bad("LATCH_ADMIN_ADDR", "want %s (or empty: off)", w)
		}
	}
	if !token.ValidAlg(c.SigningAlg) {
		bad("LATCH_SIGNING_ALG", "want ES256, EdDSA or RS256")
	}
	if w := wantURL(c.DatabaseURL, "sqlite://latch.db or postgres://latch@db.example.com/latch?sslmode=verify-full", "sqlite", "postgres", "postgresql"); w != "" {
		bad("LATCH_DATABASE_URL", "want %s", w)
	}
	if c.DatabaseDirectURL != "" {
		if w := wantURL(c.DatabaseDirectURL, "postgres://latch@db.example.com:5432/latch?sslmode=verify-full", "postgres", "postgresql"); w != "" {
			bad("LATCH_DATABASE_DIRECT_URL", "want %s (or empty: LATCH_DATABASE_URL)", w)
		}
	}
	if c.RedisURL != "" {
		if w := wantURL(c.RedisURL, "redis://127.0.0.1:6379/0", "redis", "rediss"); w != "" {
			bad("LATCH_REDIS_URL", "want %s", w)
		}
	}
	if c.Issuer == "" {
		bad("LATCH_ISSUER", "want a non-empty issuer such as https://auth.example.com")
	}
	if c.Audience == "" {
		bad("LATCH_AUDIENCE", "want a non-empty audience such as latch")
	}
	if c.ClientID == "" {
		bad("LATCH_CLIENT_ID", "want a non-empty client id such as latch")
	}
	if c.AccessTTL < 10*time.Second || c.AccessTTL > 24*time.Hour {
		bad("LATCH_ACCESS_TTL", "want a duration between 10s and 24h such as 15m")
	}
	if c.RefreshIdle < time.Minute {
		bad("LATCH_REFRESH_IDLE_TTL", "want a duration of at least 1m such as 168h")
	}
	if c.SessionMax < c.RefreshIdle {
		bad("LATCH_SESSION_MAX_TTL", "want a duration of at least LATCH_REFRESH_IDLE_TTL (%s) such as 720h", shortDuration(c.RefreshIdle))
	}
	if c.ReuseGrace < 0 || c.ReuseGrace > 5*time.Minute {
		bad("LATCH_REFRESH_REUSE_GRACE", "want a duration between 0 and 5m such as 10s")
	}
	if c.SessionCache < 0 || c.SessionCache > time.Minute {
		bad("LATCH_SESSION_CACHE_TTL", "want a duration between 0 and 1m such as 2s")
	}
	if c.KeyPublishDelay < 0 || c.KeyPublishDelay > 24*time.Hour {
		bad("LATCH_KEY_PUBLISH_DELAY", "want a duration between 0 and 24h such as 10m")
	}
	argon := fmt.Sprintf("LATCH_ARGON2_MEMORY_KIB=%d, LATCH_ARGON2_TIME=%d, LATCH_ARGON2_THREADS=%d", c.Argon2.MemoryKiB, c.Argon2.Time, c.Argon2.Threads)
	if c.Argon2.MemoryKiB < 8*uint32(max(c.Argon2.Threads, 1)) || c.Argon2.Time < 1 || c.Argon2.Threads < 1 {
		errs = append(errs, errors.New(argon+": want at least 8 KiB of memory per thread and a time and threads of at least 1, such as 19456, 2 and 1"))
	} else if !c.AllowWeakHashing && !c.Argon2.MeetsOWASPMinimum() {
		errs = append(errs, errors.New(argon+": below OWASP's minimum for argon2id; want m=47104 t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4 or m=7168 t=5, "+
			"or set LATCH_ALLOW_WEAK_HASHING=true to accept it (tests, development)"))
	}
	if c.HashConc < 1 {
		bad("LATCH_HASH_CONCURRENCY", "want a whole number of at least 1 such as %d", runtime.NumCPU())
	}
	if c.MaxBodyBytes < 1024 {
		bad("LATCH_MAX_BODY_BYTES", "want a whole number of at least 1024 such as 65536")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LATCH_LOG_FORMAT", "want text or json")
	}
	if _, err := token.NewSealer(c.MasterKey); err != nil {
		bad("LATCH_MASTER_KEY", "want the base64 of 32 random bytes, such as the output of: openssl rand -base64 32")
	}
	c.Recovery.validate(bad)
	if c.DNSResolver != "" {
		if _, _, err := net.SplitHostPort(c.DNSResolver); err != nil {
			return fmt.Errorf("LATCH_DNS_RESOLVER: want host:port, such as 10.0.0.2:53: %v", err)
		}
	}
	if err := c.loadProviders(); err != nil {
		errs = append(errs, err)
	}
	validateAPIKeys(&c.APIKeys, bad)
	c.validateQuotas(bad)
	c.validateLimits(bad)
	c.validateOTP(bad)
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
