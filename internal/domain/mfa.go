package domain

import (
	"time"

	"github.com/google/uuid"
)

// The authenticator assurance levels of a session (NIST SP 800-63B).
const (
	// AAL1 is one factor: a password, or a passkey without user
	// verification.
	AAL1 = "aal1"
	// AAL2 is two factors: a password and a second factor, or a passkey
	// whose authenticator verified the user.
	AAL2 = "aal2"
)

// The authentication methods of a session (RFC 8176).
const (
	AMRPassword = "pwd"
	// AMRImpersonation is the only method of an impersonation session: an
	// operator acts as the user, who did not authenticate.
	AMRImpersonation = "impersonation"
	AMROTP           = "otp"
	// AMRHardwareKey is a device-bound WebAuthn credential.
	AMRHardwareKey = "hwk"
	// AMRSoftwareKey is a synced (backed-up) passkey.
	AMRSoftwareKey = "swk"
	// AMRKnowledge is a recovery code.
	AMRKnowledge = "kba"
	AMRMulti     = "mfa"
)

// FactorType is the kind of a second factor.
type FactorType string

// The factor types.
const (
	FactorTOTP     FactorType = "totp"
	FactorWebAuthn FactorType = "webauthn"
)

// Factor is a second factor of a user. Secrets are held sealed: TOTPSecret
// is the seed sealed with the master key, WebAuthn.Sealed the credential
// record sealed likewise.
type Factor struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Type       FactorType
	Name       string
	VerifiedAt *time.Time // nil for a TOTP enrolment not yet confirmed
	CreatedAt  time.Time
	LastUsedAt *time.Time
	TOTPSecret []byte
	WebAuthn   *WebAuthnCredential
	// SessionID is the session that started a pending enrolment: only it
	// may confirm it. Nil for a factor stored verified.
	SessionID *uuid.UUID
}

// Verified reports whether the factor counts.
func (f *Factor) Verified() bool { return f.VerifiedAt != nil }

// WebAuthnCredential is the stored part of a WebAuthn factor.
type WebAuthnCredential struct {
	// CredentialID is the authenticator's credential id (public, unique).
	CredentialID []byte
	// Sealed is the library's credential record (public key, flags, sign
	// counter), sealed with the master key.
	Sealed         []byte
	BackupEligible bool
	BackedUp       bool
	// Passwordless reports whether the credential may sign in alone (a
	// passkey); a password reset turns it off for the credentials
	// registered before it, which stay second factors.
	Passwordless bool
}

// The kinds of WebAuthn challenge.
const (
	ChallengeRegister = "register" // a signed-in user registers a credential
	ChallengeVerify   = "verify"   // a signed-in user's second factor
	ChallengePasskey  = "passkey"  // passwordless sign-in
)

// Challenge is a pending WebAuthn ceremony. Only the SHA-256 of the
// challenge is stored; Data is the rest of the ceremony's state.
type Challenge struct {
	Hash      []byte
	Kind      string
	UserID    *uuid.UUID
	SessionID *uuid.UUID
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// FactorChange is what a factor's verification writes in one transaction.
type FactorChange struct {
	// Factor is stored when New is set (a WebAuthn factor), otherwise the
	// existing unverified factor with its id is marked verified.
	Factor *Factor
	New    bool
	// RecoveryHashes, when not nil, replace the user's recovery codes.
	RecoveryHashes [][]byte
	// SessionID is upgraded to AAL with AMR (and, at AAL2, its second
	// factor counts as verified at Now); every other pending enrolment of
	// the user is deleted.
	SessionID uuid.UUID
	AAL       string
	AMR       []string
	// Refresh replaces the session's refresh token.
	Refresh *RefreshToken
	Now     time.Time
}

// The event types of multi-factor authentication.
const (
	EventMFAFactorAdded           = "mfa_factor_added"
	EventMFAFactorRemoved         = "mfa_factor_removed"
	EventMFAVerified              = "mfa_verified"
	EventMFAVerificationFailed    = "mfa_verification_failed"
	EventRecoveryCodesRegenerated = "recovery_codes_regenerated"
	// EventMFALocked: too many consecutive failed second-factor attempts
	// locked the account's second factors until a recovery step.
	EventMFALocked = "mfa_locked"
)

// The mail templates of factor changes.
const (
	MailFactorAdded   = "mfa_factor_added"
	MailFactorRemoved = "mfa_factor_removed"
	MailMFALocked     = "mfa_locked"
)
