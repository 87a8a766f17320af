// Package claims holds the one type of the claims of a Latch access token,
// shared by the server (internal/token signs and verifies it), the Go SDK
// (client/verify reads it) and the models generated from openapi.yaml (whose
// AccessTokenClaims schema names it with x-go-type). It imports nothing but
// the JWT library and the standard library, so that both the server and the
// SDK may depend on it.
package claims

import (
	"encoding/json"

	"github.com/golang-jwt/jwt/v5"
)

// AccessTokenClaims are the claims of a Latch access token (a JWT with typ
// at+jwt, RFC 9068). The AccessTokenClaims schema of openapi.yaml defines
// them; claims_test.go keeps the fields equal to its properties. The fields
// are in the order of the models oapi-codegen generated before this type
// replaced them (by JSON name), so a signed token's payload is unchanged.
type AccessTokenClaims struct {
	// AAL is the session's assurance level (aal1 or aal2); empty on exchanged tokens.
	AAL string `json:"aal,omitempty"`

	// Act is RFC 8693's actor: on an impersonation token, the operator
	// acting as the subject. Nil on every other token.
	Act *Actor `json:"act,omitempty"`

	// AMR is the session's authentication methods (RFC 8176): pwd, otp,
	// hwk, swk, mfa; empty on exchanged tokens.
	AMR []string `json:"amr,omitempty"`

	// AppMetadata is a session token's copy of its user's app_metadata (a
	// JSON object that operators set), as it was when the token was
	// signed; empty when the user has none and on exchanged tokens.
	AppMetadata json.RawMessage `json:"app_metadata,omitempty"`

	// Audience is aud: LATCH_AUDIENCE for a session, the requested audience
	// for an exchanged token.
	Audience jwt.ClaimStrings `json:"aud,omitempty"`

	// AuthTime is when the subject last authenticated (the session's login,
	// or the exchange).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`

	// ClientID is the OAuth client (RFC 9068) the token was issued to: the
	// API key id, or LATCH_CLIENT_ID for a session.
	ClientID string `json:"client_id,omitempty"`

	// ExpiresAt is exp.
	ExpiresAt *jwt.NumericDate `json:"exp,omitempty"`

	// Ext is the organization's own id of a delegated session's user.
	Ext string `json:"ext,omitempty"`

	// IssuedAt is iat.
	IssuedAt *jwt.NumericDate `json:"iat,omitempty"`

	// Issuer is iss, LATCH_ISSUER.
	Issuer string `json:"iss,omitempty"`

	// ID is jti, a unique id of the token.
	ID string `json:"jti,omitempty"`

	// KeyID is the API key an exchanged token came from.
	KeyID string `json:"key_id,omitempty"`

	// NotBefore is nbf: Latch does not set it; it is checked when present.
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`

	// OrgID is the organization of an organization key or a delegated session.
	OrgID string `json:"org_id,omitempty"`

	// Scope is the space-separated scopes of a token exchanged from an API key.
	Scope string `json:"scope,omitempty"`

	// SID is the session of a user's session token.
	SID string `json:"sid,omitempty"`

	// Subject is sub: the user id; for an organization key's exchanged token,
	// the organization id.
	Subject string `json:"sub,omitempty"`
}

// Actor is the act claim (RFC 8693 section 4.1): who acts as the subject.
type Actor struct {
	// Subject is the acting operator's user id.
	Subject string `json:"sub"`
}

var _ jwt.Claims = (*AccessTokenClaims)(nil)

// GetExpirationTime returns exp.
func (c *AccessTokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }

// GetIssuedAt returns iat.
func (c *AccessTokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt, nil }

// GetNotBefore returns nbf.
func (c *AccessTokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore, nil }

// GetIssuer returns iss.
func (c *AccessTokenClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject returns sub.
func (c *AccessTokenClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience returns aud.
func (c *AccessTokenClaims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }
