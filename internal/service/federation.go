package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
	"github.com/latchauth/latch/internal/webhook"
)

// FederationConfig configures sign-in with other identity providers.
type FederationConfig struct {
	Providers []ProviderConfig
	// RedirectURLs is the allow-list of redirect_to: an entry matches
	// exactly, or, when it ends with "*", as a prefix (see allowedRedirect).
	RedirectURLs []string
	// PublicURL is where browsers reach Latch: the base of the callback
	// and of link URLs.
	PublicURL string
	// HTTPClient talks to the providers (default: a client with a 15 s
	// timeout).
	HTTPClient *http.Client
	// SSOAllowPrivate lets organizations' SSO connections use http and
	// private, loopback or link-local addresses (LATCH_SSO_ALLOW_PRIVATE;
	// tests, internal providers). Otherwise their issuer must be https and
	// every request to them is refused an address that is not public, after
	// DNS resolution: an organization's owner is anyone who signed up, and
	// must not make Latch reach inside its network.
	SSOAllowPrivate bool
}

// The lifetimes of the flow's pieces.
const (
	providerFlowTTL = 10 * time.Minute
	providerCodeTTL = 60 * time.Second
	providerLinkTTL = 5 * time.Minute
)

// Federation signs users in with other identity providers (OpenID Connect
// and GitHub's OAuth 2.0), links their identities, and exchanges the
// one-time codes it returns to applications for sessions.
type Federation struct {
	store     federationStore
	sessions  *Sessions
	limits    *RateLimits
	events    *EventLog
	sealer    *token.Sealer
	clock     domain.Clock
	publicURL string
	redirects []string
	order     []string
	upstreams map[string]*upstream
	// orgHTTP talks to organizations' providers: public addresses only
	// unless allowPrivate.
	orgHTTP      *http.Client
	allowPrivate bool
	// sso applies require_sso to sign-ins with configured providers.
	sso *SSORequirement

	// orgMu guards orgUpstreams: the upstreams of organizations' SSO
	// connections, built from the store on first use and rebuilt when the
	// stored connection changed (so discovery is not repeated per request,
	// and an update made on another instance is seen on the next one).
	orgMu        sync.Mutex
	orgUpstreams map[uuid.UUID]*upstream
}

// NewFederation returns the feature with the configured providers, presets
// applied. Returns an error naming the provider whose configuration cannot
// work.
func NewFederation(sh Shared, st federationStore, cfg FederationConfig) (*Federation, error) {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	f := &Federation{store: st, sessions: sh.Sessions, limits: sh.Limits, events: sh.Events, sealer: sh.Sealer, clock: sh.Clock,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"), redirects: cfg.RedirectURLs, upstreams: map[string]*upstream{},
		orgHTTP:      webhook.NewClient(webhook.ClientConfig{Timeout: 15 * time.Second, AllowPrivate: cfg.SSOAllowPrivate}),
		allowPrivate: cfg.SSOAllowPrivate, sso: sh.SSO, orgUpstreams: map[uuid.UUID]*upstream{}}
	if err := CheckProviders(cfg.Providers); err != nil {
		return nil, err
	}
	for _, r := range cfg.RedirectURLs {
		if err := CheckRedirectURL(r); err != nil {
			return nil, fmt.Errorf("redirect URL %q: %w", r, err)
		}
	}
	for _, pc := range cfg.Providers {
		c, _ := pc.withPreset()
		f.upstreams[pc.ID] = &upstream{cfg: c, http: hc, clock: sh.Clock, callback: f.CallbackURL(pc.ID)}
		f.order = append(f.order, pc.ID)
	}
	return f, nil
}

func validProviderID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '_' || r == '-')) {
			return false
		}
	}
	return true
}

// ProviderInfo is what sign-in pages show of a provider.
type ProviderInfo struct{ ID, Kind, Name string }

// Providers returns the configured providers in configuration order.
func (f *Federation) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(f.order))
	for _, id := range f.order {
		c := f.upstreams[id].cfg
		out = append(out, ProviderInfo{ID: id, Kind: c.Kind, Name: c.Name})
	}
	return out
}

// FormPost reports whether the provider answers with a cross-site POST,
// for which the flow cookie must be SameSite=None.
func (f *Federation) FormPost(provider string) bool {
	u, ok := f.upstreams[provider]
	return ok && u.cfg.ResponseMode == "form_post"
}

// CallbackURL is the redirect URI of the provider, to register with it.
func (f *Federation) CallbackURL(provider string) string {
	return f.publicURL + "/auth/providers/" + provider + "/callback"
}

// upstream returns the configured provider, or the SSO connection of the
// organization that provider (org-<org uuid>) names. Returns CodeNotFound.
func (f *Federation) upstream(ctx context.Context, provider string) (*upstream, error) {
	if u, ok := f.upstreams[provider]; ok {
		return u, nil
	}
	notFound := domain.Errorf(domain.CodeNotFound, "no identity provider %q", provider)
	rest, ok := strings.CutPrefix(provider, domain.SSOProviderPrefix)
	if !ok {
		return nil, notFound
	}
	orgID, err := uuid.Parse(rest)
	if err != nil || domain.SSOProviderID(orgID) != provider {
		return nil, notFound
	}
	c, err := f.store.SSOConnection(ctx, orgID)
	if domain.IsCode(err, domain.CodeNotFound) {
		f.orgMu.Lock()
		delete(f.orgUpstreams, orgID)
		f.orgMu.Unlock()
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	return f.orgUpstream(c)
}

// orgUpstream returns the upstream of an organization's connection: the
// cached one while the stored connection is the one it was built from.
func (f *Federation) orgUpstream(c *domain.SSOConnection) (*upstream, error) {
	f.orgMu.Lock()
	defer f.orgMu.Unlock()
	if u := f.orgUpstreams[c.OrgID]; u != nil && sameConnection(u.org, c) {
		return u, nil
	}
	secret, err := f.sealer.Open(c.ClientSecret, domain.SSOSecretLabel(c.OrgID))
	if err != nil {
		return nil, err
	}
	id := domain.SSOProviderID(c.OrgID)
	cfg, err := ProviderConfig{ID: id, Kind: ProviderOIDC, Name: "SSO", Issuer: c.Issuer, ClientID: c.ClientID,
		ClientSecret: string(secret), Scopes: slices.Clone(c.Scopes)}.withPreset()
	if err != nil {
		return nil, err
	}
	conn := *c
	u := &upstream{cfg: cfg, http: f.orgHTTP, clock: f.clock, callback: f.CallbackURL(id), org: &conn}
	f.orgUpstreams[c.OrgID] = u
	return u, nil
}

// checkIssuer checks an SSO connection's issuer as webhooks check their
// URLs (https, no user information, no private address literal, unless
// SSOAllowPrivate), without a query; then its OpenID Connect discovery,
// through the client that refuses private addresses after resolution.
// Returns CodeInvalidRequest for a URL that cannot be an issuer,
// CodeInvalidProvider when discovery fails.
func (f *Federation) checkIssuer(ctx context.Context, issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.RawQuery != "" {
		return domain.Errorf(domain.CodeInvalidRequest, "issuer must be an https URL without query or fragment, such as https://acme.okta.com")
	}
	if err := webhook.ValidateURL(issuer, f.allowPrivate); err != nil {
		if errors.Is(err, webhook.ErrPrivateAddress) {
			return domain.Errorf(domain.CodeInvalidRequest, "issuer must not be a private, loopback or link-local address")
		}
		return domain.Errorf(domain.CodeInvalidRequest, "issuer must be an https URL without user information, query or fragment, such as https://acme.okta.com")
	}
	up := &upstream{cfg: ProviderConfig{Kind: ProviderOIDC, Issuer: issuer, ClientID: "check"}, http: f.orgHTTP, clock: f.clock}
	if _, err := up.discover(ctx); err != nil {
		return &domain.Error{Code: domain.CodeInvalidProvider, Err: err,
			Message: "the issuer's OpenID Connect discovery failed: " + issuer + "/.well-known/openid-configuration did not answer, or named another issuer"}
	}
	return nil
}

// sameConnection reports whether an upstream built from a serves the
// stored connection b.
func sameConnection(a, b *domain.SSOConnection) bool {
	return a.UpdatedAt.Equal(b.UpdatedAt) && a.Issuer == b.Issuer && a.ClientID == b.ClientID &&
		bytes.Equal(a.ClientSecret, b.ClientSecret) && slices.Equal(a.Scopes, b.Scopes) && a.DefaultRole == b.DefaultRole
}

// allowedRedirect reports whether redirect_to is on the allow-list: equal
// to an entry, or starting with an entry that ends with "*" (less the
// star). A prefix entry must end its origin with "/" before the star, so
// that https://app.example.com/* does not admit
// https://app.example.com.evil.test/. Fragments are never allowed.
func (f *Federation) allowedRedirect(redirectTo string) bool {
	u, err := url.Parse(redirectTo)
	if err != nil || u.Fragment != "" || strings.Contains(redirectTo, "#") || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	for _, e := range f.redirects {
		if prefix, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(redirectTo, prefix) && !strings.Contains(redirectTo[len(prefix):], "..") {
				return true
			}
		} else if redirectTo == e {
			return true
		}
	}
	return false
}

// AuthorizeRequest is the start of a provider sign-in.
type AuthorizeRequest struct {
	Provider      string
	RedirectTo    string
	CodeChallenge string
	LinkToken     string
	// LoginHint is sent to the provider as login_hint (SSO: the email).
	LoginHint string
	// Browser is the flow cookie's value when the browser sent one.
	Browser string
}

// AuthorizeResult is where the browser goes and the flow cookie to set.
type AuthorizeResult struct {
	Location string
	// Browser is the flow cookie's value: the one the browser sent when it
	// was well formed (so that parallel sign-ins in one browser all work),
	// else a new one.
	Browser string
}

// Authorize starts a provider sign-in (or, with a link token, a link):
// it stores the flow, with the hash of Latch's state, the hash of the
// browser's flow cookie, Latch's nonce and sealed PKCE verifier, and
// returns the provider's authorization URL. Returns CodeNotFound for an
// unknown provider, CodeInvalidRequest for a redirect_to off the allow-list
// or a bad challenge or link token, CodeRateLimited, CodeUnavailable when
// the provider's discovery fails. The client's per-IP sign-in limit
// (login-ip) is taken first, before any lookup.
func (f *Federation) Authorize(ctx context.Context, req AuthorizeRequest, meta domain.RequestMeta) (*AuthorizeResult, error) {
	if err := f.limits.allowIP(ctx, ruleLoginIP, meta, nil); err != nil {
		return nil, err
	}
	return f.authorize(ctx, req)
}

// authorize is Authorize once the limit is taken.
func (f *Federation) authorize(ctx context.Context, req AuthorizeRequest) (*AuthorizeResult, error) {
	u, err := f.upstream(ctx, req.Provider)
	if err != nil {
		return nil, err
	}
	if !f.allowedRedirect(req.RedirectTo) {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "redirect_to is not an allowed redirect URL (LATCH_REDIRECT_URLS)")
	}
	now := f.clock.Now()
	flow := &domain.ProviderFlow{Provider: req.Provider, RedirectTo: req.RedirectTo, CreatedAt: now, ExpiresAt: now.Add(providerFlowTTL)}
	if req.LinkToken != "" {
		link, err := f.store.TakeProviderFlow(ctx, hashSecret(req.LinkToken), now)
		if err != nil && !domain.IsCode(err, domain.CodeNotFound) {
			return nil, err
		}
		if err != nil || link.BrowserHash != nil || link.LinkUserID == nil || link.Provider != req.Provider || link.RedirectTo != req.RedirectTo {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "the link token is unknown, used, expired, or for another provider or redirect_to")
		}
		flow.LinkUserID, flow.CodeChallenge = link.LinkUserID, link.CodeChallenge
	} else if !validChallenge(req.CodeChallenge) {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "code_challenge must be a PKCE S256 challenge (43 base64url characters)")
	} else {
		flow.CodeChallenge = req.CodeChallenge
	}
	browser := req.Browser
	if !validSecret(browser) {
		if browser, err = randomSecret(); err != nil {
			return nil, err
		}
	}
	state, err := randomSecret()
	if err != nil {
		return nil, err
	}
	nonce, err := randomSecret()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	flow.StateHash, flow.BrowserHash, flow.Nonce = hashSecret(state), hashSecret(browser), nonce
	if flow.Verifier, err = f.sealer.Seal([]byte(verifier), flowLabel(flow.StateHash)); err != nil {
		return nil, err
	}
	loc, err := u.authURL(ctx, state, nonce, verifier, req.LoginHint)
	if err != nil {
		return nil, err
	}
	if err := f.store.CreateProviderFlow(ctx, flow); err != nil {
		return nil, err
	}
	return &AuthorizeResult{Location: loc, Browser: browser}, nil
}

func flowLabel(stateHash []byte) string {
	return "provider-flow:" + base64.RawURLEncoding.EncodeToString(stateHash)
}

// CallbackRequest is a provider's answer, with the browser's flow cookie.
type CallbackRequest struct {
	Provider, Code, State, Iss, Error string
	Browser                           string
}

// Callback takes the provider's answer and returns where the browser goes:
// the flow's redirect_to with a one-time code (a sign-in), linked=<id> (a
// link), or an OAuth-style error. Returns CodeInvalidRequest (and no
// location) when the state is unknown, used or expired, or names another
// provider: then no redirect_to is known.
func (f *Federation) Callback(ctx context.Context, req CallbackRequest, meta domain.RequestMeta) (string, error) {
	u, err := f.upstream(ctx, req.Provider)
	if err != nil {
		return "", err
	}
	if req.State == "" {
		return "", domain.Errorf(domain.CodeInvalidRequest, "the answer has no state")
	}
	now := f.clock.Now()
	flow, err := f.store.TakeProviderFlow(ctx, hashSecret(req.State), now)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return "", domain.Errorf(domain.CodeInvalidRequest, "the sign-in is unknown, already answered or expired; start again")
		}
		return "", err
	}
	if flow.Provider != req.Provider || flow.BrowserHash == nil {
		return "", domain.Errorf(domain.CodeInvalidRequest, "the sign-in is unknown, already answered or expired; start again")
	}
	loc, err := f.callback(ctx, u, flow, req, meta)
	if err != nil {
		code, desc := callbackError(err)
		return withParams(flow.RedirectTo, "error", code, "error_description", desc), nil
	}
	return loc, nil
}

func (f *Federation) callback(ctx context.Context, u *upstream, flow *domain.ProviderFlow, req CallbackRequest, meta domain.RequestMeta) (string, error) {
	// The state was taken: whatever follows, it is spent. A browser that
	// did not start the flow (a login forced on someone else) stops here.
	if !validSecret(req.Browser) || subtle.ConstantTimeCompare(hashSecret(req.Browser), flow.BrowserHash) != 1 {
		return "", domain.Errorf(domain.CodeInvalidRequest, "this browser did not start the sign-in")
	}
	if req.Error != "" {
		return "", errAccessDenied
	}
	if err := u.checkIss(ctx, req.Iss); err != nil {
		return "", err
	}
	if req.Code == "" {
		return "", domain.Errorf(domain.CodeInvalidRequest, "the answer has no code")
	}
	verifier, err := f.sealer.Open(flow.Verifier, flowLabel(flow.StateHash))
	if err != nil {
		return "", err
	}
	id, err := u.exchange(ctx, req.Code, string(verifier), flow.Nonce)
	if err != nil {
		return "", err
	}
	if err := f.checkDomain(ctx, u, id); err != nil {
		return "", err
	}
	now := f.clock.Now()
	ident := domain.Identity{ID: uuid.New(), Provider: flow.Provider, Subject: id.Subject, Email: id.Email,
		EmailVerified: id.EmailVerified && id.Email != "", CreatedAt: now, LastSignInAt: &now}
	if flow.LinkUserID != nil {
		// The identity is attached only when the user's own application
		// redeems this code (ConfirmLink): a leaked link URL opened by
		// someone else ends with a code they cannot redeem.
		ident.UserID = *flow.LinkUserID
		code, err := randomSecret()
		if err != nil {
			return "", err
		}
		if err := f.store.CreateProviderCode(ctx, &domain.ProviderCode{CodeHash: hashSecret(code), UserID: ident.UserID, Provider: flow.Provider,
			CodeChallenge: flow.CodeChallenge, RedirectTo: flow.RedirectTo, AAL: domain.AAL1, Link: &ident, CreatedAt: now,
			ExpiresAt: now.Add(providerCodeTTL)}); err != nil {
			return "", err
		}
		return withParams(flow.RedirectTo, "code", code, "flow", "link"), nil
	}
	newUser := &domain.User{ID: uuid.New(), Email: ident.Email, EmailVerified: ident.EmailVerified, CreatedAt: now, UpdatedAt: now}
	if ident.EmailVerified {
		newUser.VerifiedAt = &now
	}
	ident.UserID = newUser.ID
	in := domain.IdentitySignIn{Identity: ident, NewUser: newUser, Now: now}
	if u.org != nil {
		// The connection's users join its organization on sign-in.
		in.Membership = &domain.Member{OrgID: u.org.OrgID, Role: u.org.DefaultRole, CreatedAt: now}
	}
	user, _, err := f.store.SignInIdentity(ctx, in)
	if err != nil {
		return "", err
	}
	if err := f.sessions.checkVerified(user); err != nil {
		return "", err
	}
	aal, amr := domain.AAL1, []string{domain.AMRFederated}
	if u.cfg.TrustMFA && id.MFA {
		aal, amr = domain.AAL2, []string{domain.AMRFederated, domain.AMRMulti}
	}
	code, err := randomSecret()
	if err != nil {
		return "", err
	}
	if err := f.store.CreateProviderCode(ctx, &domain.ProviderCode{CodeHash: hashSecret(code), UserID: user.ID, Provider: flow.Provider,
		CodeChallenge: flow.CodeChallenge, RedirectTo: flow.RedirectTo, AAL: aal, AMR: amr, CreatedAt: now, ExpiresAt: now.Add(providerCodeTTL)}); err != nil {
		return "", err
	}
	return withParams(flow.RedirectTo, "code", code), nil
}

var errAccessDenied = errors.New("the provider refused the sign-in")

// refused is a sign-in Latch refuses after the provider's answer
// (access_denied with a description for the application).
type refused struct{ desc string }

func (r *refused) Error() string { return r.desc }

// checkDomain holds the rules of email domains on a provider's answer:
//
//   - an organization's SSO connection signs in only addresses of the
//     organization's verified domains (else its provider could assert any
//     address and take over the account), and such an address counts as
//     verified: the organization proved it controls the domain;
//   - a configured provider does not sign in an address whose
//     organization requires SSO (CodeSSORequired).
func (f *Federation) checkDomain(ctx context.Context, u *upstream, id *upstreamIdentity) error {
	if u.org == nil {
		if id.Email == "" {
			return nil
		}
		return f.sso.Check(ctx, id.Email)
	}
	if id.Email == "" {
		return &refused{"the organization's identity provider asserted no email"}
	}
	c, err := f.store.SSOConnectionForDomain(ctx, emailDomain(id.Email))
	if domain.IsCode(err, domain.CodeNotFound) || err == nil && c.OrgID != u.org.OrgID {
		return &refused{"the email the organization's identity provider asserted is not in a domain the organization verified"}
	}
	if err != nil {
		return err
	}
	id.EmailVerified = true
	return nil
}

// emailDomain is the domain of a normalised email address in the form
// organizations' domains are stored in (NormalizeDomain's): lower-case
// ASCII, an internationalised name as its xn-- form, so that every spelling
// of a domain that reaches the same mailboxes (bücher.example, BÜCHER.example,
// xn--bcher-kva.example) finds the organization that verified it. A domain
// the lookup mapping refuses is returned as it is, which no verified domain
// matches.
func emailDomain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	d := email[i+1:]
	if a, err := domainProfile.ToASCII(d); err == nil && a != "" {
		return strings.ToLower(a)
	}
	return d
}

// AuthorizeSSO starts a sign-in through the SSO connection of the
// organization that verified the email's domain, as Authorize does for
// its provider (org-<org id>), with the email as login_hint. Returns
// CodeInvalidRequest for a bad email, no LATCH_REDIRECT_URLS or what
// Authorize refuses, CodeSSONotConfigured when no organization routes the
// domain, and Authorize's errors.
func (f *Federation) AuthorizeSSO(ctx context.Context, email string, req AuthorizeRequest, meta domain.RequestMeta) (*AuthorizeResult, error) {
	if len(f.redirects) == 0 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "SSO sign-in needs LATCH_REDIRECT_URLS, the URLs sign-ins may return to; none is configured")
	}
	norm, err := domain.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	// The limit before the domain's lookup: asking which domains sign in
	// with SSO costs the caller a token each time, as a sign-in does.
	if err := f.limits.allowIP(ctx, ruleLoginIP, meta, nil); err != nil {
		return nil, err
	}
	c, err := f.store.SSOConnectionForDomain(ctx, emailDomain(norm))
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, domain.Errorf(domain.CodeSSONotConfigured, "no organization signs in addresses of %s with SSO", emailDomain(norm))
	}
	if err != nil {
		return nil, err
	}
	req.Provider, req.LinkToken, req.LoginHint = domain.SSOProviderID(c.OrgID), "", norm
	return f.authorize(ctx, req)
}

// callbackError is the OAuth-style error and description a failed callback
// sends back to the application.
func callbackError(err error) (string, string) {
	if errors.Is(err, errAccessDenied) {
		return "access_denied", "the sign-in was refused or cancelled at the provider"
	}
	var r *refused
	if errors.As(err, &r) {
		return "access_denied", r.desc
	}
	switch domain.ErrorCode(err) {
	case domain.CodeInvalidRequest:
		return "invalid_request", domain.ErrorMessage(err)
	case domain.CodeIdentityNotLinked:
		return string(domain.CodeIdentityNotLinked), domain.ErrorMessage(err)
	case domain.CodeConflict:
		return string(domain.CodeConflict), "another account holds this identity"
	case domain.CodeEmailNotVerified, domain.CodeSSORequired:
		return string(domain.ErrorCode(err)), domain.ErrorMessage(err)
	case domain.CodeUnavailable, domain.CodeRateLimited:
		return "temporarily_unavailable", "the identity provider did not answer; try again"
	}
	return "server_error", "the sign-in failed"
}

// withParams returns rawURL with the query parameters (name, value pairs)
// set.
func withParams(rawURL string, kv ...string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ExchangeCode opens a session for the one-time code of a provider sign-in.
// The code is spent whatever the outcome. Returns CodeInvalidGrant for an
// unknown, used or expired code, a verifier whose S256 is not the code's
// challenge, or a redirectURI (when given) that is not the flow's;
// CodeEmailNotVerified, CodeRateLimited.
func (f *Federation) ExchangeCode(ctx context.Context, code, verifier, redirectURI string, meta domain.RequestMeta) (*TokenSet, error) {
	if err := f.limits.allowIP(ctx, ruleLoginIP, meta, nil); err != nil {
		return nil, err
	}
	bad := domain.Errorf(domain.CodeInvalidGrant, "the code is invalid, used or expired, or the code_verifier does not match")
	if !validSecret(code) {
		return nil, bad
	}
	now := f.clock.Now()
	c, err := f.store.TakeProviderCode(ctx, hashSecret(code), now)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, bad
		}
		return nil, err
	}
	if c.Link != nil || !verifierMatches(verifier, c.CodeChallenge) {
		return nil, bad
	}
	if redirectURI != "" && redirectURI != c.RedirectTo {
		return nil, bad
	}
	u, err := f.store.UserByID(ctx, c.UserID)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, bad
		}
		return nil, err
	}
	if err := f.sessions.checkVerified(u); err != nil {
		return nil, err
	}
	t, err := f.sessions.open(ctx, u, nil, meta, "", func(s *domain.Session) {
		s.AAL, s.AMR = c.AAL, c.AMR
		if c.AAL == domain.AAL2 {
			// The provider proved a second factor now.
			s.MFAAt = &s.CreatedAt
		}
	})
	if err != nil {
		return nil, err
	}
	f.events.record(ctx, domain.EventLoginSucceeded, meta, &u.ID, &t.Session.ID, nil, map[string]any{"method": "provider", "provider": c.Provider})
	return t, nil
}

// Link starts linking a provider to the signed-in user: it stores a link
// token (5 minutes, single use) bound to the application's PKCE challenge
// and returns Latch's authorize URL with it; ConfirmLink finishes.
// Returns CodeNotFound for an unknown provider, CodeInvalidRequest for a
// redirect_to off the allow-list or a principal that is not a user's
// session.
func (f *Federation) Link(ctx context.Context, p *domain.Principal, provider, redirectTo, codeChallenge string) (string, time.Time, error) {
	if _, err := f.upstream(ctx, provider); err != nil {
		return "", time.Time{}, err
	}
	if p.Kind != domain.PrincipalSession || p.OrgID != nil {
		return "", time.Time{}, domain.Errorf(domain.CodeInvalidRequest, "only a user's own session links providers")
	}
	if !f.allowedRedirect(redirectTo) {
		return "", time.Time{}, domain.Errorf(domain.CodeInvalidRequest, "redirect_to is not an allowed redirect URL (LATCH_REDIRECT_URLS)")
	}
	if !validChallenge(codeChallenge) {
		return "", time.Time{}, domain.Errorf(domain.CodeInvalidRequest, "code_challenge must be a PKCE S256 challenge (43 base64url characters)")
	}
	tok, err := randomSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	now := f.clock.Now()
	uid := p.UserID
	row := &domain.ProviderFlow{StateHash: hashSecret(tok), Provider: provider, RedirectTo: redirectTo, LinkUserID: &uid,
		CodeChallenge: codeChallenge, Verifier: []byte{}, CreatedAt: now, ExpiresAt: now.Add(providerLinkTTL)}
	if err := f.store.CreateProviderFlow(ctx, row); err != nil {
		return "", time.Time{}, err
	}
	q := url.Values{"link_token": {tok}, "redirect_to": {redirectTo}}
	return f.publicURL + "/auth/providers/" + provider + "/authorize?" + q.Encode(), row.ExpiresAt, nil
}

// ConfirmLink finishes a link: it takes the code a link flow returned,
// with the verifier of the challenge Link was given, from a session of the
// user who started it, and links the identity to that user. Returns
// CodeInvalidGrant for an unknown, used, expired or sign-in code, another
// user's code or a wrong verifier (the code is spent either way),
// CodeConflict when another user holds the identity.
func (f *Federation) ConfirmLink(ctx context.Context, p *domain.Principal, code, verifier string, meta domain.RequestMeta) (*domain.Identity, error) {
	bad := domain.Errorf(domain.CodeInvalidGrant, "the code is invalid, used or expired, or the code_verifier does not match")
	if !validSecret(code) {
		return nil, bad
	}
	c, err := f.store.TakeProviderCode(ctx, hashSecret(code), f.clock.Now())
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, bad
		}
		return nil, err
	}
	if c.Link == nil || c.UserID != p.UserID || !verifierMatches(verifier, c.CodeChallenge) {
		return nil, bad
	}
	now := f.clock.Now()
	ident := *c.Link
	ident.ID, ident.UserID, ident.CreatedAt, ident.LastSignInAt = uuid.New(), p.UserID, now, &now
	if err := f.store.LinkIdentity(ctx, &ident); err != nil {
		return nil, err
	}
	f.events.record(ctx, domain.EventIdentityLinked, meta, &p.UserID, &p.SessionID, nil, map[string]any{"provider": ident.Provider})
	return &ident, nil
}

// verifierMatches reports whether the PKCE verifier's S256 is the
// challenge, in constant time.
func verifierMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return challenge != "" && subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// IdentityView is one way a user signs in.
type IdentityView struct {
	Kind     string // password, provider or passkey
	ID       uuid.UUID
	Identity *domain.Identity // provider only
	Created  time.Time
	LastUsed *time.Time
}

// ListIdentities returns the user's ways to sign in: the password, the
// provider identities, the passkeys that sign in alone.
func (f *Federation) ListIdentities(ctx context.Context, p *domain.Principal) ([]IdentityView, error) {
	u, err := f.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	var out []IdentityView
	if u.PasswordHash != "" {
		out = append(out, IdentityView{Kind: "password", ID: u.ID, Created: u.CreatedAt})
	}
	ids, err := f.store.ListIdentities(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	for i := range ids {
		out = append(out, IdentityView{Kind: "provider", ID: ids[i].ID, Identity: &ids[i], Created: ids[i].CreatedAt, LastUsed: ids[i].LastSignInAt})
	}
	fs, err := f.store.ListFactors(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	for _, fc := range fs {
		if fc.Verified() && fc.WebAuthn != nil && fc.WebAuthn.Passwordless {
			out = append(out, IdentityView{Kind: "passkey", ID: fc.ID, Created: fc.CreatedAt, LastUsed: fc.LastUsedAt})
		}
	}
	return out, nil
}

// DeleteIdentity unlinks one of the user's provider identities. Returns
// CodeNotFound, CodeLastIdentity when it is the last way to sign in.
func (f *Federation) DeleteIdentity(ctx context.Context, p *domain.Principal, id uuid.UUID, meta domain.RequestMeta) error {
	if err := f.store.DeleteIdentity(ctx, p.UserID, id); err != nil {
		return err
	}
	f.events.record(ctx, domain.EventIdentityUnlinked, meta, &p.UserID, &p.SessionID, nil, map[string]any{"identity_id": id.String()})
	return nil
}

// randomSecret returns 32 random bytes, base64url: states, nonces, flow
// cookies, codes and link tokens.
func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validSecret reports whether s looks like randomSecret's output.
func validSecret(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func validChallenge(s string) bool { return validSecret(s) }

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// CheckProviders checks a provider configuration as NewFederation would.
func CheckProviders(ps []ProviderConfig) error {
	seen := map[string]bool{}
	for _, pc := range ps {
		if !validProviderID(pc.ID) {
			return fmt.Errorf("provider %q: the id must be 1-63 of a-z, 0-9, _ and -", pc.ID)
		}
		if strings.HasPrefix(pc.ID, domain.SSOProviderPrefix) {
			return fmt.Errorf("provider %q: ids starting with %q name organizations' SSO connections", pc.ID, domain.SSOProviderPrefix)
		}
		if seen[pc.ID] {
			return fmt.Errorf("provider %q is configured twice", pc.ID)
		}
		seen[pc.ID] = true
		if _, err := pc.withPreset(); err != nil {
			return fmt.Errorf("provider %q: %w", pc.ID, err)
		}
	}
	return nil
}

// CheckRedirectURL checks an entry of the redirect allow-list: an absolute
// http(s) URL without a fragment or user information; a prefix entry
// (ending in "*") must have a path that ends with "/" before the star.
func CheckRedirectURL(e string) error {
	base, prefix := strings.CutSuffix(e, "*")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(base, "#") {
		return errors.New("want an absolute http(s) URL without user information or fragment, such as https://app.example.com/auth/callback")
	}
	if prefix && !strings.HasSuffix(u.Path, "/") {
		return errors.New("a prefix entry ends with /* (such as https://app.example.com/auth/*)")
	}
	return nil
}
