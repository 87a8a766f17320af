package domain

import (
	"time"

	"github.com/google/uuid"
)

// Identity is a user's account at an identity provider: (Provider, Subject)
// names it, and it signs in one user only.
type Identity struct {
	ID       uuid.UUID
	UserID   uuid.UUID
	Provider string // the provider's configured id
	Subject  string // the provider's stable id of the account (sub)
	// Email is what the provider last asserted ("" when none), and
	// EmailVerified whether it said the address is verified.
	Email         string
	EmailVerified bool
	CreatedAt     time.Time
	LastSignInAt  *time.Time
}

// ProviderFlow is a provider sign-in under way, from the authorize redirect
// to the callback; it is taken (deleted) once. A link token's row is a flow
// that no browser started yet: BrowserHash is nil and LinkUserID set.
type ProviderFlow struct {
	// StateHash is the SHA-256 of Latch's state (or of the link token).
	StateHash []byte
	// BrowserHash is the SHA-256 of the flow cookie's value.
	BrowserHash []byte
	Provider    string
	Nonce       string
	// Verifier is Latch's PKCE verifier for the provider, sealed.
	Verifier   []byte
	RedirectTo string
	// CodeChallenge is the application's PKCE S256 challenge ("" for a
	// link).
	CodeChallenge string
	// LinkUserID is the signed-in user a link flow attaches the identity
	// to; nil for a sign-in.
	LinkUserID *uuid.UUID
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// ProviderCode is the one-time code a provider sign-in returns to the
// application: only its SHA-256 is stored, it is taken once, and it opens a
// session of UserID at AAL with AMR for the holder of the verifier of
// CodeChallenge.
type ProviderCode struct {
	CodeHash      []byte
	UserID        uuid.UUID
	Provider      string
	CodeChallenge string
	RedirectTo    string
	AAL           string
	AMR           []string
	// Link is the identity a link flow's code attaches to UserID (its
	// Provider, Subject, Email, EmailVerified); nil for a sign-in's code.
	Link      *Identity
	CreatedAt time.Time
	ExpiresAt time.Time
}

// IdentitySignIn asks the store to find or make the user a provider's
// identity signs in: the linked user when (Provider, Subject) is known
// (its email and last sign-in updated), else the account with Email when
// LinkDecision allows, else a new user (NewUser) with that identity.
type IdentitySignIn struct {
	Identity Identity
	// NewUser is the user to create when no account has the email; its ID
	// is Identity.UserID.
	NewUser *User
	// Membership, when set, makes the signed-in user a member of
	// Membership.OrgID with Membership.Role unless they already are one, in
	// the same transaction (an organization's SSO connection); its UserID
	// is filled in by the store.
	Membership *Member
	Now        time.Time
}

// The security events of identities.
const (
	EventIdentityLinked   = "identity_linked"
	EventIdentityUnlinked = "identity_unlinked"
)

// AMRFederated is the amr of a session opened by an identity provider's
// sign-in (RFC 8176 defines no federation method; "fed" is Latch's, and
// the provider's id is in the session's security event).
const AMRFederated = "fed"

// LinkDecision is the one rule of automatic linking by email: a provider's
// identity joins an existing account with the same email only when the
// provider asserts the email verified and the account verified it too;
// anything else is CodeIdentityNotLinked (the user signs in and links
// explicitly). existing is the account with the email.
func LinkDecision(existing *User, providerVerified bool) error {
	if providerVerified && existing.EmailVerified {
		return nil
	}
	return Errorf(CodeIdentityNotLinked, "an account with this email exists; sign in to it and link this provider")
}
