package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
)

// statuses maps each error code to its HTTP status. It is the only place
// that knows the mapping; its keys are exactly the spec's ErrorCode enum
// (codes_internal_test.go).
var statuses = map[domain.Code]int{
	domain.CodeInvalidRequest:          http.StatusBadRequest,
	domain.CodeWeakPassword:            http.StatusBadRequest,
	domain.CodeEmailTaken:              http.StatusConflict,
	domain.CodeInvalidCredentials:      http.StatusUnauthorized,
	domain.CodeInvalidGrant:            http.StatusUnauthorized,
	domain.CodeTokenExpired:            http.StatusUnauthorized,
	domain.CodeInvalidToken:            http.StatusUnauthorized,
	domain.CodeUnauthorized:            http.StatusUnauthorized,
	domain.CodeInsufficientPermissions: http.StatusForbidden,
	domain.CodeNotFound:                http.StatusNotFound,
	domain.CodeMethodNotAllowed:        http.StatusMethodNotAllowed,
	domain.CodePayloadTooLarge:         http.StatusRequestEntityTooLarge,
	domain.CodeUnsupportedMediaType:    http.StatusUnsupportedMediaType,
	domain.CodeRateLimited:             http.StatusTooManyRequests,
	domain.CodeInternal:                http.StatusInternalServerError,
	domain.CodeUnavailable:             http.StatusServiceUnavailable,
	domain.CodeConflict:                http.StatusConflict,
	domain.CodeLastOwner:               http.StatusConflict,
	domain.CodeInvalidClient:           http.StatusUnauthorized,
	domain.CodeUnsupportedGrantType:    http.StatusBadRequest,
	domain.CodeInvalidScope:            http.StatusBadRequest,
	domain.CodeEmailNotVerified:        http.StatusForbidden,
	domain.CodeQuotaExceeded:           http.StatusConflict,
	domain.CodeInvalidTarget:           http.StatusBadRequest,
	domain.CodeUnsupportedTokenType:    http.StatusBadRequest,
	domain.CodeMFARequired:             http.StatusForbidden,
	domain.CodeMFAVerificationFailed:   http.StatusBadRequest,
	domain.CodeMFALocked:               http.StatusForbidden,
	domain.CodeUserBanned:              http.StatusForbidden,
	domain.CodeOrgMFARequired:          http.StatusForbidden,
	domain.CodeIdentityNotLinked:       http.StatusConflict,
	domain.CodeLastIdentity:            http.StatusConflict,
	domain.CodeDomainNotVerified:       http.StatusUnprocessableEntity,
	domain.CodeInvalidProvider:         http.StatusUnprocessableEntity,
	domain.CodeSSONotConfigured:        http.StatusNotFound,
	domain.CodeSSORequired:             http.StatusForbidden,
}

// statusError overrides the status of a code for one operation, for the few
// places where the contract says so (an invalid reset token is a 400).
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func withStatus(status int, err error) error {
	if err == nil {
		return nil
	}
	return &statusError{status: status, err: err}
}

// writeError writes err as the one Error body. An error without a code is
// logged with the request id and answered with a generic 500.
func writeError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away: nobody reads the answer, and it is no
		// failure of ours. The transaction it interrupted rolled back.
		st := stateFrom(r.Context())
		log.DebugContext(r.Context(), "request cancelled by the client", "request_id", st.id, "method", r.Method, "path", r.URL.Path)
		err = &domain.Error{Code: domain.CodeUnavailable, Message: "the request was cancelled", Err: err}
	}
	code := domain.ErrorCode(err)
	status, ok := statuses[code]
	if !ok {
		code, status = domain.CodeInternal, http.StatusInternalServerError
	}
	var se *statusError
	if errors.As(err, &se) {
		status = se.status
	}
	st := stateFrom(r.Context())
	body := api.ErrorBody{Error: api.ErrorCode(code), Message: domain.ErrorMessage(err), RequestId: st.id}
	var de *domain.Error
	if errors.As(err, &de) {
		if code == domain.CodeTokenExpired && !de.ExpiresAt.IsZero() {
			t := de.ExpiresAt
			body.ExpiresAt = &t
		}
		if code == domain.CodeMFARequired && de.MaxAge > 0 {
			// RFC 9470's step-up challenge: a second factor, verified within
			// max_age seconds.
			secs := int(de.MaxAge / time.Second)
			body.MaxAge = &secs
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch", error="insufficient_user_authentication", error_description="a second factor is required", acr_values="aal2", max_age=`+strconv.Itoa(secs))
		}
		if de.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((de.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	switch code {
	case domain.CodeInvalidClient, domain.CodeUnsupportedGrantType, domain.CodeInvalidScope, domain.CodeInvalidGrant,
		domain.CodeInvalidTarget, domain.CodeUnsupportedTokenType:
		body.ErrorDescription = &body.Message
	}
	if oauthPaths[r.URL.Path] {
		body.ErrorDescription = &body.Message
	}
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	if status == http.StatusUnauthorized {
		switch code {
		case domain.CodeInvalidClient:
			// RFC 6749 5.2: the scheme the client authenticates with.
			w.Header().Set("WWW-Authenticate", `Basic realm="latch"`)
		case domain.CodeInvalidToken, domain.CodeTokenExpired:
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch", error="invalid_token"`)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch"`)
		}
	}
	if status >= 500 && !(code == domain.CodeUnavailable && errors.Is(err, context.Canceled)) {
		log.ErrorContext(r.Context(), "request failed", "request_id", st.id, "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
