// Package domain holds Latch's types, the storage interfaces that the store
// implements and the error type whose codes the HTTP layer maps to statuses.
// It imports nothing of the project.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable snake_case error code. Codes are API: they are listed in
// openapi.yaml and only ever added, never renamed.
type Code string

// The error codes: exactly the ErrorCode enum of openapi.yaml (spec_test.go,
// in the module's root, fails on a code missing here or extra). Only the
// HTTP layer knows their statuses.
const (
	CodeInvalidRequest          Code = "invalid_request"
	CodeWeakPassword            Code = "weak_password"
	CodeEmailTaken              Code = "email_taken"
	CodeInvalidCredentials      Code = "invalid_credentials"
	CodeInvalidGrant            Code = "invalid_grant"
	CodeTokenExpired            Code = "token_expired"
	CodeInvalidToken            Code = "invalid_token"
	CodeUnauthorized            Code = "unauthorized"
	CodeInsufficientPermissions Code = "insufficient_permissions"
	CodeNotFound                Code = "not_found"
	CodeMethodNotAllowed        Code = "method_not_allowed"
	CodePayloadTooLarge         Code = "payload_too_large"
	CodeUnsupportedMediaType    Code = "unsupported_media_type"
	CodeRateLimited             Code = "rate_limited"
	CodeInternal                Code = "internal"
	CodeUnavailable             Code = "unavailable"
	CodeConflict                Code = "conflict"
	CodeLastOwner               Code = "last_owner"
	CodeInvalidClient           Code = "invalid_client"
	CodeUnsupportedGrantType    Code = "unsupported_grant_type"
	CodeInvalidScope            Code = "invalid_scope"
	CodeEmailNotVerified        Code = "email_not_verified"
	CodeQuotaExceeded           Code = "quota_exceeded"
	// CodeInvalidTarget is RFC 8693's refusal of an audience or resource.
	CodeInvalidTarget Code = "invalid_target"
	// CodeUnsupportedTokenType is RFC 7009's refusal to revoke a kind of
	// token.
	CodeUnsupportedTokenType Code = "unsupported_token_type"
	// CodeMFARequired refuses a sensitive operation to an aal1 session of a
	// user who has a second factor.
	CodeMFARequired Code = "mfa_required"
	// CodeMFAVerificationFailed is a wrong, used or expired second factor.
	CodeMFAVerificationFailed Code = "mfa_verification_failed"
	// CodeMFALocked refuses a second factor (other than a recovery code)
	// after too many consecutive failures, until a recovery step.
	CodeMFALocked Code = "mfa_locked"
	// CodeOrgMFARequired refuses a member without a verified second factor
	// what an organization that requires one reserves to members who have.
	CodeOrgMFARequired Code = "org_mfa_required"
	// CodeUserBanned refuses a banned user a session, a refreshed token, a
	// second-factor step or the use of their personal API keys.
	CodeUserBanned Code = "user_banned"
	// CodeIdentityNotLinked refuses a provider sign-in whose email belongs
	// to an account when the provider or the account did not verify it:
	// the user signs in to the account and links the provider.
	CodeIdentityNotLinked Code = "identity_not_linked"
	// CodeLastIdentity refuses to unlink a user's last way to sign in.
	CodeLastIdentity Code = "last_identity"
	// CodeDomainNotVerified refuses to verify an organization's domain
	// whose DNS TXT record is missing or wrong.
	CodeDomainNotVerified Code = "domain_not_verified"
	// CodeInvalidProvider refuses an SSO connection whose issuer does not
	// answer OpenID Connect discovery.
	CodeInvalidProvider Code = "invalid_provider"
	// CodeSSONotConfigured answers /auth/sso for an email whose domain no
	// organization routes to an SSO connection.
	CodeSSONotConfigured Code = "sso_not_configured"
	// CodeSSORequired refuses password login, signup, email codes and
	// password recovery for an address whose organization requires SSO.
	CodeSSORequired Code = "sso_required"
)

// Error is an error with a stable code and a message that is safe to show to
// the caller. Anything that is not an *Error is reported as CodeInternal with
// a generic message.
type Error struct {
	Code    Code
	Message string
	// RetryAfter is set on CodeRateLimited (and may be on CodeUnavailable).
	RetryAfter time.Duration
	// MaxAge is set on CodeMFARequired: how recent the session's second
	// factor must be (RFC 9470 max_age).
	MaxAge time.Duration
	// ExpiresAt is set on CodeTokenExpired: when the token expired.
	ExpiresAt time.Time
	// Err is the cause, for logs only; it is never shown to the caller.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and CodeInternal for any other error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err: the message of its
// *Error, or a generic text for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries the code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }
