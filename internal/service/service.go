// Package service is Latch's application logic: it turns requests into store
// calls, hashes, tokens and events. It knows nothing of HTTP.
package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/latchauth/latch/internal/clockcache"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/ratelimit"
	"github.com/latchauth/latch/internal/token"
)

// Hasher hashes and verifies passwords and applies the password policy;
// *password.Hasher implements it.
type Hasher interface {
	// Check applies the password policy.
	Check(pw string) error
	// Hash returns the PHC string of pw.
	Hash(ctx context.Context, pw string) (string, error)
	// Verify reports whether pw matches phc (an empty phc costs the same and
	// never matches) and whether phc should be rehashed.
	Verify(ctx context.Context, pw, phc string) (ok, rehash bool, err error)
}

var _ Hasher = (*password.Hasher)(nil)

// Limits are the rate-limit rules. A zero Rule disables that limit.
type Limits struct {
	LoginAccount ratelimit.Rule // failed logins per account
	LoginIP      ratelimit.Rule // login attempts per client IP
	SignupIP     ratelimit.Rule // signups per client IP
	RefreshIP    ratelimit.Rule // refreshes per client IP
	ForgotEmail  ratelimit.Rule // password-reset mails per email
	ForgotIP     ratelimit.Rule // password-reset requests per client IP
	ResetIP      ratelimit.Rule // password resets per client IP
	VerifyIP     ratelimit.Rule // email verifications per client IP
	ResendUser   ratelimit.Rule // verification mails per user
	// MailRecipient is the quota of mails to one address, whatever account
	// or organization causes them. It is counted in the outbox, so it holds
	// across instances; over it, the mail is not queued.
	MailRecipient ratelimit.Rule
	// MailOrg is the quota of notification mails (invitations) an
	// organization causes, counted in the outbox likewise.
	MailOrg ratelimit.Rule
	// DelegatedKey is the delegated sessions one organization key opens.
	DelegatedKey ratelimit.Rule
	// InviteOrg and InviteUser are the invitations per organization and per
	// inviting user.
	InviteOrg  ratelimit.Rule
	InviteUser ratelimit.Rule
	// MFAAccount is the failed second-factor attempts per account (a
	// 6-digit code must not be guessable); MFAIP the attempts per client IP
	// (second factors, passkey sign-ins).
	MFAAccount ratelimit.Rule
	MFAIP      ratelimit.Rule
	// OTPEmail is the sign-in mails asked for one address, OTPIP per
	// client IP; OTPVerifyIP the codes and links presented per client IP
	// (each challenge also ends after domain.OTPMaxAttempts wrong codes).
	OTPEmail    ratelimit.Rule
	OTPIP       ratelimit.Rule
	OTPVerifyIP ratelimit.Rule
}

// Quotas bound what one owner may hold, so that nothing can be hidden
// behind unbounded decoys. Zero means no quota.
type Quotas struct {
	// APIKeys is the active keys per owner (a user's personal keys, an
	// organization's keys); over it, creating one is CodeQuotaExceeded.
	APIKeys int
	// Sessions is the active sessions per user (and per delegated
	// identity); a new login over it ends the oldest session.
	Sessions int
	// Organizations is the organizations one user may own; over it,
	// creating one is CodeQuotaExceeded.
	Organizations int
	// Members is the members plus pending invitations per organization.
	Members int
	// DelegatedIdentities is the delegated identities per organization.
	DelegatedIdentities int
	// WebhookEndpoints is the webhook endpoints per owner (an
	// organization, or the operators together); every event is sent to
	// each, so the quota bounds the fan-out.
	WebhookEndpoints int
}

// DefaultQuotas returns the default quotas: generous for real use and
// small enough to keep every list short.
func DefaultQuotas() Quotas {
	return Quotas{APIKeys: 100, Sessions: 100, Organizations: 50, Members: 1000, DelegatedIdentities: 1_000_000, WebhookEndpoints: 20}
}

// DefaultLimits returns the default rate limits: they stop a guesser after
// a handful of failures a minute while a real user waits at most a few
// seconds once the guessing stops.
func DefaultLimits() Limits {
	return Limits{
		LoginAccount:  ratelimit.Rule{Burst: 5, Per: time.Minute},
		LoginIP:       ratelimit.Rule{Burst: 30, Per: time.Minute},
		SignupIP:      ratelimit.Rule{Burst: 20, Per: time.Hour},
		RefreshIP:     ratelimit.Rule{Burst: 300, Per: time.Minute},
		ForgotEmail:   ratelimit.Rule{Burst: 1, Per: time.Minute},
		ForgotIP:      ratelimit.Rule{Burst: 20, Per: 10 * time.Minute},
		ResetIP:       ratelimit.Rule{Burst: 20, Per: 10 * time.Minute},
		VerifyIP:      ratelimit.Rule{Burst: 20, Per: 10 * time.Minute},
		ResendUser:    ratelimit.Rule{Burst: 1, Per: time.Minute},
		MailRecipient: ratelimit.Rule{Burst: 5, Per: time.Hour},
		MailOrg:       ratelimit.Rule{Burst: 100, Per: time.Hour},
		DelegatedKey:  ratelimit.Rule{Burst: 600, Per: time.Minute},
		InviteOrg:     ratelimit.Rule{Burst: 50, Per: time.Hour},
		InviteUser:    ratelimit.Rule{Burst: 20, Per: time.Hour},
		MFAAccount:    ratelimit.Rule{Burst: 5, Per: 15 * time.Minute},
		MFAIP:         ratelimit.Rule{Burst: 30, Per: time.Minute},
		OTPEmail:      ratelimit.Rule{Burst: 1, Per: time.Minute},
		OTPIP:         ratelimit.Rule{Burst: 20, Per: 10 * time.Minute},
		OTPVerifyIP:   ratelimit.Rule{Burst: 30, Per: time.Minute},
	}
}

// The defaults of Config that New applies to a zero value.
const (
	// DefaultSessionCacheTTL is latchd's default SessionCacheTTL
	// (LATCH_SESSION_CACHE_TTL); New takes zero as it is: no cache.
	DefaultSessionCacheTTL = 2 * time.Second
	// DefaultKeyRefresh is Config.KeyRefresh when none is set.
	DefaultKeyRefresh = time.Minute
	// DefaultVerifyCacheTTL is Config.VerifyCacheTTL when none is set.
	DefaultVerifyCacheTTL = 5 * time.Second
	// DefaultRateBucketTTL is Config.RateBucketTTL when none is set.
	DefaultRateBucketTTL = 2 * time.Hour
	// DefaultRefusalTTL is Config.RefusalTTL when none is set.
	DefaultRefusalTTL = 24 * time.Hour
)

// Config is the service's configuration.
type Config struct {
	AccessTTL      time.Duration
	RefreshIdleTTL time.Duration
	SessionMaxTTL  time.Duration
	ReuseGrace     time.Duration
	// SessionCacheTTL is how long the sessions and users that requests read
	// are cached: it bounds how long another instance may accept an access
	// token of a session revoked elsewhere, or show a user changed elsewhere,
	// when the change notifications do not arrive. Changes on this instance
	// take effect at once. Zero caches nothing.
	SessionCacheTTL time.Duration
	// VerifyCacheTTL is how long the claims of an access token whose
	// signature was checked are reused (never past the token's exp, never
	// across a change of the signing keys): zero is DefaultVerifyCacheTTL, a
	// negative value checks every signature. Claims never change, so this
	// bounds no staleness, only the memory an idle entry holds.
	VerifyCacheTTL time.Duration
	RateLimits     bool
	// RateBucketTTL is how long the in-process limiter keeps a bucket after
	// it was created, or the rule's Per if that is longer (a forgotten
	// bucket would have been full again); zero is DefaultRateBucketTTL.
	RateBucketTTL time.Duration
	// RefusalTTL is how long the record of a rule and key's refusals is
	// kept, which bounds the rate_limited events to one per rule, key and
	// period while it is kept (see recordRefusal); zero is
	// DefaultRefusalTTL.
	RefusalTTL time.Duration
	// RequireVerifiedEmail refuses login to accounts whose email is not
	// verified.
	RequireVerifiedEmail bool
	// AutoconfirmEmail marks a new account's email verified at signup and
	// mails nothing (GoTrue's autoconfirm): for development and automated
	// API tests only. Such an account never gains operator power, which
	// needs a recorded verification time.
	AutoconfirmEmail bool
	Limits           Limits
	// KeyRefresh is how often the signing keys are reloaded from the store.
	KeyRefresh time.Duration
	// KeyPublishDelay is how long a rotated-in key is only published before
	// it signs (0: at once).
	KeyPublishDelay time.Duration
	// Recovery configures password reset, email verification, mail and
	// pruning.
	Recovery RecoveryConfig
	// APIKeys configures API keys, token exchange and operator lookups.
	APIKeys APIKeyConfig
	// Quotas bound what one owner may hold.
	Quotas Quotas
	// ClientID is the client_id claim (RFC 9068) of user sessions' access
	// tokens; "latch" when empty.
	ClientID string
}

// Service is the core of the application: signup, login, refresh, logout,
// sessions and the authentication of bearer tokens, signing keys, health
// and readiness, and the change notifications that keep every instance's
// caches fresh. What the feature services (APIKeys, OAuth, Orgs, Recovery,
// MFA) share with it are the pieces in Shared, made here and passed to
// them by the wiring. It is safe for concurrent use.
type Service struct {
	cfg    Config
	store  Store
	hasher Hasher
	issuer *token.Issuer
	sealer *token.Sealer
	clock  domain.Clock
	log    *slog.Logger

	refreshSecret []byte

	keysMu     sync.Mutex
	keysLoaded time.Time
	keyReload  singleflight.Group
	// unknownKidReload is when a token with an unknown kid last caused a
	// reload, on the service's clock.
	unknownKidReload time.Time

	// The shared pieces (see Shared).
	tokens   *Tokens
	events   *EventLog
	limits   *RateLimits
	sessions *Sessions
	keys     *KeyAuth
	mail     *Mail
	changes  *changes
	metrics  Metrics
	pruner   *Pruner
	shared   Shared
}

// Deps are the service's collaborators.
type Deps struct {
	Store  Store
	Hasher Hasher
	Issuer *token.Issuer
	Sealer *token.Sealer
	// Notifier publishes changes to the other instances; nil for one
	// instance.
	Notifier Notifier
	// Metrics records for operators; nil records nothing.
	Metrics Metrics
	// Limiter holds the rate limits; nil is a MemoryLimiter (one process).
	Limiter Limiter
	Clock   domain.Clock
	Log     *slog.Logger
	// MailQueued, when set, is called after a mail is queued (to wake the
	// outbox worker at once).
	MailQueued func()
}

// New returns a service and makes the pieces it shares with the feature
// services (see Shared); call Init before serving.
func New(cfg Config, d Deps) *Service {
	if d.Clock == nil {
		d.Clock = domain.SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if cfg.SessionCacheTTL < 0 {
		cfg.SessionCacheTTL = 0
	}
	if cfg.KeyRefresh <= 0 {
		cfg.KeyRefresh = DefaultKeyRefresh
	}
	if cfg.VerifyCacheTTL == 0 {
		cfg.VerifyCacheTTL = DefaultVerifyCacheTTL
	}
	if cfg.RateBucketTTL <= 0 {
		cfg.RateBucketTTL = DefaultRateBucketTTL
	}
	if cfg.RefusalTTL <= 0 {
		cfg.RefusalTTL = DefaultRefusalTTL
	}
	// Each rule has its own table of at most 20,000 keys (about 250 bytes
	// each), so a flood of keys costs at most 5 MB per rule. An evicted
	// bucket was its key's least recently used.
	local := MemoryLimiter{L: ratelimit.New(20_000, cfg.RateBucketTTL, d.Clock.Now)}
	if d.Limiter == nil {
		d.Limiter = local
	}
	cfg.Recovery = cfg.Recovery.withDefaults()
	cfg.APIKeys = cfg.APIKeys.withDefaults()
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	now := d.Clock.Now
	ch := &changes{notifier: d.Notifier, clock: d.Clock, log: d.Log}
	tokens := &Tokens{issuer: d.Issuer, verified: newVerifyCache(cfg.VerifyCacheTTL), clock: d.Clock}
	events := &EventLog{store: d.Store, clock: d.Clock, log: d.Log}
	limits := &RateLimits{enabled: cfg.RateLimits, rules: cfg.Limits, limiter: d.Limiter, local: local, store: d.Store,
		events: events, metrics: d.Metrics, clock: d.Clock, log: d.Log,
		refusals: clockcache.New[string, *refusalWindow](10_000, cfg.RefusalTTL, now)}
	sessions := &Sessions{cfg: cfg, store: d.Store, tokens: tokens, events: events, changes: ch, metrics: d.Metrics, clock: d.Clock,
		cache: newGuardedCache(clockcache.New[uuid.UUID, *domain.Session](100_000, cfg.SessionCacheTTL, now), ch.degraded.Load),
		users: newGuardedCache(clockcache.New[uuid.UUID, domain.User](100_000, cfg.SessionCacheTTL, now), ch.degraded.Load)}
	keys := &KeyAuth{cfg: cfg.APIKeys, store: d.Store, state: newAPIKeyState(cfg.APIKeys.CacheTTL, ch.degraded.Load, now),
		changes: ch, events: events, metrics: d.Metrics, clock: d.Clock, log: d.Log}
	mail := newMail(cfg.Recovery, d.Clock, d.MailQueued)
	s := &Service{
		cfg: cfg, store: d.Store, hasher: d.Hasher, issuer: d.Issuer, sealer: d.Sealer, clock: d.Clock, log: d.Log,
		tokens: tokens, events: events, limits: limits, sessions: sessions, keys: keys, mail: mail, changes: ch, metrics: d.Metrics,
		pruner: &Pruner{store: d.Store, cfg: cfg.Recovery, clock: d.Clock, log: d.Log},
	}
	s.shared = Shared{Config: cfg, Clock: d.Clock, Log: d.Log, Hasher: d.Hasher, Sealer: d.Sealer,
		Tokens: tokens, Events: events, Limits: limits, Sessions: sessions, Keys: keys, Mail: mail, SSO: &SSORequirement{store: d.Store}}
	return s
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Issuer returns the token issuer.
func (s *Service) Issuer() *token.Issuer { return s.issuer }

// Init makes sure a signing key and the refresh-successor secret exist in
// the store (creating them on first start) and loads them.
func (s *Service) Init(ctx context.Context) error {
	alg := s.issuer.Config().Alg
	k, err := token.GenerateKey(alg, s.clock.Now())
	if err != nil {
		return err
	}
	sealed, err := s.sealer.Seal(k.PrivatePEM, token.SigningKeyLabel(k.KID))
	if err != nil {
		return err
	}
	k.PrivatePEM = sealed
	if added, err := s.store.EnsureSigningKey(ctx, k); err != nil {
		return fmt.Errorf("signing key: %w", err)
	} else if added {
		s.log.Info("generated a signing key", "kid", k.KID, "alg", alg)
	} else if err := s.checkActiveAlg(ctx, alg); err != nil {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	sealedSecret, err := s.sealer.Seal(raw, token.SecretLabel("refresh-successor"))
	if err != nil {
		return err
	}
	stored, err := s.store.Secret(ctx, "refresh-successor", sealedSecret, s.clock.Now())
	if err != nil {
		return fmt.Errorf("refresh secret: %w", err)
	}
	if s.refreshSecret, err = s.sealer.Open(stored, token.SecretLabel("refresh-successor")); err != nil {
		return err
	}
	if err := s.initRecovery(ctx); err != nil {
		return err
	}
	return s.ReloadKeys(ctx)
}

// checkActiveAlg refuses to start an instance whose signing algorithm is
// not the active key's: it would otherwise sign with nothing, or replace the
// deployment's keys.
func (s *Service) checkActiveAlg(ctx context.Context, alg string) error {
	keys, err := s.store.SigningKeys(ctx, s.clock.Now())
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	now := s.clock.Now()
	for _, k := range keys {
		if (k.ActivatesAt == nil || !k.ActivatesAt.After(now)) && (k.RetiredAt == nil || k.RetiredAt.After(now)) {
			if k.Alg != alg {
				pending := ""
				for _, p := range keys {
					if p.Alg == alg && p.ActivatesAt != nil && p.ActivatesAt.After(now) {
						pending = fmt.Sprintf(" (a %s key is published and signs from %s: start instances with it then)", alg, p.ActivatesAt.UTC().Format(time.RFC3339))
					}
				}
				return fmt.Errorf("the active signing key %s is %s but LATCH_SIGNING_ALG is %s%s: set LATCH_SIGNING_ALG=%s, "+
					"or migrate the deployment with `latchd keys rotate --alg %s` and then restart every instance with LATCH_SIGNING_ALG=%s",
					k.KID, k.Alg, alg, pending, k.Alg, alg, alg)
			}
			return nil
		}
	}
	return nil
}

// ReloadKeys loads the signing keys from the store: every unretired key, and
// every key retired less than two access-token lifetimes ago, verifies.
func (s *Service) ReloadKeys(ctx context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	now := s.clock.Now()
	keys, err := s.store.SigningKeys(ctx, now.Add(-2*s.cfg.AccessTTL))
	if err != nil {
		return err
	}
	for i := range keys {
		if keys[i].PrivatePEM, err = s.sealer.Open(keys[i].PrivatePEM, token.SigningKeyLabel(keys[i].KID)); err != nil {
			return err
		}
	}
	if err := s.issuer.Load(keys); err != nil {
		return err
	}
	s.tokens.keysChanged()
	s.keysLoaded = now
	return nil
}

// unknownKeyReloadEvery bounds the reloads that tokens with an unknown kid
// cause: a flood of forged kids costs one database read every few seconds.
const unknownKeyReloadEvery = 3 * time.Second

// reloadForUnknownKey reloads the signing keys because a token named a kid
// this instance has not loaded (another instance rotated), unless the keys
// were loaded less than unknownKeyReloadEvery ago; concurrent callers share
// one reload. It reports whether a reload happened, so the caller verifies
// once more.
func (s *Service) reloadForUnknownKey(ctx context.Context) bool {
	v, _, _ := s.keyReload.Do("reload", func() (any, error) {
		now := s.clock.Now()
		s.keysMu.Lock()
		recent := !s.unknownKidReload.IsZero() && now.Sub(s.unknownKidReload) < unknownKeyReloadEvery
		if !recent {
			s.unknownKidReload = now
		}
		s.keysMu.Unlock()
		if recent {
			return false, nil
		}
		if err := s.ReloadKeys(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("reload signing keys for an unknown kid", "err", err)
			return false, nil
		}
		return true, nil
	})
	ok, _ := v.(bool)
	return ok
}

// RotateSigningKey adds a new signing key: published at once, signing
// after Config.KeyPublishDelay (so that resource servers that cache the JWKS
// know it before they meet a token signed with it); older keys sign until
// then and keep verifying (and stay in the JWKS) for two access-token
// lifetimes after.
func (s *Service) RotateSigningKey(ctx context.Context) (string, error) {
	now := s.clock.Now()
	k, err := token.GenerateKey(s.issuer.Config().Alg, now)
	if err != nil {
		return "", err
	}
	if s.cfg.KeyPublishDelay > 0 {
		at := now.Add(s.cfg.KeyPublishDelay)
		k.ActivatesAt = &at
	}
	kid := k.KID
	if k.PrivatePEM, err = s.sealer.Seal(k.PrivatePEM, token.SigningKeyLabel(kid)); err != nil {
		return "", err
	}
	if err := s.store.AddSigningKey(ctx, k); err != nil {
		return "", err
	}
	s.changes.publish(TopicSigningKeys, "")
	return kid, s.ReloadKeys(ctx)
}

// Run does the periodic work until ctx ends: reloading signing keys.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.KeyRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reload signing keys", "err", err)
			}
		}
	}
}

// Health reports whether the database answers. Returns CodeUnavailable if
// not.
func (s *Service) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.store.Ping(ctx)
}

// JWKS returns the public signing keys.
func (s *Service) JWKS() []token.JWK { return s.issuer.JWKS() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func ptr[T any](v T) *T { return &v }
