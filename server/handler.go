package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// Config configures the HTTP layer.
type Config struct {
	Version      string
	MaxBodyBytes int64
	CORSOrigins  []string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed: the
	// header is read only when the TCP peer is in one of these prefixes,
	// and the client is the first address from the right that is not (see
	// clientIP). Empty: the client is always the TCP peer.
	TrustedProxies []netip.Prefix
	// PublicURL is where clients reach Latch (LATCH_PUBLIC_URL): the base
	// of the endpoints in the discovery documents.
	PublicURL string
	// Observe, when set, is told of every answered request (metrics); a
	// request whose client went away is StatusClientClosedRequest.
	Observe func(method, path string, status int, d time.Duration)
}

// Services are the services the HTTP layer calls: the core (sign-up,
// login, sessions, authentication, signing keys, health) and one per
// feature. Every one but MFA, OTP, Federation and SSO is required.
type Services struct {
	Core    *service.Service
	APIKeys *service.APIKeys
	// OAuth is introspection, revocation and token exchange.
	OAuth    *service.OAuth
	Orgs     *service.Orgs
	Recovery *service.Recovery
	Events   *service.Events
	// UserImport is the operators' user import and export.
	UserImport *service.UserImport
	// Impersonation is the operators' impersonation of users.
	Impersonation *service.Impersonation
	// Webhooks is the webhook endpoints and their delivery log.
	Webhooks *service.Webhooks
	// MFA is multi-factor authentication; nil turns it off.
	MFA *service.MFA
	// Users is the operators' management of users and a user's own
	// metadata.
	Users *service.Users
	// OTP is email sign-in with links and codes; nil turns it off (its
	// operations answer 404).
	OTP *service.OTP
	// Federation is sign-in with other identity providers; nil turns it
	// off.
	Federation *service.Federation
	// SSO is organizations' domains and SSO connections; nil turns it off
	// (its operations answer 404).
	SSO *service.SSO
}

type handler struct {
	cfg Config
	svc *service.Service
	// keys authenticates API keys.
	keys *service.APIKeys
	// mfa holds sessions to the assurance operations declare; nil (MFA
	// off) holds nobody to aal2.
	mfa *service.MFA
	log *slog.Logger
	ids *requestIDs
}

// LoadSpec parses the OpenAPI document.
func LoadSpec(yamlDoc []byte) (*openapi3.T, error) {
	l := openapi3.NewLoader()
	l.IsExternalRefsAllowed = false
	doc, err := l.LoadFromData(yamlDoc)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return doc, nil
}

// NewHandler returns the whole HTTP API: base middleware (request id, body
// cap, recovery, access log), CORS, request validation and security against
// the spec, then the strict handler over the services. Returns an error
// when a required service is missing or the spec does not load.
func NewHandler(cfg Config, svcs Services, log *slog.Logger, specYAML []byte) (http.Handler, error) {
	if svcs.Core == nil || svcs.APIKeys == nil || svcs.OAuth == nil || svcs.Orgs == nil || svcs.Recovery == nil || svcs.Events == nil ||
		svcs.UserImport == nil || svcs.Impersonation == nil || svcs.Users == nil || svcs.Webhooks == nil {
		return nil, errors.New("server: a required service is missing (every one of Services but MFA, OTP, Federation and SSO is)")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	doc, err := LoadSpec(specYAML)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	// The JSON form is decoded once here; requests only encode it.
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var specJSON map[string]any
	if err := json.Unmarshal(raw, &specJSON); err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg, svc: svcs.Core, keys: svcs.APIKeys, mfa: svcs.MFA, log: log, ids: newRequestIDs()}
	srv := &Server{svc: svcs.Core, log: log, version: cfg.Version, spec: Spec{YAML: specYAML, JSON: specJSON},
		publicURL: cfg.PublicURL, mfa: svcs.MFA,
		apiKeys: svcs.APIKeys, oauth: svcs.OAuth, orgs: svcs.Orgs, recovery: svcs.Recovery, events: svcs.Events,
		userImport: svcs.UserImport, impersonation: svcs.Impersonation, users: svcs.Users, webhooks: svcs.Webhooks, otp: svcs.OTP,
		federation: svcs.Federation, sso: svcs.SSO}
	strict := api.NewStrictHandlerWithOptions(srv, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(log, w, r, &domain.Error{Code: domain.CodeInvalidRequest, Message: "the request could not be decoded", Err: err})
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(log, w, r, err)
		},
	})
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(log, w, r, domain.Errorf(domain.CodeNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(log, w, r, domain.Errorf(domain.CodeMethodNotAllowed, "method %s is not allowed here", r.Method))
	})
	api.HandlerFromMux(strict, r)
	routes, err := newRouteTable(doc, r)
	if err != nil {
		return nil, err
	}
	return h.base(h.cors(routes.serve(h.validationOptions(), h.validationError))), nil
}

// StatusClientClosedRequest is the status Observe gets for a request whose
// client went away before the answer (nginx's 499): nothing was delivered,
// and it is no failure of the server's.
const StatusClientClosedRequest = 499
