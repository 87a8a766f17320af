package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// The rate-limit rules of multi-factor authentication.
const (
	ruleMFAAccount = "mfa-account"
	ruleMFAIP      = "mfa-ip"
)

// RecoveryCodeCount is how many recovery codes a user gets at once.
const RecoveryCodeCount = 10

// maxFactors bounds the factors (verified or pending) of one user.
const maxFactors = 20

// MFAConfig configures multi-factor authentication.
type MFAConfig struct {
	// RPID is the WebAuthn relying party id: the registrable domain that
	// credentials are bound to (LATCH_WEBAUTHN_RP_ID).
	RPID string
	// RPName is shown by authenticators; default "Latch".
	RPName string
	// Origins are the web origins that ceremonies may come from
	// (LATCH_WEBAUTHN_ORIGINS).
	Origins []string
	// Issuer is the issuer of TOTP URIs, shown by authenticator apps;
	// default RPName.
	Issuer string
	// ChallengeTTL is how long a WebAuthn ceremony may take; default 5m.
	ChallengeTTL time.Duration
	// MaxAge is how recent a session's second factor must be for an aal2
	// operation (LATCH_MFA_MAX_AGE); default DefaultMFAMaxAge.
	MaxAge time.Duration
	// EnrollmentTTL is how long a started TOTP enrolment may be confirmed
	// (LATCH_MFA_ENROLLMENT_TTL); default DefaultEnrollmentTTL.
	EnrollmentTTL time.Duration
	// LockAfter is how many consecutive failed second-factor attempts lock
	// the account's second factors until a recovery code or a password
	// reset; default DefaultMFALockAfter.
	LockAfter int
}

// The defaults of MFAConfig.
const (
	// DefaultMFAMaxAge follows NIST SP 800-63B-4's reauthentication bound
	// for AAL2 (at most 24 hours), halved.
	DefaultMFAMaxAge = 12 * time.Hour
	// DefaultEnrollmentTTL bounds a pending TOTP enrolment.
	DefaultEnrollmentTTL = 10 * time.Minute
	// DefaultMFALockAfter is NIST SP 800-63B-4's cap on consecutive failed
	// attempts of an authenticator.
	DefaultMFALockAfter = 100
)

// MFA is multi-factor authentication: TOTP, WebAuthn (as a second factor
// and as a passwordless passkey), recovery codes, and the assurance level
// of sessions. It is made with the shared pieces it uses (sessions,
// rate limits, events, mail). It is safe for concurrent use.
type MFA struct {
	cfg   MFAConfig
	store MFAStore
	wa    *webauthn.WebAuthn
	// mailOn is whether mail is configured (RecoveryConfig.Mail).
	mailOn   bool
	sealer   *token.Sealer
	clock    domain.Clock
	log      *slog.Logger
	events   *EventLog
	limits   *RateLimits
	sessions *Sessions
	mailer   *Mail
}

// NewMFA returns the MFA service. Returns an error for a WebAuthn
// configuration the library refuses (no RP id, no origin, a bad origin).
func NewMFA(cfg MFAConfig, sh Shared, store MFAStore) (*MFA, error) {
	if cfg.RPName == "" {
		cfg.RPName = "Latch"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = cfg.RPName
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = 5 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMFAMaxAge
	}
	if cfg.EnrollmentTTL <= 0 {
		cfg.EnrollmentTTL = DefaultEnrollmentTTL
	}
	if cfg.LockAfter <= 0 {
		cfg.LockAfter = DefaultMFALockAfter
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: cfg.RPName, RPOrigins: cfg.Origins,
		// The store expires ceremonies on the injected clock; the library's
		// own expiry (on the wall clock) stays off, so there is one rule.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: cfg.ChallengeTTL, TimeoutUVD: cfg.ChallengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: cfg.ChallengeTTL, TimeoutUVD: cfg.ChallengeTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return &MFA{cfg: cfg, store: store, wa: wa, mailOn: sh.Config.Recovery.Mail, sealer: sh.Sealer, clock: sh.Clock, log: sh.Log,
		events: sh.Events, limits: sh.Limits, sessions: sh.Sessions, mailer: sh.Mail}, nil
}

// Config returns the configuration with its defaults.
func (m *MFA) Config() MFAConfig { return m.cfg }

// sessionAssurance returns the aal and amr claims of a session's tokens. A
// session stored before multi-factor authentication (no level recorded) is
// an aal1 password login, or for a delegated session aal1 without methods.
func sessionAssurance(sess *domain.Session) (string, []string) {
	aal, amr := sess.AAL, sess.AMR
	if aal == "" {
		aal = domain.AAL1
	}
	if len(amr) == 0 && sess.OrgID == nil && aal == domain.AAL1 && sess.AAL == "" {
		amr = []string{domain.AMRPassword}
	}
	return aal, amr
}

// needUser returns CodeInsufficientPermissions unless p is a password
// account's own session: factors belong to people who log in to Latch, not
// to keys or to an organization's delegated identities.
func needUser(p *domain.Principal) error {
	if p.Kind != domain.PrincipalSession || p.UserID == uuid.Nil || p.OrgID != nil {
		return domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user's session")
	}
	return nil
}

// RequireAAL2 is the assurance gate of every operation that declares
// x-latch-assurance: aal2 in openapi.yaml; the server's validator calls it,
// and nothing else does. It returns CodeMFARequired (with MaxAge) when p is
// a session of a user who has a verified factor and the session is aal1,
// or verified its second factor more than MaxAge ago. A user without a
// verified factor passes at aal1, the highest they can reach. API keys and
// tokens exchanged from them are not sessions and pass.
func (m *MFA) RequireAAL2(ctx context.Context, p *domain.Principal) error {
	if p.Kind != domain.PrincipalSession {
		return nil
	}
	fresh := !p.AuthTime.IsZero() && m.clock.Now().Sub(p.AuthTime) <= m.cfg.MaxAge
	if p.AAL == domain.AAL2 && fresh {
		return nil
	}
	has, err := m.store.HasVerifiedFactor(ctx, p.UserID)
	if err != nil || !has {
		return err
	}
	msg := "this operation needs an aal2 session: verify a second factor (POST /auth/mfa/verify)"
	if p.AAL == domain.AAL2 {
		msg = fmt.Sprintf("this operation needs a second factor verified in the last %s: verify one again (POST /auth/mfa/verify)", m.cfg.MaxAge)
	}
	return &domain.Error{Code: domain.CodeMFARequired, Message: msg, MaxAge: m.cfg.MaxAge}
}

// enrolling is what every enrolment checks first: a user, room under the
// factor quota (its aal2 is declared in the spec). It returns the user and
// their factors. Returns CodeQuotaExceeded.
func (m *MFA) enrolling(ctx context.Context, p *domain.Principal) (*domain.User, []domain.Factor, error) {
	if err := needUser(p); err != nil {
		return nil, nil, err
	}
	fs, err := m.store.ListFactors(ctx, p.UserID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkQuota(fs); err != nil {
		return nil, nil, err
	}
	u, err := m.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, nil, err
	}
	return u, fs, nil
}

// Pending returns the verified factors that can raise t's session to aal2:
// none when it is aal2 already or the user has no factor, and no WebAuthn
// factor for a session a passkey opened (see secondFactorAllowed). Login
// answers with them.
func (m *MFA) Pending(ctx context.Context, t *TokenSet) ([]domain.Factor, error) {
	aal, amr := sessionAssurance(&t.Session)
	if aal == domain.AAL2 {
		return nil, nil
	}
	fs, err := m.store.ListFactors(ctx, t.User.ID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(fs, func(f domain.Factor) bool {
		return !f.Verified() || (f.Type == domain.FactorWebAuthn && !secondFactorAllowed(amr, MethodWebAuthn))
	}), nil
}

// secondFactorAllowed reports whether method may raise a session opened
// with amr to aal2. A second factor must be a different factor from the one
// that opened the session (NIST SP 800-63B-4): a session a passkey opened
// without user verification (amr hwk or swk, aal1) is raised by a TOTP code
// or a recovery code, never by a WebAuthn credential, its own or another
// possession factor like it.
func secondFactorAllowed(amr []string, method string) bool {
	if method != MethodWebAuthn {
		return true
	}
	return !slices.Contains(amr, domain.AMRHardwareKey) && !slices.Contains(amr, domain.AMRSoftwareKey)
}

// FactorList is the user's factors with what the caller's session is.
type FactorList struct {
	Factors                []domain.Factor
	RecoveryCodesRemaining int
	AAL                    string
}

// ListFactors returns the user's factors, oldest first.
func (m *MFA) ListFactors(ctx context.Context, p *domain.Principal) (*FactorList, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	fs, err := m.store.ListFactors(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	n, err := m.store.CountRecoveryCodes(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	aal := p.AAL
	if aal == "" {
		aal = domain.AAL1
	}
	return &FactorList{Factors: fs, RecoveryCodesRemaining: n, AAL: aal}, nil
}

// RenameFactor renames one of the user's factors. Returns CodeNotFound if
// it is not the user's, CodeInvalidRequest for a bad name.
func (m *MFA) RenameFactor(ctx context.Context, p *domain.Principal, id uuid.UUID, name string) (*domain.Factor, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	name, err := factorName(name, "")
	if err != nil {
		return nil, err
	}
	return m.store.RenameFactor(ctx, p.UserID, id, name)
}

// DeleteFactor removes one of the user's factors (its aal2 is declared in
// the spec), revokes every other session of the user, records
// mfa_factor_removed and mails the user. Returns CodeNotFound if it is not
// the user's.
func (m *MFA) DeleteFactor(ctx context.Context, p *domain.Principal, id uuid.UUID, meta domain.RequestMeta) error {
	if err := needUser(p); err != nil {
		return err
	}
	fs, err := m.store.ListFactors(ctx, p.UserID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(fs, func(f domain.Factor) bool { return f.ID == id })
	if i < 0 {
		return domain.Errorf(domain.CodeNotFound, "factor not found")
	}
	left, err := m.store.DeleteFactor(ctx, p.UserID, id, m.clock.Now())
	if err != nil {
		return err
	}
	revoked, err := m.revokeOthers(ctx, p)
	if err != nil {
		return err
	}
	m.events.record(ctx, domain.EventMFAFactorRemoved, meta, &p.UserID, &p.SessionID, nil, map[string]any{
		"factor_id": id.String(), "type": string(fs[i].Type), "verified_factors_left": left, "revoked_sessions": revoked})
	if fs[i].Verified() {
		m.mail(ctx, p.UserID, domain.MailFactorRemoved, fs[i].Name)
	}
	return nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes and returns
// the new ones, shown this once. It needs a verified factor (and aal2, as
// the spec declares), revokes the user's other sessions and records
// recovery_codes_regenerated. Returns CodeConflict when the user has no
// verified factor.
func (m *MFA) RegenerateRecoveryCodes(ctx context.Context, p *domain.Principal, meta domain.RequestMeta) ([]string, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	has, err := m.store.HasVerifiedFactor(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, domain.Errorf(domain.CodeConflict, "recovery codes need a verified second factor first")
	}
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	if err := m.store.ReplaceRecoveryCodes(ctx, p.UserID, hashes, m.clock.Now()); err != nil {
		return nil, err
	}
	revoked, err := m.revokeOthers(ctx, p)
	if err != nil {
		return nil, err
	}
	m.events.record(ctx, domain.EventRecoveryCodesRegenerated, meta, &p.UserID, &p.SessionID, nil, map[string]any{"revoked_sessions": revoked})
	return codes, nil
}

// revokeOthers revokes every session of the user but the caller's and
// returns how many it revoked.
func (m *MFA) revokeOthers(ctx context.Context, p *domain.Principal) (int, error) {
	ids, err := m.store.RevokeUserSessions(ctx, p.UserID, p.SessionID, m.clock.Now())
	m.sessions.forget(ids...)
	return len(ids), err
}

// Enrollment is what completing a factor's enrolment returns.
type Enrollment struct {
	Factor domain.Factor
	// RecoveryCodes are set with the account's first factor, shown once.
	RecoveryCodes []string
	// Tokens are the caller's session's new tokens, at aal2.
	Tokens *TokenSet
}

// confirm completes an enrolment: the factor is verified (or stored, for
// WebAuthn), the first factor gets recovery codes, the caller's session
// becomes aal2 with method, other sessions are revoked, the change is an
// event and a mail.
func (m *MFA) confirm(ctx context.Context, p *domain.Principal, f *domain.Factor, isNew bool, method string, meta domain.RequestMeta) (*Enrollment, error) {
	u, err := m.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	has, err := m.store.HasVerifiedFactor(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	var codes []string
	var hashes [][]byte
	if !has {
		if codes, hashes, err = newRecoveryCodes(); err != nil {
			return nil, err
		}
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	now := m.clock.Now()
	f.VerifiedAt, f.LastUsedAt = &now, &now
	sess, err := m.store.ConfirmFactor(ctx, domain.FactorChange{Factor: f, New: isNew, RecoveryHashes: hashes,
		SessionID: p.SessionID, AAL: domain.AAL2, AMR: m.upgradedAMR(p, method), Now: now,
		Refresh: &domain.RefreshToken{ID: uuid.New(), SessionID: p.SessionID, Hash: hash, CreatedAt: now}})
	if err != nil {
		return nil, err
	}
	m.sessions.forget(sess.ID)
	revoked, err := m.revokeOthers(ctx, p)
	if err != nil {
		return nil, err
	}
	m.events.record(ctx, domain.EventMFAFactorAdded, meta, &p.UserID, &p.SessionID, nil, map[string]any{
		"factor_id": f.ID.String(), "type": string(f.Type), "revoked_sessions": revoked})
	m.mail(ctx, p.UserID, domain.MailFactorAdded, f.Name)
	ts, err := m.sessions.tokenSet(u, sess, refresh, now)
	if err != nil {
		return nil, err
	}
	return &Enrollment{Factor: *f, RecoveryCodes: codes, Tokens: ts}, nil
}

// upgradedAMR is the session's methods with method and "mfa" added.
func (m *MFA) upgradedAMR(p *domain.Principal, method string) []string {
	return addAMR(p.AMR, method, domain.AMRMulti)
}

func addAMR(amr []string, add ...string) []string {
	out := slices.Clone(amr)
	if len(out) == 0 {
		out = []string{domain.AMRPassword}
	}
	for _, a := range add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// The methods of POST /auth/mfa/verify.
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodWebAuthn     = "webauthn"
)

// VerifyRequest is a second factor presented to raise a session to aal2.
type VerifyRequest struct {
	Method string
	// Code is the TOTP code or the recovery code.
	Code string
	// Credential is the WebAuthn assertion, as JSON.
	Credential []byte
}

// Verify checks a second factor and raises the caller's session to aal2,
// returning its new tokens (the session's refresh token is replaced); the
// session's second factor then counts as verified now. Every attempt takes
// a token per client IP and per account before any work (a success gives
// the account's back), and failures count towards the lock. A session that
// a passkey opened is raised by a TOTP or recovery code only. While the
// account's second factors are locked only a recovery code is checked.
// Returns CodeMFAVerificationFailed for a wrong, replayed or unknown
// factor, CodeMFALocked, CodeRateLimited, CodeInvalidRequest.
func (m *MFA) Verify(ctx context.Context, p *domain.Principal, req VerifyRequest, meta domain.RequestMeta) (*TokenSet, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	if !secondFactorAllowed(p.AMR, req.Method) {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "this session was opened with a passkey: verify a different factor (totp or recovery_code)")
	}
	if err := m.limit(ctx, p.UserID, meta); err != nil {
		return nil, err
	}
	if req.Method == MethodTOTP || req.Method == MethodWebAuthn {
		locked, err := m.store.MFALocked(ctx, p.UserID)
		if err != nil {
			return nil, err
		}
		if locked {
			return nil, domain.Errorf(domain.CodeMFALocked, "too many failed attempts locked this account's second factors: use a recovery code, or reset the password")
		}
	}
	var method string
	var err error
	switch req.Method {
	case MethodTOTP:
		method, err = m.verifyTOTP(ctx, p.UserID, req.Code)
	case MethodRecoveryCode:
		method, err = m.verifyRecoveryCode(ctx, p.UserID, req.Code)
	case MethodWebAuthn:
		method, err = m.verifyWebAuthn(ctx, p, req.Credential)
	default:
		return nil, domain.Errorf(domain.CodeInvalidRequest, "method must be totp, recovery_code or webauthn")
	}
	if err != nil {
		return nil, m.failed(ctx, p, req.Method, meta, err)
	}
	m.succeeded(ctx, p.UserID)
	u, err := m.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	now := m.clock.Now()
	sess, err := m.store.SetSessionAssurance(ctx, p.UserID, p.SessionID, domain.AAL2, m.upgradedAMR(p, method),
		&domain.RefreshToken{ID: uuid.New(), SessionID: p.SessionID, Hash: hash, CreatedAt: now}, now)
	if err != nil {
		return nil, err
	}
	m.sessions.forget(sess.ID)
	m.events.record(ctx, domain.EventMFAVerified, meta, &p.UserID, &p.SessionID, nil, map[string]any{"method": req.Method})
	return m.sessions.tokenSet(u, sess, refresh, now)
}

// limit applies the rules of a factor attempt before anything is
// computed: a token per client IP, and a token of the account's bucket,
// each taken atomically in the limiter's store, so that concurrent guesses
// get no more checks than the bucket holds.
func (m *MFA) limit(ctx context.Context, userID uuid.UUID, meta domain.RequestMeta) error {
	if err := m.limits.allowIP(ctx, ruleMFAIP, meta, &userID); err != nil {
		return err
	}
	return m.limits.allow(ctx, ruleMFAAccount, userID.String(), meta, &userID)
}

// succeeded undoes what limit and failed counted for the account: the
// account bucket's token comes back and the consecutive failures (and a
// lock, after a recovery code) are cleared.
func (m *MFA) succeeded(ctx context.Context, userID uuid.UUID) {
	m.limits.refund(ctx, ruleMFAAccount, userID.String())
	if err := m.store.ResetMFAFailures(context.WithoutCancel(ctx), userID); err != nil {
		m.log.Warn("reset failed second-factor attempts", "user_id", userID, "err", err)
	}
}

// failed counts a failed attempt against the account (its bucket's token
// stays taken), locks the account's second factors at the LockAfter-th
// consecutive failure (an event and a mail), records the attempt, and
// returns what the caller is told: the cause when it has a code the caller
// may see (a storage failure), else CodeMFAVerificationFailed.
func (m *MFA) failed(ctx context.Context, p *domain.Principal, method string, meta domain.RequestMeta, cause error) error {
	switch domain.ErrorCode(cause) {
	case domain.CodeUnavailable, domain.CodeInternal:
		return cause
	case domain.CodeInvalidRequest:
		return cause
	}
	n, locked, err := m.store.RecordMFAFailure(context.WithoutCancel(ctx), p.UserID, m.cfg.LockAfter, m.clock.Now())
	if err != nil {
		m.log.Error("count a failed second factor", "user_id", p.UserID, "err", err)
	}
	m.events.record(ctx, domain.EventMFAVerificationFailed, meta, &p.UserID, &p.SessionID, nil, map[string]any{"method": method, "consecutive_failures": n})
	if locked {
		m.events.record(ctx, domain.EventMFALocked, meta, &p.UserID, &p.SessionID, nil, map[string]any{"consecutive_failures": n})
		m.mail(ctx, p.UserID, domain.MailMFALocked, "")
	}
	return &domain.Error{Code: domain.CodeMFAVerificationFailed, Message: "the second factor is wrong, used or expired", Err: cause}
}

// errWrongFactor is the cause of a refused factor, for logs.
var errWrongFactor = domain.Errorf(domain.CodeMFAVerificationFailed, "wrong factor")

// verifyRecoveryCode spends one of the user's recovery codes.
func (m *MFA) verifyRecoveryCode(ctx context.Context, userID uuid.UUID, code string) (string, error) {
	norm := normalizeRecoveryCode(code)
	if norm == "" {
		return "", errWrongFactor
	}
	h := sha256.Sum256([]byte(norm))
	if err := m.store.UseRecoveryCode(ctx, userID, h[:], m.clock.Now()); err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return "", errWrongFactor
		}
		return "", err
	}
	return domain.AMROTP, nil
}

// recoveryEncoding writes recovery codes in lower-case base32 (no 0, 1, 8,
// 9: nothing to confuse).
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// recoveryCodeBytes is a recovery code's entropy: 120 bits, over the 112
// that ASVS 5.0 (6.5.2) and NIST SP 800-63B ask of a secret stored with an
// unsalted fast hash. Codes of 80 bits (16 characters) issued before stay
// valid until used or regenerated.
const recoveryCodeBytes = 15

// newRecoveryCodes returns RecoveryCodeCount codes of 120 random bits
// each, shown as six groups of four characters (xxxx-xxxx-xxxx-xxxx-xxxx-xxxx),
// with their SHA-256 hashes.
func newRecoveryCodes() ([]string, [][]byte, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		raw := make([]byte, recoveryCodeBytes)
		if _, err := rand.Read(raw); err != nil {
			return nil, nil, err
		}
		s := recoveryEncoding.EncodeToString(raw)
		groups := make([]string, 0, len(s)/4)
		for j := 0; j < len(s); j += 4 {
			groups = append(groups, s[j:j+4])
		}
		codes[i] = strings.Join(groups, "-")
		h := sha256.Sum256([]byte(s))
		hashes[i] = h[:]
	}
	return codes, hashes, nil
}

// normalizeRecoveryCode drops separators and case; "" when what is left
// cannot be a code (24 characters, or 16 for a code issued before codes
// grew to 120 bits).
func normalizeRecoveryCode(code string) string {
	s := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	if len(s) != 24 && len(s) != 16 {
		return ""
	}
	if _, err := recoveryEncoding.DecodeString(s); err != nil {
		return ""
	}
	return s
}

// factorName trims and checks a factor's name; def when it is empty and def
// is not. Returns CodeInvalidRequest for a name over 100 bytes or empty.
func factorName(name, def string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = def
	}
	if name == "" || len(name) > 100 {
		return "", domain.Errorf(domain.CodeInvalidRequest, "name must be 1 to 100 bytes")
	}
	return name, nil
}

// checkQuota refuses a new factor beyond maxFactors.
func checkQuota(fs []domain.Factor) error {
	if len(fs) >= maxFactors {
		return domain.Errorf(domain.CodeQuotaExceeded, "a user may have at most %d factors", maxFactors)
	}
	return nil
}

// mail queues a notice of a factor change to the user through the outbox;
// a failure is logged (the change is made and recorded as an event).
func (m *MFA) mail(ctx context.Context, userID uuid.UUID, template, factor string) {
	if !m.mailOn {
		return
	}
	sealer := m.mailer.outbox
	u, err := m.store.UserByID(ctx, userID)
	if err != nil || u.Email == "" || sealer == nil {
		return
	}
	now := m.clock.Now()
	data, err := json.Marshal(domain.MailData{Email: u.Email, Factor: factor, ExpiresAt: now})
	if err != nil {
		return
	}
	id := uuid.New()
	payload, err := sealer.Seal(data, domain.OutboxPayloadLabel(id))
	if err == nil {
		uid := u.ID
		err = m.store.EnqueueMail(context.WithoutCancel(ctx), &domain.OutboxMessage{ID: id, Template: template, Recipient: u.Email,
			UserID: &uid, Payload: payload, CreatedAt: now, NextAttemptAt: now, Priority: domain.MailPriorityAccount})
	}
	if err != nil {
		m.log.Error("queue a factor-change mail", "user_id", userID, "err", err)
		return
	}
	m.mailer.queued()
}

// factorKind names a factor's type for people.
func factorKind(t domain.FactorType) string {
	if t == domain.FactorWebAuthn {
		return "passkey or security key"
	}
	return "authenticator app"
}
