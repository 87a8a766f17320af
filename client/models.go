package client

import "github.com/latchauth/latch/client/latchapi"

// The models that the Client's methods take and return, generated from
// openapi.yaml into package latchapi. Every other model, and the generated
// operations that use them, are in latchapi, reached through Client.API.
type (
	// TokenResponse is a new session: tokens, user and assurance level.
	TokenResponse = latchapi.TokenResponse
	// User is an account of Latch.
	User = latchapi.User
	// Session is one live session of a user.
	Session = latchapi.Session
	// SessionId names a session.
	SessionId = latchapi.SessionId
	// APIKey is an API key without its secret.
	APIKey = latchapi.APIKey
	// APIKeyWithSecret is a new API key; its Key is shown this once.
	APIKeyWithSecret = latchapi.APIKeyWithSecret
	// KeyId names an API key.
	KeyId = latchapi.KeyId
	// CreateAPIKeyRequest is the label, scopes and lifetime of a new key.
	CreateAPIKeyRequest = latchapi.CreateAPIKeyRequest
	// Scope is one permission of an API key, such as "billing:read".
	Scope = latchapi.Scope
	// Organization is an organization of users and API keys.
	Organization = latchapi.Organization
	// OrgId names an organization.
	OrgId = latchapi.OrgId
	// DelegatedSessionRequest names the organization's user of a delegated
	// session.
	DelegatedSessionRequest = latchapi.DelegatedSessionRequest
	// Email is an email address, as DelegatedSessionRequest takes it.
	Email = latchapi.Email
	// ExchangeRequest is what an API key is exchanged for: scopes,
	// audience and lifetime, each Latch's default when nil.
	ExchangeRequest = latchapi.ExchangeRequest
	// ExchangeResponse is an access token exchanged from an API key.
	ExchangeResponse = latchapi.ExchangeResponse
	// MFAFactor is a second factor of a user.
	MFAFactor = latchapi.MFAFactor
	// MFAFactorList is a user's second factors and the session's AAL.
	MFAFactorList = latchapi.MFAFactorList
	// MFAFactorType is the kind of a second factor.
	MFAFactorType = latchapi.MFAFactorType
	// MFAEnrollment is a confirmed TOTP factor and the session's new tokens.
	MFAEnrollment = latchapi.MFAEnrollment
	// TOTPEnrollment is a TOTP enrolment to confirm: secret and QR code.
	TOTPEnrollment = latchapi.TOTPEnrollment
	// FactorId names a second factor.
	FactorId = latchapi.FactorId
	// AAL is the authenticator assurance level of a session.
	AAL = latchapi.AAL
	// ErrorCode is the code of an *Error; see the Err constants.
	ErrorCode = latchapi.ErrorCode
	// LogoutScope says which sessions Logout ends.
	LogoutScope = latchapi.LogoutParamsScope
)

// The assurance levels of a session.
const (
	// Aal1: one factor (a password).
	Aal1 = latchapi.Aal1
	// Aal2: two factors (a password and a second factor), or a
	// user-verified passkey.
	Aal2 = latchapi.Aal2
)

// The kinds of second factor.
const (
	MFAFactorTypeTotp     = latchapi.MFAFactorTypeTotp
	MFAFactorTypeWebauthn = latchapi.MFAFactorTypeWebauthn
)

// The scopes of Logout.
const (
	// LogoutLocal ends this session.
	LogoutLocal = latchapi.Local
	// LogoutOthers ends every other session of the user.
	LogoutOthers = latchapi.Others
	// LogoutGlobal ends every session of the user.
	LogoutGlobal = latchapi.Global
)
