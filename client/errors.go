package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latchauth/latch/client/latchapi"
)

// Error is an error response from Latch: every non-2xx answer carries
// the one Error body (latchapi.ErrorBody), and the SDK turns it into an
// *Error.
type Error struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is the stable snake_case error code, such as invalid_credentials.
	Code ErrorCode
	// Message is for humans and may change.
	Message string
	// RequestID matches the X-Request-Id header and the server's logs.
	RequestID string
	// RetryAfter is the wait the server asked for (429 and 503), or zero.
	RetryAfter time.Duration
	// ExpiresAt is when the presented token expired (token_expired only).
	ExpiresAt *time.Time
}

// Error returns a one-line description with the code and request id.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "latch: %d %s", e.StatusCode, e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the Code of e, so that
// errors.Is(err, client.ErrEmailTaken) matches any *Error with that code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return string(t) == string(e.Code)
	case *Error:
		return t.Code == e.Code && (t.StatusCode == 0 || t.StatusCode == e.StatusCode)
	}
	return false
}

// Code is a Latch error code used as a sentinel error: errors.Is(err, c) is
// true when err is or wraps an *Error whose Code is c. The constants below
// are every code of the ErrorCode enum of openapi.yaml, which is add-only
// (a test in the module's root, spec_test.go, keeps them equal to it).
type Code string

// Error returns the code itself.
func (c Code) Error() string { return "latch: " + string(c) }

// The error codes of the API. See openapi.yaml for their meaning.
const (
	ErrInvalidRequest          Code = "invalid_request"
	ErrWeakPassword            Code = "weak_password"
	ErrEmailTaken              Code = "email_taken"
	ErrInvalidCredentials      Code = "invalid_credentials"
	ErrInvalidGrant            Code = "invalid_grant"
	ErrTokenExpired            Code = "token_expired"
	ErrInvalidToken            Code = "invalid_token"
	ErrUnauthorized            Code = "unauthorized"
	ErrInsufficientPermissions Code = "insufficient_permissions"
	ErrNotFound                Code = "not_found"
	ErrMethodNotAllowed        Code = "method_not_allowed"
	ErrPayloadTooLarge         Code = "payload_too_large"
	ErrUnsupportedMediaType    Code = "unsupported_media_type"
	ErrRateLimited             Code = "rate_limited"
	ErrInternal                Code = "internal"
	ErrUnavailable             Code = "unavailable"
	ErrConflict                Code = "conflict"
	ErrLastOwner               Code = "last_owner"
	ErrInvalidClient           Code = "invalid_client"
	ErrUnsupportedGrantType    Code = "unsupported_grant_type"
	ErrInvalidScope            Code = "invalid_scope"
	ErrEmailNotVerified        Code = "email_not_verified"
	// ErrQuotaExceeded: a quota of the deployment is full (organizations a
	// user owns, active API keys, second factors, members and pending
	// invitations of an organization).
	ErrQuotaExceeded Code = "quota_exceeded"
	// ErrInvalidTarget: a token exchange named an audience or resource that
	// the organization has not registered (RFC 8693).
	ErrInvalidTarget Code = "invalid_target"
	// ErrUnsupportedTokenType: revocation refused a kind of token, such as
	// an access token exchanged from an API key (RFC 7009).
	ErrUnsupportedTokenType Code = "unsupported_token_type"
	// ErrMFARequired: the operation needs an aal2 session; verify a second
	// factor (c.MFA().VerifyTOTP, VerifyRecoveryCode or VerifyWebAuthn) and
	// retry.
	ErrMFARequired Code = "mfa_required"
	// ErrMFAVerificationFailed: the second factor was wrong, used or
	// expired.
	ErrMFAVerificationFailed Code = "mfa_verification_failed"
	// ErrMFALocked: too many failed second factors locked the account's
	// TOTP and WebAuthn factors; a recovery code or a password reset
	// unlocks them.
	ErrMFALocked Code = "mfa_locked"
	// ErrOrgMFARequired: the organization requires a second factor of its
	// members, and the caller has none.
	ErrOrgMFARequired Code = "org_mfa_required"
	// ErrUserBanned: an operator banned the account; no session, token or
	// personal API key works until the ban ends or is lifted.
	ErrUserBanned Code = "user_banned"
	// ErrIdentityNotLinked: a provider sign-in's email belongs to an
	// account, but the provider or the account did not verify it; sign in
	// to the account and link the provider.
	ErrIdentityNotLinked Code = "identity_not_linked"
	// ErrLastIdentity: unlinking would leave the user no way to sign in.
	ErrLastIdentity Code = "last_identity"
	// ErrDomainNotVerified: the domain's DNS TXT record is missing or
	// wrong; publish it and verify again.
	ErrDomainNotVerified Code = "domain_not_verified"
	// ErrInvalidProvider: the SSO connection's issuer does not answer
	// OpenID Connect discovery.
	ErrInvalidProvider Code = "invalid_provider"
	// ErrSSONotConfigured: no organization signs in the email's domain
	// with SSO.
	ErrSSONotConfigured Code = "sso_not_configured"
	// ErrSSORequired: the address's organization requires SSO; sign in
	// through /auth/sso.
	ErrSSORequired Code = "sso_required"
)

// ErrSessionEnded is returned when the session has ended: Latch refused to
// refresh it (invalid_grant: it was revoked, expired, or its refresh token
// reused), this Client logged out, or another process sharing the token
// store logged out. The tokens are cleared, and from then on every call
// that needs the session fails at once with an error matching
// ErrSessionEnded, without a request, until SignIn, SignUp or SetTokens
// opens a new session (or another process sharing the store does). Such an
// error also matches ErrNotLoggedIn, as the Client holds no tokens any
// more, and wraps the *Error that Latch answered, when there is one. See
// WithOnSessionEnd to be told once.
var ErrSessionEnded = errors.New("latch: the session has ended; log in again")

// ErrNotLoggedIn is returned, without a request, by calls that need a
// session when the Client holds no tokens.
var ErrNotLoggedIn = errors.New("latch: not logged in")

// SessionEndReason says why a session ended; see WithOnSessionEnd.
type SessionEndReason string

// The reasons a session ends. More may be added.
const (
	// SessionEndLogout: Logout on this Client ended the session
	// (LogoutLocal or LogoutGlobal).
	SessionEndLogout SessionEndReason = "logout"
	// SessionEndInvalidGrant: Latch refused to refresh the session with
	// invalid_grant. It was revoked (a logout or revocation elsewhere, a
	// password change), outlived its idle or absolute lifetime, or its
	// refresh token was presented twice.
	SessionEndInvalidGrant SessionEndReason = "invalid_grant"
	// SessionEndRevokedElsewhere: the tokens disappeared from a token store
	// shared with other processes, because one of them logged out or saw
	// the session end.
	SessionEndRevokedElsewhere SessionEndReason = "revoked_elsewhere"
	// SessionEndExpired: the access token expired and there was no refresh
	// token to renew it (tokens given to SetTokens without one).
	SessionEndExpired SessionEndReason = "expired"
)

// sessionEnd records how a session ended, once per session.
type sessionEnd struct {
	reason SessionEndReason
	err    error // Latch's refusal, if any
	// access and refresh are the ended session's tokens: a token store
	// that still holds them does not hold a new session.
	access, refresh string
	notified        atomic.Bool
}

// sessionEnded is the error of every call refused because of end.
type sessionEnded struct{ end *sessionEnd }

func (e *sessionEnded) Error() string {
	msg := ErrSessionEnded.Error() + " (" + string(e.end.reason) + ")"
	if e.end.err == nil {
		return msg
	}
	return msg + ": " + e.end.err.Error()
}

// Is matches ErrSessionEnded and ErrNotLoggedIn.
func (e *sessionEnded) Is(target error) bool {
	return target == ErrSessionEnded || target == ErrNotLoggedIn
}

func (e *sessionEnded) Unwrap() error { return e.end.err }

// ErrRefreshBackoff is matched (errors.Is) by the error of a call that
// needed a new access token while the Client was backing off after a
// failed refresh or exchange. The error is a *RefreshBackoffError, which
// says when the next attempt may be made.
var ErrRefreshBackoff = errors.New("latch: backing off after a failed token renewal")

// RefreshBackoffError is returned instead of a refresh (or exchange) when an
// earlier one failed and its backoff has not passed: the call needed a new
// access token (the old one had expired, or Latch refused it) and none was
// requested. The first callers of the failed renewal get it too. Callers
// whose access token is still valid are not affected: their requests go
// ahead with it.
//
// A failure answered with Retry-After (429 rate_limited, 503) is not
// retried before that time; any other failure (network, 5xx, timeout)
// backs off exponentially with jitter, as RetryPolicy's BaseDelay and
// MaxDelay say. A successful renewal ends the backoff.
type RefreshBackoffError struct {
	// RetryAt is when the next renewal may be tried, on the Client's clock
	// (see WithClock).
	RetryAt time.Time
	// RetryAfter is RetryAt less the time at which the error was returned.
	RetryAfter time.Duration
	// Err is the failure that started the backoff: an *Error that Latch
	// answered, or a network or timeout error.
	Err error
}

// Error says how long the Client backs off, and why.
func (e *RefreshBackoffError) Error() string {
	return fmt.Sprintf("latch: token renewal backing off for %v after: %v", e.RetryAfter.Round(time.Millisecond), e.Err)
}

// Is matches ErrRefreshBackoff.
func (e *RefreshBackoffError) Is(target error) bool { return target == ErrRefreshBackoff }

// Unwrap returns the failure that started the backoff.
func (e *RefreshBackoffError) Unwrap() error { return e.Err }

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 64 << 10

// errorFrom builds the *Error of a non-2xx response from its status,
// headers and body, at now (for a Retry-After date). A body that is not the
// Error schema still gives an *Error, with the code that the status implies.
func errorFrom(status int, h http.Header, body []byte, now time.Time) *Error {
	e := &Error{StatusCode: status}
	var b latchapi.ErrorBody
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Message, e.RequestID, e.ExpiresAt = b.Error, b.Message, b.RequestId, b.ExpiresAt
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if e.RequestID == "" && h != nil {
		e.RequestID = h.Get("X-Request-Id")
	}
	if h != nil {
		e.RetryAfter, _ = parseRetryAfter(h.Get("Retry-After"), now)
	}
	return e
}

func codeForStatus(status int) ErrorCode {
	switch status {
	case http.StatusBadRequest:
		return ErrorCode(ErrInvalidRequest)
	case http.StatusUnauthorized:
		return ErrorCode(ErrUnauthorized)
	case http.StatusForbidden:
		return ErrorCode(ErrInsufficientPermissions)
	case http.StatusNotFound:
		return ErrorCode(ErrNotFound)
	case http.StatusMethodNotAllowed:
		return ErrorCode(ErrMethodNotAllowed)
	case http.StatusConflict:
		return ErrorCode(ErrConflict)
	case http.StatusRequestEntityTooLarge:
		return ErrorCode(ErrPayloadTooLarge)
	case http.StatusUnsupportedMediaType:
		return ErrorCode(ErrUnsupportedMediaType)
	case http.StatusTooManyRequests:
		return ErrorCode(ErrRateLimited)
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return ErrorCode(ErrUnavailable)
	}
	return ErrorCode(ErrInternal)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > 86400 {
			n = 86400
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// ResponseError returns nil for a 2xx response of the generated client, and
// otherwise the *Error its body describes. Use it with the typed responses
// of [Client.API]:
//
//	res, err := c.API().GetMeWithResponse(ctx)
//	if err == nil {
//		err = client.ResponseError(res)
//	}
func ResponseError(res interface {
	StatusCode() int
	GetBody() []byte
}) error {
	status := res.StatusCode()
	if status >= 200 && status < 300 {
		return nil
	}
	// Without the headers there is no Retry-After to read: no clock needed.
	return errorFrom(status, nil, res.GetBody(), time.Time{})
}
