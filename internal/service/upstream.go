package service

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchauth/latch/internal/domain"
)

// The provider kinds: a generic OpenID Connect provider and the presets.
const (
	ProviderOIDC      = "oidc"
	ProviderGoogle    = "google"
	ProviderMicrosoft = "microsoft"
	ProviderApple     = "apple"
	ProviderGitHub    = "github"
)

// ProviderConfig is one identity provider users may sign in with
// (LATCH_PROVIDERS). A preset (Kind google, microsoft, apple, github) fills
// what the operator leaves out: issuer, endpoints, scopes, claims.
type ProviderConfig struct {
	// ID names the provider in URLs (/auth/providers/{id}/...).
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Name is for sign-in buttons (default: the preset's, else the ID).
	Name string `json:"name,omitempty"`
	// Issuer is the OpenID issuer, discovered at
	// {Issuer}/.well-known/openid-configuration (oidc kinds).
	Issuer   string `json:"issuer,omitempty"`
	ClientID string `json:"client_id"`
	// ClientSecret authenticates Latch to the token endpoint
	// (client_secret_basic), unless PrivateKey is set.
	ClientSecret string `json:"client_secret,omitempty"`
	// PrivateKey, a PEM private key (RSA or EC P-256), makes Latch
	// authenticate with private_key_jwt; for Apple it is the .p8 key that
	// signs the ES256 client secret. KeyID is its kid; TeamID Apple's team.
	PrivateKey string `json:"private_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	TeamID     string `json:"team_id,omitempty"`
	// Tenant is Microsoft's tenant id or domain (a single tenant).
	Tenant string   `json:"tenant,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	// Claims maps Latch's fields to the ID token's claim names.
	Claims ClaimMapping `json:"claims,omitzero"`
	// TrustMFA lets the provider's proof of multi-factor authentication
	// (amr holding "mfa", or an acr in MFAACRValues) stand for the user's
	// second factor: the session is aal2.
	TrustMFA     bool     `json:"trust_mfa,omitempty"`
	MFAACRValues []string `json:"mfa_acr_values,omitempty"`
	// AuthURL, TokenURL and APIURL replace the preset's endpoints (GitHub
	// Enterprise Server; tests).
	AuthURL  string `json:"auth_url,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
	APIURL   string `json:"api_url,omitempty"`
	// ResponseMode is form_post for providers that post their answer
	// (Apple's preset sets it).
	ResponseMode string `json:"response_mode,omitempty"`
}

// ClaimMapping names the ID token claims Latch reads (defaults: sub, email,
// email_verified).
type ClaimMapping struct {
	Subject       string `json:"subject,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified string `json:"email_verified,omitempty"`
}

// withPreset returns the configuration with the preset's values where the
// operator set none. Returns an error for what cannot work.
func (c ProviderConfig) withPreset() (ProviderConfig, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	switch c.Kind {
	case ProviderOIDC:
		def(&c.Name, c.ID)
		if c.Issuer == "" {
			return c, errors.New("an oidc provider needs an issuer")
		}
	case ProviderGoogle:
		def(&c.Name, "Google")
		def(&c.Issuer, "https://accounts.google.com")
	case ProviderMicrosoft:
		def(&c.Name, "Microsoft")
		if c.Issuer == "" {
			if c.Tenant == "" || c.Tenant == "common" || c.Tenant == "organizations" || c.Tenant == "consumers" {
				return c, errors.New("a microsoft provider needs a single tenant (its id or domain): multi-tenant issuers differ per tenant")
			}
			c.Issuer = "https://login.microsoftonline.com/" + c.Tenant + "/v2.0"
		}
		// Microsoft's email claim is not verified by anyone (the nOAuth
		// takeovers); xms_edov is true when the domain's owner verified it.
		def(&c.Claims.EmailVerified, "xms_edov")
	case ProviderApple:
		def(&c.Name, "Apple")
		def(&c.Issuer, "https://appleid.apple.com")
		def(&c.ResponseMode, "form_post")
		if len(c.Scopes) == 0 {
			c.Scopes = []string{"openid", "email", "name"}
		}
		if c.PrivateKey == "" || c.KeyID == "" || c.TeamID == "" {
			return c, errors.New("an apple provider needs private_key, key_id and team_id (its client secret is a JWT they sign)")
		}
	case ProviderGitHub:
		def(&c.Name, "GitHub")
		def(&c.AuthURL, "https://github.com/login/oauth/authorize")
		def(&c.TokenURL, "https://github.com/login/oauth/access_token")
		def(&c.APIURL, "https://api.github.com")
		if len(c.Scopes) == 0 {
			c.Scopes = []string{"read:user", "user:email"}
		}
	default:
		return c, fmt.Errorf("kind %q is not oidc, google, microsoft, apple or github", c.Kind)
	}
	if c.Kind != ProviderGitHub && len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if c.Kind != ProviderGitHub && !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	def(&c.Claims.Subject, "sub")
	def(&c.Claims.Email, "email")
	def(&c.Claims.EmailVerified, "email_verified")
	if c.ClientID == "" {
		return c, errors.New("client_id is required")
	}
	if c.ClientSecret == "" && c.PrivateKey == "" {
		return c, errors.New("client_secret or private_key is required")
	}
	if c.PrivateKey != "" {
		if _, err := parsePrivateKey(c.PrivateKey); err != nil {
			return c, err
		}
	}
	if c.ResponseMode != "" && c.ResponseMode != "form_post" && c.ResponseMode != "query" {
		return c, errors.New("response_mode must be query or form_post")
	}
	return c, nil
}

func parsePrivateKey(p string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil, errors.New("private_key is not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("private_key is not an RSA or EC private key")
}

// upstreamIdentity is what a provider told of the user.
type upstreamIdentity struct {
	Subject       string
	Email         string
	EmailVerified bool
	// MFA: the provider proved a multi-factor authentication (amr or acr).
	MFA bool
}

// upstream is one configured provider: its authorization URL, and the
// exchange of its answer for the user's identity.
type upstream struct {
	cfg   ProviderConfig
	http  *http.Client
	clock domain.Clock
	// callback is the redirect URI registered with the provider.
	callback string
	// org is the SSO connection this upstream was built from; nil for a
	// configured provider.
	org *domain.SSOConnection

	mu   sync.Mutex
	disc *discovered // nil until discovery succeeded (oidc kinds)
}

type discovered struct {
	provider *oidc.Provider
	endpoint oauth2.Endpoint
	verifier *oidc.IDTokenVerifier
	// issParam: the provider sends RFC 9207's iss with every answer.
	issParam bool
}

// errUpstream marks a provider that did not answer (or answered nonsense
// to a request that should work): temporarily_unavailable.
var errUpstream = errors.New("the identity provider is unavailable")

func upstreamErr(err error) error {
	return &domain.Error{Code: domain.CodeUnavailable, Message: "the identity provider did not answer; try again", RetryAfter: 5 * time.Second,
		Err: errors.Join(errUpstream, err)}
}

// discover returns the provider's discovered metadata, fetching it on first
// use (and again after a failure).
func (u *upstream) discover(ctx context.Context) (*discovered, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.disc != nil {
		return u.disc, nil
	}
	// The key set keeps the context it is made with for its later fetches.
	bg := oidc.ClientContext(context.WithoutCancel(ctx), u.http)
	dctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, u.cfg.Issuer)
	if err != nil {
		return nil, upstreamErr(err)
	}
	// NewProvider's key set keeps dctx; make one on the long-lived context.
	var meta struct {
		JWKS     string `json:"jwks_uri"`
		IssParam bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, upstreamErr(err)
	}
	keys := oidc.NewRemoteKeySet(bg, meta.JWKS)
	d := &discovered{provider: p, endpoint: p.Endpoint(), issParam: meta.IssParam,
		verifier: oidc.NewVerifier(u.cfg.Issuer, keys, &oidc.Config{ClientID: u.cfg.ClientID, Now: u.clock.Now})}
	if u.cfg.AuthURL != "" {
		d.endpoint.AuthURL = u.cfg.AuthURL
	}
	if u.cfg.TokenURL != "" {
		d.endpoint.TokenURL = u.cfg.TokenURL
	}
	u.disc = d
	return d, nil
}

func (u *upstream) oauth(endpoint oauth2.Endpoint) *oauth2.Config {
	c := &oauth2.Config{ClientID: u.cfg.ClientID, ClientSecret: u.cfg.ClientSecret, Endpoint: endpoint,
		RedirectURL: u.callback, Scopes: u.cfg.Scopes}
	if u.cfg.PrivateKey != "" {
		c.ClientSecret = ""
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return c
}

func (u *upstream) isGitHub() bool { return u.cfg.Kind == ProviderGitHub }

// authURL returns where the browser goes, with Latch's state, nonce and
// PKCE challenge.
func (u *upstream) authURL(ctx context.Context, state, nonce, verifier, loginHint string) (string, error) {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	var endpoint oauth2.Endpoint
	if u.isGitHub() {
		endpoint = oauth2.Endpoint{AuthURL: u.cfg.AuthURL, TokenURL: u.cfg.TokenURL}
	} else {
		d, err := u.discover(ctx)
		if err != nil {
			return "", err
		}
		endpoint = d.endpoint
		opts = append(opts, oidc.Nonce(nonce))
	}
	if u.cfg.ResponseMode == "form_post" {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	return u.oauth(endpoint).AuthCodeURL(state, opts...), nil
}

// checkIss applies RFC 9207: an iss in the answer must be the provider's
// issuer, and a provider that promises it must send it. Returns
// CodeInvalidRequest.
func (u *upstream) checkIss(ctx context.Context, iss string) error {
	if u.isGitHub() {
		return nil
	}
	d, err := u.discover(ctx)
	if err != nil {
		return err
	}
	switch {
	case iss != "" && iss != u.cfg.Issuer:
		return domain.Errorf(domain.CodeInvalidRequest, "the answer's iss is not the provider's issuer")
	case iss == "" && d.issParam:
		return domain.Errorf(domain.CodeInvalidRequest, "the provider sends iss with its answers, and this one has none")
	}
	return nil
}

// exchange redeems the provider's code with Latch's verifier and returns
// the identity: from the verified ID token (signature, issuer, audience,
// expiry, and nonce), or GitHub's user API. Returns CodeInvalidRequest for
// an answer that does not verify, CodeUnavailable for a provider that does
// not answer.
func (u *upstream) exchange(ctx context.Context, code, verifier, nonce string) (*upstreamIdentity, error) {
	ctx = oidc.ClientContext(ctx, u.http)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if u.isGitHub() {
		conf := u.oauth(oauth2.Endpoint{AuthURL: u.cfg.AuthURL, TokenURL: u.cfg.TokenURL})
		tok, err := conf.Exchange(ctx, code, opts...)
		if err != nil {
			return nil, exchangeErr(err)
		}
		return u.githubUser(ctx, tok.AccessToken)
	}
	d, err := u.discover(ctx)
	if err != nil {
		return nil, err
	}
	conf := u.oauth(d.endpoint)
	if u.cfg.PrivateKey != "" && u.cfg.Kind != ProviderApple {
		a, err := u.clientAssertion(d.endpoint.TokenURL)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", a))
	}
	if u.cfg.Kind == ProviderApple {
		secret, err := u.appleSecret()
		if err != nil {
			return nil, err
		}
		conf.ClientSecret = secret
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	tok, err := conf.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, exchangeErr(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "the provider returned no ID token")
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, &domain.Error{Code: domain.CodeInvalidRequest, Message: "the provider's ID token does not verify", Err: err}
	}
	if nonce == "" || idt.Nonce != nonce {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, &domain.Error{Code: domain.CodeInvalidRequest, Message: "the provider's ID token does not verify", Err: err}
	}
	if _, ok := claims[u.cfg.Claims.Email]; !ok && d.provider.UserInfoEndpoint() != "" {
		// A conforming provider answering the code flow may keep the
		// scopes' claims for userinfo (OpenID Connect Core 5.4); they
		// count only for the ID token's subject.
		ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, upstreamErr(err)
		}
		var extra map[string]any
		if err := ui.Claims(&extra); err != nil {
			return nil, &domain.Error{Code: domain.CodeInvalidRequest, Message: "the provider's userinfo is not JSON", Err: err}
		}
		if ui.Subject != idt.Subject {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "the provider's userinfo is for another subject")
		}
		for _, k := range []string{u.cfg.Claims.Email, u.cfg.Claims.EmailVerified} {
			if v, ok := extra[k]; ok {
				claims[k] = v
			}
		}
	}
	return u.identity(claims)
}

// exchangeErr sorts a failed code exchange: a refusal by the provider
// (an OAuth error answer: a bad or replayed code) is invalid_request,
// anything else the provider's unavailability.
func exchangeErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
		return &domain.Error{Code: domain.CodeInvalidRequest, Message: "the provider refused the code", Err: err}
	}
	return upstreamErr(err)
}

// identity reads the mapped claims.
func (u *upstream) identity(claims map[string]any) (*upstreamIdentity, error) {
	m := u.cfg.Claims
	id := &upstreamIdentity{Subject: claimString(claims[m.Subject]), Email: claimString(claims[m.Email]),
		EmailVerified: claimBool(claims[m.EmailVerified])}
	if id.Subject == "" {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "the ID token has no %s", m.Subject)
	}
	if id.Email != "" {
		e, err := domain.NormalizeEmail(id.Email)
		if err != nil {
			id.Email, id.EmailVerified = "", false
		} else {
			id.Email = e
		}
	}
	if amr, ok := claims["amr"].([]any); ok {
		for _, a := range amr {
			if a == "mfa" {
				id.MFA = true
			}
		}
	}
	if acr, ok := claims["acr"].(string); ok && acr != "" && slices.Contains(u.cfg.MFAACRValues, acr) {
		id.MFA = true
	}
	return id, nil
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	}
	return ""
}

// claimBool reads a boolean claim, also as the string "true" (Apple).
func claimBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// githubUser reads GitHub's user and its primary email, verified or not
// (GitHub's /user and /user/emails APIs).
func (u *upstream) githubUser(ctx context.Context, accessToken string) (*upstreamIdentity, error) {
	var user struct {
		ID int64 `json:"id"`
	}
	if err := u.githubGet(ctx, "/user", accessToken, &user); err != nil {
		return nil, err
	}
	if user.ID == 0 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "GitHub returned no user id")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := u.githubGet(ctx, "/user/emails", accessToken, &emails); err != nil {
		return nil, err
	}
	id := &upstreamIdentity{Subject: strconv.FormatInt(user.ID, 10)}
	for _, e := range emails {
		if e.Primary {
			if norm, err := domain.NormalizeEmail(e.Email); err == nil {
				id.Email, id.EmailVerified = norm, e.Verified
			}
		}
	}
	return id, nil
}

func (u *upstream) githubGet(ctx context.Context, path, accessToken string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(u.cfg.APIURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	res, err := u.http.Do(req)
	if err != nil {
		return upstreamErr(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return upstreamErr(err)
	}
	if res.StatusCode != http.StatusOK {
		if res.StatusCode >= 500 {
			return upstreamErr(fmt.Errorf("GitHub %s: %s", path, res.Status))
		}
		return domain.Errorf(domain.CodeInvalidRequest, "GitHub refused %s: %s", path, res.Status)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return upstreamErr(err)
	}
	return nil
}

// signer returns the JWT signing method and key of PrivateKey.
func (u *upstream) signer() (jwt.SigningMethod, crypto.Signer, error) {
	k, err := parsePrivateKey(u.cfg.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return jwt.SigningMethodES256, k, nil
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, k, nil
	}
	return nil, nil, errors.New("private_key must be RSA or EC P-256")
}

// clientAssertion is private_key_jwt's assertion (RFC 7523, OpenID
// Connect Core 9): Latch's client id as issuer and subject, the token
// endpoint as audience, a fresh jti, valid one minute. Apple's preset uses
// appleSecret instead.
func (u *upstream) clientAssertion(tokenURL string) (string, error) {
	method, key, err := u.signer()
	if err != nil {
		return "", err
	}
	now := u.clock.Now()
	t := jwt.NewWithClaims(method, jwt.RegisteredClaims{Issuer: u.cfg.ClientID, Subject: u.cfg.ClientID,
		Audience: jwt.ClaimStrings{tokenURL}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))})
	if u.cfg.KeyID != "" {
		t.Header["kid"] = u.cfg.KeyID
	}
	return t.SignedString(key)
}

// appleSecret is Apple's client secret: an ES256 JWT by the team, for the
// client (the Services ID), to https://appleid.apple.com, signed with the
// .p8 key; made for each exchange and valid five minutes.
func (u *upstream) appleSecret() (string, error) {
	_, key, err := u.signer()
	if err != nil {
		return "", err
	}
	now := u.clock.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Issuer: u.cfg.TeamID, Subject: u.cfg.ClientID,
		Audience: jwt.ClaimStrings{"https://appleid.apple.com"}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))})
	t.Header["kid"] = u.cfg.KeyID
	return t.SignedString(key)
}
