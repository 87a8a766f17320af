// Package token signs and verifies Latch access tokens (JWTs) and manages the
// key set that backs the JWKS.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	// Named apart from the tests' claims helper.
	latchclaims "github.com/latchauth/latch/claims"
	"github.com/latchauth/latch/internal/domain"
)

// The supported signing algorithms.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
)

// TypAccessToken is the JWT typ header of access tokens (RFC 9068).
const TypAccessToken = "at+jwt"

// MaxTokenBytes caps the size of a token that Verify will parse.
const MaxTokenBytes = 4096

// Claims are the claims of a Latch access token: the one claims type,
// claims.AccessTokenClaims, which the spec's AccessTokenClaims schema
// defines and which carries the methods golang-jwt reads them through.
type Claims = latchclaims.AccessTokenClaims

// ValidAlg reports whether alg is a supported signing algorithm.
func ValidAlg(alg string) bool { return alg == ES256 || alg == EdDSA || alg == RS256 }

// GenerateKey returns a new private key for alg with a random kid.
func GenerateKey(alg string, now time.Time) (domain.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return domain.SigningKey{}, fmt.Errorf("token: unsupported algorithm %q", alg)
	}
	if err != nil {
		return domain.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return domain.SigningKey{}, err
	}
	kid := make([]byte, 12)
	if _, err := rand.Read(kid); err != nil {
		return domain.SigningKey{}, err
	}
	return domain.SigningKey{
		KID:        hex.EncodeToString(kid),
		Alg:        alg,
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CreatedAt:  now,
	}, nil
}

type key struct {
	kid    string
	alg    string
	priv   crypto.Signer
	method jwt.SigningMethod
	// hdr is the encoded JOSE header of every token the key signs.
	hdr string
}

func parseKey(k domain.SigningKey) (*key, error) {
	blk, _ := pem.Decode(k.PrivatePEM)
	if blk == nil {
		return nil, fmt.Errorf("token: key %s: no PEM block", k.KID)
	}
	raw, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: key %s: %w", k.KID, err)
	}
	out := &key{kid: k.KID, alg: k.Alg}
	switch p := raw.(type) {
	case *ecdsa.PrivateKey:
		if k.Alg != ES256 || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: key %s: EC key for %s", k.KID, k.Alg)
		}
		out.priv, out.method = p, jwt.SigningMethodES256
	case ed25519.PrivateKey:
		if k.Alg != EdDSA {
			return nil, fmt.Errorf("token: key %s: Ed25519 key for %s", k.KID, k.Alg)
		}
		out.priv, out.method = p, jwt.SigningMethodEdDSA
	case *rsa.PrivateKey:
		if k.Alg != RS256 || p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("token: key %s: RSA key unfit for %s", k.KID, k.Alg)
		}
		out.priv, out.method = p, jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("token: key %s: unsupported key type %T", k.KID, raw)
	}
	if out.hdr, err = encodeHeader(out); err != nil {
		return nil, err
	}
	return out, nil
}

// JWK is a public JSON Web Key (RFC 7517).
type JWK struct {
	KID string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func (k *key) jwk() JWK {
	b := base64.RawURLEncoding
	j := JWK{KID: k.kid, Alg: k.alg, Use: "sig"}
	switch p := k.priv.Public().(type) {
	case *ecdsa.PublicKey:
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y = b.EncodeToString(pad32(p.X)), b.EncodeToString(pad32(p.Y))
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b.EncodeToString(p)
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b.EncodeToString(p.N.Bytes())
		j.E = b.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	}
	return j
}

func pad32(n *big.Int) []byte {
	out := make([]byte, 32)
	return n.FillBytes(out)
}

// Config configures an Issuer.
type Config struct {
	Alg      string
	Issuer   string
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	Clock  domain.Clock
}

// Issuer signs and verifies access tokens with the current key set. It is
// safe for concurrent use; Load swaps the key set atomically.
type Issuer struct {
	cfg    Config
	parser *jwt.Parser

	// signing is the loaded key set's schedule of signing keys, read
	// without a lock on every Sign.
	signing atomic.Pointer[schedule]

	mu    sync.RWMutex
	byKID map[string]*key
	jwks  []JWK
}

// NewIssuer returns an Issuer with no keys; call Load before use.
func NewIssuer(cfg Config) (*Issuer, error) {
	if !ValidAlg(cfg.Alg) {
		return nil, fmt.Errorf("token: unsupported algorithm %q", cfg.Alg)
	}
	if cfg.Clock == nil {
		cfg.Clock = domain.SystemClock{}
	}
	return &Issuer{
		cfg: cfg,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{cfg.Alg}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Clock.Now),
		),
		byKID: map[string]*key{},
	}, nil
}

// Load replaces the key set. keys are newest first; at any time the newest
// key of the configured algorithm that has activated and not yet retired
// (judged on the issuer's clock) signs. The choice is made when Sign is
// called, not when Load is: a key published for a staged rotation signs
// from its activation time on without another Load. When no key of the set
// would sign at some later time (the deployment changes its algorithm), the
// key that signed before keeps signing. Every key verifies and is
// published, also a key that has not activated yet.
// Returns an error when no key can sign now.
func (is *Issuer) Load(keys []domain.SigningKey) error {
	now := is.cfg.Clock.Now()
	byKID := make(map[string]*key, len(keys))
	parsed := make([]*key, len(keys))
	jwks := make([]JWK, 0, len(keys))
	for i, k := range keys {
		pk, err := parseKey(k)
		if err != nil {
			return err
		}
		byKID[pk.kid] = pk
		parsed[i] = pk
		jwks = append(jwks, pk.jwk())
	}
	activeAt := func(t time.Time) *key {
		for i, k := range keys {
			if k.Alg == is.cfg.Alg && signsAt(k, t) {
				return parsed[i]
			}
		}
		return nil
	}
	active := activeAt(now)
	if active == nil {
		return fmt.Errorf("token: no active %s signing key", is.cfg.Alg)
	}
	// The signing key changes only when a key of the algorithm activates
	// or retires; the schedule has a step for each such later time that
	// changes it.
	var changes []time.Time
	for _, k := range keys {
		for _, t := range []*time.Time{k.ActivatesAt, k.RetiredAt} {
			if k.Alg == is.cfg.Alg && t != nil && t.After(now) {
				changes = append(changes, *t)
			}
		}
	}
	slices.SortFunc(changes, time.Time.Compare)
	sch := &schedule{steps: []step{{k: active}}}
	for _, t := range changes {
		if k := activeAt(t); k != nil && k != sch.steps[len(sch.steps)-1].k {
			sch.steps = append(sch.steps, step{from: t, k: k})
		}
	}
	is.mu.Lock()
	is.byKID, is.jwks = byKID, jwks
	// A key signs only once this instance verifies it.
	is.signing.Store(sch)
	is.mu.Unlock()
	return nil
}

// signsAt reports whether the key may sign at t: it has activated and not
// yet retired.
func signsAt(k domain.SigningKey, t time.Time) bool {
	return (k.ActivatesAt == nil || !k.ActivatesAt.After(t)) && (k.RetiredAt == nil || k.RetiredAt.After(t))
}

// schedule is the signing keys of a loaded key set over time: steps[0]
// signs from the Load on, and each later step from its time on (a staged
// key from its activation). It is never changed once stored.
type schedule struct {
	steps []step // by time, oldest first; never empty
}

type step struct {
	from time.Time
	k    *key
}

// key returns the key that signs at the clock's now. With no staged change
// (the usual case) it reads no clock.
func (s *schedule) key(clock domain.Clock) *key {
	k := s.steps[0].k
	if len(s.steps) > 1 {
		now := clock.Now()
		for _, st := range s.steps[1:] {
			if now.Before(st.from) {
				break
			}
			k = st.k
		}
	}
	return k
}

// activeKey returns the key that signs now, or nil before the first Load.
func (is *Issuer) activeKey() *key {
	sch := is.signing.Load()
	if sch == nil {
		return nil
	}
	return sch.key(is.cfg.Clock)
}

// JWKS returns the public keys.
func (is *Issuer) JWKS() []JWK {
	is.mu.RLock()
	defer is.mu.RUnlock()
	return is.jwks
}

// Config returns the issuer's configuration.
func (is *Issuer) Config() Config { return is.cfg }

// Sign signs the claims with the key active at the issuer's clock's now
// (see Load), setting iss (and aud when empty); the caller sets sub, iat,
// exp and jti. Returns an error before the first Load.
func (is *Issuer) Sign(c *Claims) (string, error) {
	k := is.activeKey()
	if k == nil {
		return "", errors.New("token: no signing key loaded")
	}
	c.Issuer = is.cfg.Issuer
	if len(c.Audience) == 0 {
		c.Audience = jwt.ClaimStrings{is.cfg.Audience}
	}
	return k.sign(c)
}

// MaxIssuedAtSkew is how far in the future a token's iat may be: the clock
// skew tolerated between the instances of a deployment (and the second that
// iat's rounding costs).
const MaxIssuedAtSkew = 30 * time.Second

// ErrUnknownKey is the cause (in the chain of Verify's error) when a token
// names a kid this issuer has not loaded: another instance may have rotated
// the signing key, so the caller may reload the keys and verify again.
var ErrUnknownKey = errors.New("token: unknown kid")

// Verify checks a token's size, header (alg allowlist, typ, kid), signature,
// iss, aud, exp (required), nbf and iat, and returns its claims. It never
// follows jku, x5u or jwk headers. Returns CodeTokenExpired (with ExpiresAt)
// for an expired token and CodeInvalidToken for anything else.
func (is *Issuer) Verify(tok string) (*Claims, error) {
	if len(tok) > MaxTokenBytes || strings.Count(tok, ".") != 2 {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is malformed")
	}
	c := &Claims{}
	_, err := is.parser.ParseWithClaims(tok, c, is.keyFor)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) && c.ExpiresAt != nil {
			return nil, &domain.Error{Code: domain.CodeTokenExpired, Message: "the access token has expired", ExpiresAt: c.ExpiresAt.Time.UTC()}
		}
		return nil, &domain.Error{Code: domain.CodeInvalidToken, Message: "the access token is invalid", Err: err}
	}
	if c.Subject == "" || c.ID == "" {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is missing claims")
	}
	// iat is whole seconds from the signing instance's clock: another
	// instance whose clock is a little behind must not refuse its tokens
	// as issued in the future, so iat is checked with the skew allowance
	// (exp stays exact).
	if c.IssuedAt != nil && c.IssuedAt.Time.After(is.cfg.Clock.Now().Add(max(is.cfg.Leeway, MaxIssuedAtSkew))) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the access token is issued in the future")
	}
	return c, nil
}

func (is *Issuer) keyFor(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, TypAccessToken) && !strings.EqualFold(typ, "application/"+TypAccessToken) {
		return nil, errors.New("not an access token")
	}
	kid, _ := t.Header["kid"].(string)
	is.mu.RLock()
	k := is.byKID[kid]
	is.mu.RUnlock()
	if k == nil {
		return nil, ErrUnknownKey
	}
	if t.Method.Alg() != k.alg {
		return nil, errors.New("algorithm does not match the key")
	}
	return k.priv.Public(), nil
}
