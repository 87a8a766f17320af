package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// webauthnLabel is the label a factor's credential record is sealed under.
func webauthnLabel(id uuid.UUID) string { return token.WebAuthnCredentialLabel(id.String()) }

// waUser is a user as the WebAuthn library sees it. The user handle is the
// user id: random, stable, and no personal data.
type waUser struct {
	id    uuid.UUID
	name  string
	creds []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.id[:] }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// webauthnUser returns the library's view of u with the credentials of its
// verified WebAuthn factors, opened.
// webauthnUserByID is the user, their factors, and the user with every
// WebAuthn credential of theirs as the library sees them.
func (m *MFA) webauthnUserByID(ctx context.Context, userID uuid.UUID) (*domain.User, []domain.Factor, *waUser, error) {
	u, err := m.store.UserByID(ctx, userID)
	if err != nil {
		return nil, nil, nil, err
	}
	fs, err := m.store.ListFactors(ctx, userID)
	if err != nil {
		return nil, nil, nil, err
	}
	wu, err := m.webauthnUser(u, fs)
	return u, fs, wu, err
}

func (m *MFA) webauthnUser(u *domain.User, fs []domain.Factor) (*waUser, error) {
	name := u.Email
	if name == "" {
		name = u.ID.String()
	}
	wu := &waUser{id: u.ID, name: name}
	for i := range fs {
		if fs[i].Type != domain.FactorWebAuthn || !fs[i].Verified() || fs[i].WebAuthn == nil {
			continue
		}
		c, err := m.openCredential(&fs[i])
		if err != nil {
			return nil, err
		}
		wu.creds = append(wu.creds, *c)
	}
	return wu, nil
}

func (m *MFA) openCredential(f *domain.Factor) (*webauthn.Credential, error) {
	raw, err := m.sealer.Open(f.WebAuthn.Sealed, webauthnLabel(f.ID))
	if err != nil {
		return nil, err
	}
	var c webauthn.Credential
	if _, err := c.UnmarshalMsg(raw); err != nil {
		return nil, err
	}
	return &c, nil
}

func (m *MFA) sealCredential(id uuid.UUID, c *webauthn.Credential) ([]byte, error) {
	raw, err := c.MarshalMsg(nil)
	if err != nil {
		return nil, err
	}
	return m.sealer.Seal(raw, webauthnLabel(id))
}

// keyMethod is the RFC 8176 method of a WebAuthn credential: swk for a
// passkey that may be synced (backup eligible), hwk for a device-bound key.
func keyMethod(backupEligible bool) string {
	if backupEligible {
		return domain.AMRSoftwareKey
	}
	return domain.AMRHardwareKey
}

// Options are the options of a WebAuthn ceremony for the browser:
// {"publicKey": {...}} with base64url members.
type Options = map[string]any

func asOptions(v any) (Options, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var o Options
	return o, json.Unmarshal(b, &o)
}

// saveChallenge stores the ceremony's state with only the hash of its
// challenge.
func (m *MFA) saveChallenge(ctx context.Context, kind string, p *domain.Principal, sd *webauthn.SessionData) error {
	h := sha256.Sum256([]byte(sd.Challenge))
	rest := *sd
	rest.Challenge = ""
	data, err := json.Marshal(rest)
	if err != nil {
		return err
	}
	now := m.clock.Now()
	c := &domain.Challenge{Hash: h[:], Kind: kind, Data: data, CreatedAt: now, ExpiresAt: now.Add(m.cfg.ChallengeTTL)}
	if p != nil {
		uid, sid := p.UserID, p.SessionID
		c.UserID, c.SessionID = &uid, &sid
	}
	return m.store.SaveChallenge(ctx, c)
}

// errCeremony is a ceremony refused (unknown, used or expired challenge,
// another session's, a response that does not verify).
var errCeremony = domain.Errorf(domain.CodeMFAVerificationFailed, "the WebAuthn response does not match a pending ceremony")

// takeChallenge removes the pending ceremony whose challenge the client
// signed and returns its state: it must be of kind and, for a signed-in
// ceremony, of p's session.
func (m *MFA) takeChallenge(ctx context.Context, challenge, kind string, p *domain.Principal) (*webauthn.SessionData, error) {
	h := sha256.Sum256([]byte(challenge))
	c, err := m.store.TakeChallenge(ctx, h[:], m.clock.Now())
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, errCeremony
		}
		return nil, err
	}
	if c.Kind != kind {
		return nil, errCeremony
	}
	if p != nil && (c.UserID == nil || *c.UserID != p.UserID || c.SessionID == nil || *c.SessionID != p.SessionID) {
		return nil, errCeremony
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return nil, err
	}
	sd.Challenge = challenge
	return &sd, nil
}

// BeginRegistration starts registering a WebAuthn credential for the
// caller: a discoverable one when the authenticator can (so that it can
// later sign in alone), with user verification preferred, excluding the
// user's registered credentials. It needs aal2 when the user already has a
// verified factor. Returns CodeMFARequired, CodeQuotaExceeded.
func (m *MFA) BeginRegistration(ctx context.Context, p *domain.Principal) (Options, error) {
	u, fs, err := m.enrolling(ctx, p)
	if err != nil {
		return nil, err
	}
	wu, err := m.webauthnUser(u, fs)
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(wu.creds))
	for i := range wu.creds {
		exclude[i] = wu.creds[i].Descriptor()
	}
	creation, sd, err := m.wa.BeginRegistration(wu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, err
	}
	if err := m.saveChallenge(ctx, domain.ChallengeRegister, p, sd); err != nil {
		return nil, err
	}
	return asOptions(creation)
}

// FinishRegistration verifies the authenticator's response to a
// registration this session began (its challenge, the origin, the RP id,
// the attestation) and stores the credential, sealed, as a verified
// factor; the rest is as for a confirmed TOTP factor. Attempts are rate
// limited like Verify. Returns CodeMFAVerificationFailed for a response
// that does not verify, CodeConflict for a credential already registered.
func (m *MFA) FinishRegistration(ctx context.Context, p *domain.Principal, name string, credential []byte, meta domain.RequestMeta) (*Enrollment, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	if err := m.limit(ctx, p.UserID, meta); err != nil {
		return nil, err
	}
	name, err := factorName(name, "Passkey")
	if err != nil {
		return nil, err
	}
	f, err := m.finishRegistration(ctx, p, name, credential)
	if err != nil {
		return nil, m.failed(ctx, p, MethodWebAuthn, meta, err)
	}
	m.succeeded(ctx, p.UserID)
	return m.confirm(ctx, p, f, true, keyMethod(f.WebAuthn.BackupEligible), meta)
}

func (m *MFA) finishRegistration(ctx context.Context, p *domain.Principal, name string, credential []byte) (*domain.Factor, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return nil, &domain.Error{Code: domain.CodeMFAVerificationFailed, Message: "the WebAuthn response is malformed", Err: err}
	}
	sd, err := m.takeChallenge(ctx, parsed.Response.CollectedClientData.Challenge, domain.ChallengeRegister, p)
	if err != nil {
		return nil, err
	}
	u, _, wu, err := m.webauthnUserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	cred, err := m.wa.CreateCredential(wu, *sd, parsed)
	if err != nil {
		return nil, &domain.Error{Code: domain.CodeMFAVerificationFailed, Message: "the WebAuthn registration does not verify", Err: err}
	}
	f := &domain.Factor{ID: uuid.New(), UserID: u.ID, Type: domain.FactorWebAuthn, Name: name, CreatedAt: m.clock.Now()}
	sealed, err := m.sealCredential(f.ID, cred)
	if err != nil {
		return nil, err
	}
	f.WebAuthn = &domain.WebAuthnCredential{CredentialID: cred.ID, Sealed: sealed,
		BackupEligible: cred.Flags.BackupEligible, BackedUp: cred.Flags.BackupState, Passwordless: true}
	return f, nil
}

// BeginVerification starts using one of the caller's WebAuthn credentials
// as the second factor of this session (then Verify with MethodWebAuthn).
// Rate limited per client IP. Returns CodeNotFound when the user has no
// WebAuthn factor.
func (m *MFA) BeginVerification(ctx context.Context, p *domain.Principal, meta domain.RequestMeta) (Options, error) {
	if err := needUser(p); err != nil {
		return nil, err
	}
	if err := m.limits.allowIP(ctx, ruleMFAIP, meta, &p.UserID); err != nil {
		return nil, err
	}
	_, _, wu, err := m.webauthnUserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if len(wu.creds) == 0 {
		return nil, domain.Errorf(domain.CodeNotFound, "the user has no WebAuthn factor")
	}
	assertion, sd, err := m.wa.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	if err := m.saveChallenge(ctx, domain.ChallengeVerify, p, sd); err != nil {
		return nil, err
	}
	return asOptions(assertion)
}

// verifyWebAuthn checks an assertion of one of the user's credentials to a
// challenge this session began, and records the credential's new sign
// counter and backup state. A counter that went backwards (a cloned
// authenticator, as the library warns) is refused.
func (m *MFA) verifyWebAuthn(ctx context.Context, p *domain.Principal, credential []byte) (string, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return "", &domain.Error{Code: domain.CodeMFAVerificationFailed, Message: "the WebAuthn response is malformed", Err: err}
	}
	sd, err := m.takeChallenge(ctx, parsed.Response.CollectedClientData.Challenge, domain.ChallengeVerify, p)
	if err != nil {
		return "", err
	}
	_, fs, wu, err := m.webauthnUserByID(ctx, p.UserID)
	if err != nil {
		return "", err
	}
	cred, err := m.wa.ValidateLogin(wu, *sd, parsed)
	if err != nil {
		return "", &domain.Error{Code: domain.CodeMFAVerificationFailed, Message: "the WebAuthn assertion does not verify", Err: err}
	}
	f, err := m.recordUse(ctx, fs, cred)
	if err != nil {
		return "", err
	}
	return keyMethod(f.WebAuthn.BackupEligible), nil
}

// recordUse finds the factor of cred among fs and stores its updated
// record. Returns CodeMFAVerificationFailed on a clone warning.
func (m *MFA) recordUse(ctx context.Context, fs []domain.Factor, cred *webauthn.Credential) (*domain.Factor, error) {
	if cred.Authenticator.CloneWarning {
		return nil, domain.Errorf(domain.CodeMFAVerificationFailed, "the authenticator's signature counter went backwards")
	}
	for i := range fs {
		f := &fs[i]
		if f.WebAuthn == nil || !bytes.Equal(f.WebAuthn.CredentialID, cred.ID) {
			continue
		}
		sealed, err := m.sealCredential(f.ID, cred)
		if err != nil {
			return nil, err
		}
		f.WebAuthn.Sealed, f.WebAuthn.BackedUp = sealed, cred.Flags.BackupState
		return f, m.store.UseFactor(ctx, f, m.clock.Now())
	}
	return nil, errors.New("mfa: the verified credential has no factor")
}

// BeginPasskeyLogin starts a passwordless sign-in: no credential list, so
// the authenticator offers its discoverable credentials. Rate limited per
// client IP.
func (m *MFA) BeginPasskeyLogin(ctx context.Context, meta domain.RequestMeta) (Options, error) {
	if err := m.limits.allowIP(ctx, ruleMFAIP, meta, nil); err != nil {
		return nil, err
	}
	assertion, sd, err := m.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	if err := m.saveChallenge(ctx, domain.ChallengePasskey, nil, sd); err != nil {
		return nil, err
	}
	return asOptions(assertion)
}

// PasskeyLogin signs in with a discoverable credential alone and opens a
// session. Its amr is hwk or swk (keyMethod); when the authenticator
// verified the user (the UV flag: a PIN or biometrics on top of
// possession), the session is aal2 with mfa added, else aal1. Returns
// CodeInvalidCredentials for an unknown credential or an assertion that
// does not verify, CodeEmailNotVerified, CodeRateLimited.
func (m *MFA) PasskeyLogin(ctx context.Context, credential []byte, meta domain.RequestMeta) (*TokenSet, error) {
	if err := m.limits.allowIP(ctx, ruleMFAIP, meta, nil); err != nil {
		return nil, err
	}
	bad := domain.Errorf(domain.CodeInvalidCredentials, "the passkey was not accepted")
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return nil, &domain.Error{Code: domain.CodeInvalidCredentials, Message: bad.Message, Err: err}
	}
	sd, err := m.takeChallenge(ctx, parsed.Response.CollectedClientData.Challenge, domain.ChallengePasskey, nil)
	if err != nil {
		if domain.IsCode(err, domain.CodeMFAVerificationFailed) {
			return nil, &domain.Error{Code: domain.CodeInvalidCredentials, Message: bad.Message, Err: err}
		}
		return nil, err
	}
	var u *domain.User
	var fs []domain.Factor
	wuser, cred, err := m.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		f, err := m.store.FactorByCredentialID(ctx, rawID)
		if err != nil {
			return nil, err
		}
		if !f.WebAuthn.Passwordless {
			// A password reset made it a second factor only.
			return nil, errors.New("the credential no longer signs in alone")
		}
		if !bytes.Equal(userHandle, f.UserID[:]) {
			return nil, errors.New("the user handle is not the credential's user")
		}
		if u, err = m.store.UserByID(ctx, f.UserID); err != nil {
			return nil, err
		}
		fs = []domain.Factor{*f}
		return m.webauthnUser(u, fs)
	}, *sd, parsed)
	if err != nil || wuser == nil {
		if errors.Is(err, context.Canceled) || domain.IsCode(err, domain.CodeUnavailable) {
			return nil, err
		}
		if u != nil {
			m.events.record(ctx, domain.EventLoginFailed, meta, &u.ID, nil, nil, map[string]any{"method": "passkey"})
		}
		return nil, &domain.Error{Code: domain.CodeInvalidCredentials, Message: bad.Message, Err: err}
	}
	f, err := m.recordUse(ctx, fs, cred)
	if err != nil {
		if domain.IsCode(err, domain.CodeMFAVerificationFailed) {
			m.events.record(ctx, domain.EventLoginFailed, meta, &u.ID, nil, nil, map[string]any{"method": "passkey", "clone_warning": true})
			return nil, &domain.Error{Code: domain.CodeInvalidCredentials, Message: bad.Message, Err: err}
		}
		return nil, err
	}
	if err := m.sessions.checkVerified(u); err != nil {
		return nil, err
	}
	aal, amr := domain.AAL1, []string{keyMethod(f.WebAuthn.BackupEligible)}
	uv := parsed.Response.AuthenticatorData.Flags.HasUserVerified()
	if uv {
		aal, amr = domain.AAL2, append(amr, domain.AMRMulti)
	}
	return m.sessions.open(ctx, u, nil, meta, domain.EventLoginSucceeded, func(s *domain.Session) {
		s.AAL, s.AMR = aal, amr
		if uv {
			// A multi-factor authenticator: both factors verified now.
			s.MFAAt = &s.CreatedAt
		}
	})
}
