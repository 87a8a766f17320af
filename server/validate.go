package server

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/mail"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/latchauth/latch/internal/domain"
)

// errNoCredentials marks a security scheme whose credentials are absent, as
// opposed to present and wrong.
var errNoCredentials = domain.Errorf(domain.CodeUnauthorized, "authentication required")

// FormatValidators are the string formats that Latch validates beyond
// kin-openapi's defaults; tests validate responses with them too.
func FormatValidators() openapi3.SchemaValidationOption {
	return openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
		"email": openapi3.NewCallbackValidator(func(s string) error {
			a, err := mail.ParseAddress(s)
			if err != nil || a.Address != s || a.Name != "" {
				return errors.New("not an email address")
			}
			return nil
		}),
		"uuid": openapi3.NewRegexpFormatValidator(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`),
	})
}

// validationOptions are the options of request validation: security is
// checked through authenticate.
func (h *handler) validationOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc:      h.authenticate,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{FormatValidators()},
	}
}

// requiredScope is the scope an operation names in x-latch-scope.
func requiredScope(op *openapi3.Operation) string {
	if op == nil {
		return ""
	}
	s, _ := op.Extensions["x-latch-scope"].(string)
	return s
}

// authenticate checks one security scheme of one requirement. It records
// the principal (or the most telling failure) in the request's state.
func (h *handler) authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	st := stateFrom(r.Context())
	var p *domain.Principal
	var err error
	switch in.SecuritySchemeName {
	case "bearerAuth":
		authz := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			err = errNoCredentials
			break
		}
		p, err = h.svc.AuthenticateBearer(ctx, strings.TrimSpace(tok))
	case "apiKeyAuth":
		key := r.Header.Get("X-API-Key")
		if key == "" {
			err = errNoCredentials
			break
		}
		p, err = h.keys.AuthenticateAPIKey(ctx, key)
	case "basicAuth":
		_, secret, ok, berr := basicCredentials(r)
		if berr != nil {
			err = berr
			break
		}
		if !ok || secret == "" {
			err = errNoCredentials
			break
		}
		p, err = h.keys.AuthenticateAPIKey(ctx, secret)
		if domain.IsCode(err, domain.CodeInvalidToken) {
			err = &domain.Error{Code: domain.CodeInvalidClient, Message: "client authentication failed", Err: err}
		}
	default:
		err = errNoCredentials
	}
	need := requiredScope(in.RequestValidationInput.Route.Operation)
	if err == nil && p.Kind != domain.PrincipalSession {
		switch {
		case need == "" && p.Exchanged:
			// A bearer-only operation declares no 403: the token is a bearer
			// token, but not a session's, so it is an invalid token here.
			err = domain.Errorf(domain.CodeInvalidToken, "this operation needs a user session's access token, not one exchanged from an API key")
		case need == "":
			err = domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs a user session, not an API key")
		case !p.HasScope(need):
			err = domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs the scope %q", need)
		}
	}
	if err == nil && p.Impersonated() && !impersonationAllows(in.RequestValidationInput.Route.Operation, r) {
		// The one read-only gate of impersonation tokens, before the
		// assurance gate (which a user without factors would pass).
		err = domain.Errorf(domain.CodeInsufficientPermissions, "an impersonation token is read-only: it cannot call operations that need aal2 or change anything")
	}
	if err == nil && domain.IsAdminScope(need) {
		// The one operator gate: every operation that names an admin scope
		// passes here, and no handler checks it again.
		err = h.keys.RequireOperator(ctx, p)
	}
	if err == nil && h.mfa != nil && requiredAssurance(in.RequestValidationInput.Route.Operation, r) == domain.AAL2 {
		// The one assurance gate: every operation that declares aal2 in the
		// spec passes here, and no handler checks it again.
		err = h.mfa.RequireAAL2(ctx, p)
	}
	if err != nil {
		if st.authErr == nil || rank(err) > rank(st.authErr) {
			st.authErr = err
		}
		return err
	}
	st.principal, st.authErr = p, nil
	return nil
}

// rank orders authentication failures by how much they tell the caller:
// missing credentials tell least.
func rank(err error) int {
	switch domain.ErrorCode(err) {
	case domain.CodeUnauthorized:
		return 0
	case domain.CodeInsufficientPermissions, domain.CodeMFARequired:
		return 3
	case domain.CodeUnavailable, domain.CodeInternal:
		return 4
	default:
		return 2
	}
}

// validationError turns the validator's errors into the Error body.
// Only requests that matched an operation are validated (see routeTable).
func (h *handler) validationError(ctx context.Context, err error, w http.ResponseWriter, r *http.Request) {
	var mbe *http.MaxBytesError
	var sre *openapi3filter.SecurityRequirementsError
	var re *openapi3filter.RequestError
	switch {
	case errors.As(err, &mbe):
		writeError(h.log, w, r, domain.Errorf(domain.CodePayloadTooLarge, "the body is over %d bytes", mbe.Limit))
	case errors.As(err, &sre):
		if st := stateFrom(r.Context()); st.authErr != nil {
			writeError(h.log, w, r, st.authErr)
			return
		}
		writeError(h.log, w, r, errNoCredentials)
	case errors.As(err, &re):
		if strings.HasPrefix(re.Reason, "unsupported content type") || strings.Contains(re.Reason, "header Content-Type has unexpected value") {
			writeError(h.log, w, r, domain.Errorf(domain.CodeUnsupportedMediaType, "the content type %q is not accepted here", mediaType(r)))
			return
		}
		if isUnknownGrantType(r, re) {
			writeError(h.log, w, r, domain.Errorf(domain.CodeUnsupportedGrantType, "grant_type must be client_credentials or urn:ietf:params:oauth:grant-type:token-exchange"))
			return
		}
		writeError(h.log, w, r, domain.Errorf(domain.CodeInvalidRequest, "%s", requestErrorMessage(re)))
	default:
		var me openapi3.MultiError
		if errors.As(err, &me) {
			writeError(h.log, w, r, domain.Errorf(domain.CodeInvalidRequest, "the request is invalid"))
			return
		}
		writeError(h.log, w, r, err)
	}
}

func mediaType(r *http.Request) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if len(mt) > 100 {
		mt = mt[:100]
	}
	return mt
}

// requestErrorMessage describes a validation failure without echoing the
// submitted values (which may be passwords).
func requestErrorMessage(re *openapi3filter.RequestError) string {
	var se *openapi3.SchemaError
	where := "the request body"
	if re.Parameter != nil {
		where = "the " + re.Parameter.In + " parameter " + re.Parameter.Name
	}
	if errors.As(re.Err, &se) {
		field := strings.Join(se.JSONPointer(), ".")
		if field != "" && re.Parameter == nil {
			where = "field " + field
		}
		switch se.SchemaField {
		case "required":
			return where + ": " + se.Reason
		case "additionalProperties":
			return where + ": " + se.Reason
		}
		return where + " is invalid: " + se.Reason
	}
	if re.Reason != "" {
		return where + ": " + re.Reason
	}
	return where + " is invalid"
}

// isUnknownGrantType reports whether re refuses the grant_type of a token
// request for not being in the spec's enum: RFC 6749 5.2 names that
// unsupported_grant_type, not invalid_request.
func isUnknownGrantType(r *http.Request, re *openapi3filter.RequestError) bool {
	var se *openapi3.SchemaError
	if r.URL.Path != "/auth/token" || re.Parameter != nil || !errors.As(re.Err, &se) || se.SchemaField != "enum" {
		return false
	}
	p := se.JSONPointer()
	return len(p) == 1 && p[0] == "grant_type"
}
