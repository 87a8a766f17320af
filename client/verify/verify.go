// Package verify checks Latch access tokens for resource servers: services
// that accept the tokens Latch issues, whether a user's session tokens or
// tokens exchanged from an API key.
//
// A [Verifier] fetches Latch's JWKS, caches it, refreshes it periodically and
// when a token names an unknown key (at most once per UnknownKIDInterval),
// and checks a token's signature, alg (against an allowlist), typ (at+jwt,
// RFC 9068), kid, iss, aud, exp (required) and nbf/iat with a small leeway.
// [Verifier.Verify] does that for one token; [Verifier.Middleware] and
// [Verifier.RequireScopes] do it for net/http handlers, which find the
// claims with [ClaimsFrom].
//
// # Scopes and session tokens
//
// A token exchanged from an API key carries its scopes in the space-separated
// scope claim. A user's session token has no scope claim (inside Latch it
// holds every built-in scope, but those mean nothing to a resource server).
// RequireScopes therefore treats a session token as holding no scope, so a
// scope-protected route needs an exchanged token, unless Config.SessionScopes
// grants session tokens some scopes ("*" for all). Scopes compare exactly.
//
// Failures are answered with Latch's Error body, {"error", "message",
// "request_id"}: 401 unauthorized (no token), invalid_token or token_expired
// with WWW-Authenticate, and 403 insufficient_permissions for a missing scope.
//
// # Clients on the Latch Go SDK
//
// A client that gets its tokens from the SDK (Client.Token or
// Client.TokenSource) renews them before they expire, in the background
// while they are valid, so a resource server rarely sees token_expired.
// Once the client's session has ended, or while a renewal backs off after
// a failure with the token expired, the SDK returns ErrSessionEnded or
// ErrRefreshBackoff instead of a token, and the resource server gets no
// request at all rather than a stream of 401s.
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/latchauth/latch/claims"
)

// Config configures a Verifier. Only JWKSURL is required.
type Config struct {
	// JWKSURL is Latch's key set, such as
	// "https://auth.example.com/.well-known/jwks.json".
	JWKSURL string
	// Issuer is the iss that tokens must carry: Latch's LATCH_ISSUER, which
	// is its LATCH_PUBLIC_URL unless set (the issuer of
	// /.well-known/openid-configuration). Default "http://127.0.0.1:8080",
	// Latch's default.
	Issuer string
	// Audience is required: it must be among the token's aud. Set it to the
	// audience your service registered for its organization
	// (PUT /organizations/{id}/audiences) and asks for in exchanges; every
	// token is checked against it, so a token minted for another service
	// is refused. Default "latch" (LATCH_AUDIENCE), which every user's
	// session token carries: keep the default only for a service that
	// accepts any Latch user.
	Audience string
	// OrgID, when set, pins the organization: only tokens whose org_id
	// claim equals it pass (an organization key's exchanged tokens and its
	// delegated sessions); every other token is ErrInvalidToken. An
	// application scope proves something only for an organization you
	// trust, so set OrgID whenever scopes are permissions.
	OrgID string
	// Algorithms is the alg allowlist. Default ES256 only, Latch's default;
	// add EdDSA or RS256 when Latch signs with those.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 5s.
	Leeway time.Duration
	// SessionScopes are the scopes a session token (one without a scope
	// claim) is taken to hold in RequireScopes: none by default, "*" for all.
	SessionScopes []string
	// HTTPClient fetches the JWKS. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// RefreshInterval is how often the JWKS is fetched again. Default 15m.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two fetches caused by a
	// token naming an unknown key, so that forged kids cannot make the
	// Verifier hammer Latch. Default 30s.
	UnknownKIDInterval time.Duration
	// Realm is the realm of WWW-Authenticate. Default "api".
	Realm string
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Verifier verifies Latch access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	stop   context.CancelFunc
}

// maxTokenBytes bounds the size of a token that is parsed at all.
const maxTokenBytes = 8 << 10

// maxJWKSBytes bounds the JWKS response that is read.
const maxJWKSBytes = 1 << 20

// New returns a Verifier and starts fetching the JWKS in the background; the
// fetch stops when ctx ends or Close is called. A JWKS that cannot be fetched
// yet is no error: it is fetched again for the first token. Returns an error
// for a bad configuration.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.JWKSURL == "" {
		return nil, errors.New("verify: Config.JWKSURL is required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://127.0.0.1:8080"
	}
	if cfg.Audience == "" {
		cfg.Audience = "latch"
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{"ES256"}
	}
	for _, a := range cfg.Algorithms {
		if a != "ES256" && a != "EdDSA" && a != "RS256" {
			return nil, fmt.Errorf("verify: algorithm %q: Latch signs with ES256, EdDSA or RS256", a)
		}
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 15 * time.Minute
	}
	if cfg.UnknownKIDInterval <= 0 {
		cfg.UnknownKIDInterval = 30 * time.Second
	}
	if cfg.Realm == "" {
		cfg.Realm = "api"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := *cfg.HTTPClient
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = limitBody{next: base}

	ctx, stop := context.WithCancel(ctx)
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:          &hc,
		HTTPTimeout:     10 * time.Second,
		RefreshInterval: cfg.RefreshInterval,
		// One fetch per interval for unknown kids. The wait for the limiter
		// (which also bounds that fetch) is shorter than the interval, so a
		// token with an unknown kid past the limit fails at once instead of
		// holding its request.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.UnknownKIDInterval), 1),
		RateLimitWaitMax:  min(10*time.Second, cfg.UnknownKIDInterval/2),
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(context.Context, error) {}
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("verify: %w", err)
	}
	return &Verifier{
		cfg: cfg,
		kf:  kf,
		parser: jwt.NewParser(
			jwt.WithValidMethods(cfg.Algorithms),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Now),
		),
		stop: stop,
	}, nil
}

// Close stops the background JWKS refresh.
func (v *Verifier) Close() { v.stop() }

// limitBody caps the JWKS response body.
type limitBody struct{ next http.RoundTripper }

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(res.Body, maxJWKSBytes), res.Body}
	return res, nil
}

// Claims are the claims of a Latch access token: claims.AccessTokenClaims,
// the one claims type of Latch (its server signs the same type, and the
// SDK's models name it latchapi.AccessTokenClaims), which the spec's
// AccessTokenClaims schema defines and which carries the methods golang-jwt
// reads them through. Claims adds what a resource server asks of them. aal
// and amr are a session's assurance level and authentication methods (RFC
// 8176); see RequireAAL2.
type Claims struct {
	claims.AccessTokenClaims
}

var _ jwt.Claims = (*Claims)(nil)

// AAL2 reports whether the token is a session token at assurance level
// aal2: its user presented a second factor (or a user-verified passkey).
func (c *Claims) AAL2() bool { return c.AAL == "aal2" }

// Scopes returns the token's scopes; none for a session token.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// IsSession reports whether the token is a user's session token rather
// than one exchanged from an API key.
func (c *Claims) IsSession() bool { return c.KeyID == "" && c.SID != "" }

// Code is an error code of the Latch Error body, usable as a sentinel:
// errors.Is(err, verify.ErrTokenExpired).
type Code string

func (c Code) Error() string { return "verify: " + string(c) }

// The codes a Verifier answers with, each one of the ErrorCode enum of
// Latch's openapi.yaml (spec_test.go, in the module's root, checks them).
const (
	ErrUnauthorized            Code = "unauthorized"
	ErrInvalidToken            Code = "invalid_token"
	ErrTokenExpired            Code = "token_expired"
	ErrInsufficientPermissions Code = "insufficient_permissions"
	// ErrMFARequired is RequireAAL2's refusal of a token below aal2.
	ErrMFARequired Code = "mfa_required"
)

// Error is a refused token: its HTTP status, code and message, and the
// underlying reason (for logs only: the message stays generic).
type Error struct {
	Status  int
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("verify: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("verify: %s: %s", e.Code, e.Message)
}

// Is matches the Code of e.
func (e *Error) Is(target error) bool { c, ok := target.(Code); return ok && c == e.Code }

func (e *Error) Unwrap() error { return e.Err }

func invalid(err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: ErrInvalidToken, Message: "the access token is invalid", Err: err}
}

// Verify checks token and returns its claims. Returns an *Error with
// ErrTokenExpired for an expired token and ErrInvalidToken for any other
// failure.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytes || strings.Count(token, ".") != 2 {
		return nil, invalid(errors.New("malformed"))
	}
	c := &Claims{}
	_, err := v.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
			return nil, fmt.Errorf("typ %q is not at+jwt", typ)
		}
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errors.New("no kid")
		}
		return v.kf.KeyfuncCtx(ctx)(t)
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, &Error{Status: http.StatusUnauthorized, Code: ErrTokenExpired, Message: "the access token has expired", Err: err}
		}
		return nil, invalid(err)
	}
	if c.Subject == "" || c.ID == "" {
		return nil, invalid(errors.New("no sub or jti"))
	}
	if v.cfg.OrgID != "" && c.OrgID != v.cfg.OrgID {
		return nil, invalid(fmt.Errorf("org_id %q is not the pinned organization", c.OrgID))
	}
	return c, nil
}

// Allows reports whether c holds every scope: an exchanged token when its
// scope claim lists them, a session token when Config.SessionScopes does.
func (v *Verifier) Allows(c *Claims, scopes ...string) bool {
	held := c.Scopes()
	if c.Scope == "" && c.KeyID == "" {
		held = v.cfg.SessionScopes
	}
	if slices.Contains(held, "*") {
		return true
	}
	for _, s := range scopes {
		if !slices.Contains(held, s) {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// ClaimsFrom returns the claims that Middleware or RequireScopes verified.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// WithClaims returns a context carrying c, for tests of handlers.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// Middleware verifies the bearer token of every request and puts its claims
// in the context; it answers 401 itself when the token is missing or bad.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return v.RequireScopes()(next)
}

// RequireScopes returns a middleware like Middleware that also answers 403
// insufficient_permissions unless the token holds every scope (see Allows).
func (v *Verifier) RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := ClaimsFrom(r.Context())
			if !ok {
				tok, found := bearer(r)
				if !found {
					v.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: ErrUnauthorized, Message: "authentication required"}, scopes)
					return
				}
				var err error
				if c, err = v.Verify(r.Context(), tok); err != nil {
					v.writeError(w, r, err.(*Error), scopes)
					return
				}
				r = r.WithContext(WithClaims(r.Context(), c))
			}
			if !v.Allows(c, scopes...) {
				v.writeError(w, r, &Error{Status: http.StatusForbidden, Code: ErrInsufficientPermissions,
					Message: "the access token lacks a scope: needs " + strings.Join(scopes, " ")}, scopes)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireAAL2 returns a middleware like Middleware that also answers 403
// mfa_required unless the token is a session token at aal2 (Claims.AAL2):
// for routes that must not be reached with a password alone, such as
// payments or account deletion. A client answered mfa_required verifies a
// second factor with Latch (POST /auth/mfa/verify), whose new access token
// then passes. Tokens exchanged from API keys carry no aal and are refused.
func (v *Verifier) RequireAAL2(next http.Handler) http.Handler {
	return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		if c == nil || !c.AAL2() {
			v.writeError(w, r, &Error{Status: http.StatusForbidden, Code: ErrMFARequired,
				Message: "this resource needs a session verified with a second factor (aal2)"}, nil)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// writeError answers with Latch's Error body and RFC 6750's header.
func (v *Verifier) writeError(w http.ResponseWriter, r *http.Request, e *Error, scopes []string) {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	h := w.Header()
	h.Set("X-Request-Id", id)
	h.Set("Cache-Control", "no-store")
	switch e.Code {
	case ErrUnauthorized:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q`, v.cfg.Realm))
	case ErrInsufficientPermissions:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="insufficient_scope", scope=%q`, v.cfg.Realm, strings.Join(scopes, " ")))
	case ErrMFARequired:
		// RFC 9470's step-up challenge.
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="insufficient_user_authentication", acr_values="aal2"`, v.cfg.Realm))
	default:
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="invalid_token", error_description=%q`, v.cfg.Realm, e.Message))
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": string(e.Code), "message": e.Message, "request_id": id})
}

// validRequestID accepts a caller's request id only when short and plain.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
