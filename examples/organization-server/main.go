// Command organization-server is an organization's own server. Its users
// log in with the organization's identity provider (Auth0, Okta, ...; here:
// any JWT that verifies against a configured JWKS URL), and it opens,
// lists, renews and deletes Latch sessions for them with the organization's
// API key:
//
//	POST   /session            open a Latch session for the caller (201, Latch's TokenResponse)
//	GET    /session            the caller's live Latch sessions
//	POST   /session/{id}/renew extend one of them
//	DELETE /session/{id}       end one of them
//
// Every request carries "Authorization: Bearer <identity provider JWT>"; its
// sub becomes the Latch external_id, its email (if any) the session's email.
// A session that is not the caller's answers 404, like one that does not
// exist.
//
// Configuration (environment; flags override all but the key):
//
//	LATCH_API_KEY  the organization API key with sessions:write and sessions:read (required)
//	LATCH_ORG_ID   -org-id        the organization's id (required)
//	IDP_JWKS_URL   -idp-jwks-url  the identity provider's JWKS (required)
//	IDP_ISSUER     -idp-issuer    the iss its tokens carry (required)
//	IDP_AUDIENCE   -idp-audience  the aud they must carry (optional)
//	LATCH_URL      -latch-url     Latch's base URL (http://127.0.0.1:8080)
//	ADDR           -addr          listen address (127.0.0.1:8082)
//	CORS_ORIGINS   -cors-origins  browser origins allowed to call, comma-separated
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, hooks{}); err != nil {
		fmt.Fprintln(os.Stderr, "organization-server:", err)
		os.Exit(1)
	}
}

type config struct {
	Addr        string
	LatchURL    string
	APIKey      string
	OrgID       uuid.UUID
	IdPJWKSURL  string
	IdPIssuer   string
	IdPAudience string
	CORSOrigins []string
}

// parseConfig reads the environment, then flags. Returns an error naming
// everything that is missing, before anything listens.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	c := config{Addr: "127.0.0.1:8082", LatchURL: "http://127.0.0.1:8080"}
	env := func(p *string, name string) {
		if v := getenv(name); v != "" {
			*p = v
		}
	}
	var org, origins string
	env(&c.Addr, "ADDR")
	env(&c.LatchURL, "LATCH_URL")
	env(&org, "LATCH_ORG_ID")
	env(&c.IdPJWKSURL, "IDP_JWKS_URL")
	env(&c.IdPIssuer, "IDP_ISSUER")
	env(&c.IdPAudience, "IDP_AUDIENCE")
	env(&origins, "CORS_ORIGINS")
	fs := flag.NewFlagSet("organization-server", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (ADDR)")
	fs.StringVar(&c.LatchURL, "latch-url", c.LatchURL, "Latch base URL (LATCH_URL)")
	fs.StringVar(&org, "org-id", org, "organization id (LATCH_ORG_ID)")
	fs.StringVar(&c.IdPJWKSURL, "idp-jwks-url", c.IdPJWKSURL, "identity provider JWKS URL (IDP_JWKS_URL)")
	fs.StringVar(&c.IdPIssuer, "idp-issuer", c.IdPIssuer, "identity provider issuer (IDP_ISSUER)")
	fs.StringVar(&c.IdPAudience, "idp-audience", c.IdPAudience, "identity provider audience (IDP_AUDIENCE)")
	fs.StringVar(&origins, "cors-origins", origins, "allowed CORS origins, comma-separated (CORS_ORIGINS)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.CORSOrigins = strings.FieldsFunc(origins, func(r rune) bool { return r == ',' || r == ' ' })
	c.APIKey = strings.TrimSpace(getenv("LATCH_API_KEY"))
	var errs []error
	if c.APIKey == "" {
		errs = append(errs, errors.New("LATCH_API_KEY is not set: set it to an organization API key with sessions:write and sessions:read"))
	}
	if id, err := uuid.Parse(org); err != nil {
		errs = append(errs, fmt.Errorf("LATCH_ORG_ID %q is not an organization id", org))
	} else {
		c.OrgID = id
	}
	if c.IdPJWKSURL == "" {
		errs = append(errs, errors.New("IDP_JWKS_URL is not set"))
	}
	if c.IdPIssuer == "" {
		errs = append(errs, errors.New("IDP_ISSUER is not set"))
	}
	return c, errors.Join(errs...)
}

// hooks let tests watch and steer run.
type hooks struct {
	ready   func(addr string)
	options []client.Option
}

// run serves until ctx ends. Returns an error for a bad configuration
// before listening, and for a failure to listen or serve.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, h hooks) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	latch, err := client.New(cfg.LatchURL, append([]client.Option{client.WithAPIKey(cfg.APIKey)}, h.options...)...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idp, err := newIdP(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           cors(cfg.CORSOrigins, (&server{latch: latch, org: cfg.OrgID, idp: idp}).routes()),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	if h.ready != nil {
		h.ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}

// idp verifies the identity provider's tokens.
type idp struct {
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
}

// idpClaims are what the server uses of an identity provider token.
type idpClaims struct {
	jwt.RegisteredClaims
	Email string `json:"email,omitempty"`
}

func newIdP(ctx context.Context, cfg config) (*idp, error) {
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.IdPJWKSURL}, keyfunc.Override{
		Client:      &http.Client{Timeout: 10 * time.Second},
		HTTPTimeout: 10 * time.Second,
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(context.Context, error) {}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("IDP_JWKS_URL: %w", err)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256", "ES256", "EdDSA"}),
		jwt.WithIssuer(cfg.IdPIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30 * time.Second),
	}
	if cfg.IdPAudience != "" {
		opts = append(opts, jwt.WithAudience(cfg.IdPAudience))
	}
	return &idp{kf: kf, parser: jwt.NewParser(opts...)}, nil
}

// user returns the verified identity of the request's bearer token.
func (p *idp) user(r *http.Request) (*idpClaims, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, errors.New("no bearer token")
	}
	c := &idpClaims{}
	if _, err := p.parser.ParseWithClaims(strings.TrimSpace(tok), c, p.kf.KeyfuncCtx(r.Context())); err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("no sub")
	}
	return c, nil
}

type server struct {
	latch *client.Client
	org   uuid.UUID
	idp   *idp
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /session", s.authed(s.open))
	mux.HandleFunc("GET /session", s.authed(s.list))
	mux.HandleFunc("POST /session/{id}/renew", s.authed(s.renew))
	mux.HandleFunc("DELETE /session/{id}", s.authed(s.revoke))
	return mux
}

type handler func(w http.ResponseWriter, r *http.Request, u *idpClaims)

// authed answers 401 unless the request carries a valid identity token.
func (s *server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.idp.user(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="organization", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized", Message: "a valid identity token is required"})
			return
		}
		h(w, r, u)
	}
}

// open opens a Latch session for the caller. The optional JSON body
// {"metadata": {...}} is stored with the identity.
func (s *server) open(w http.ResponseWriter, r *http.Request, u *idpClaims) {
	var body struct {
		Metadata map[string]any `json:"metadata"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Message: "the body is not JSON"})
			return
		}
	}
	req := client.DelegatedSessionRequest{ExternalId: u.Subject}
	if u.Email != "" {
		e := client.Email(u.Email)
		req.Email = &e
	}
	if body.Metadata != nil {
		req.Metadata = &body.Metadata
	}
	tr, err := s.latch.CreateDelegatedSession(r.Context(), req)
	if err != nil {
		writeUpstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, tr)
}

func (s *server) list(w http.ResponseWriter, r *http.Request, u *idpClaims) {
	sessions, err := s.latch.OrgSessions(r.Context(), s.org, u.Subject)
	if err != nil {
		writeUpstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, latchapi.SessionList{Sessions: sessions})
}

// owned returns the session id of the path when it is one of the caller's
// live sessions; otherwise it answers 404 itself.
func (s *server) owned(w http.ResponseWriter, r *http.Request, u *idpClaims) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no such session"})
		return id, false
	}
	sessions, err := s.latch.OrgSessions(r.Context(), s.org, u.Subject)
	if err != nil {
		writeUpstreamError(w, err)
		return id, false
	}
	for _, ss := range sessions {
		if ss.Id == id && ss.ExternalId != nil && *ss.ExternalId == u.Subject {
			return id, true
		}
	}
	writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "no such session"})
	return id, false
}

func (s *server) renew(w http.ResponseWriter, r *http.Request, u *idpClaims) {
	id, ok := s.owned(w, r, u)
	if !ok {
		return
	}
	sess, err := s.latch.RenewSession(r.Context(), id)
	if err != nil {
		writeUpstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request, u *idpClaims) {
	id, ok := s.owned(w, r, u)
	if !ok {
		return
	}
	if err := s.latch.RevokeOrgSession(r.Context(), s.org, id); err != nil {
		writeUpstreamError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// writeUpstreamError passes Latch's refusal on with its status, and answers
// 502 when Latch cannot be reached.
func writeUpstreamError(w http.ResponseWriter, err error) {
	var ae *client.Error
	if errors.As(err, &ae) {
		writeJSON(w, ae.StatusCode, errorBody{Error: string(ae.Code), Message: ae.Message, RequestID: ae.RequestID})
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	writeJSON(w, http.StatusBadGateway, errorBody{Error: "unavailable", Message: "the authentication service cannot be reached"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cors lets the configured browser origins call the server.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if origin != "" && (slices.Contains(origins, "*") || slices.Contains(origins, origin)) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
