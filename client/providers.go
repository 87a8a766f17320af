package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"

	"github.com/latchauth/latch/client/latchapi"
)

// ProviderSignIn is a sign-in with an identity provider, started by
// ProviderAuthorizeURL or SSOAuthorizeURL: send the browser to URL, and keep Verifier (in the
// user's server-side session, say) for ExchangeCode.
type ProviderSignIn struct {
	URL      string
	Verifier string
}

// ProviderAuthorizeURL starts a sign-in with a provider configured at Latch
// (Google, GitHub, ...): it makes a PKCE verifier and returns Latch's
// authorize URL with its S256 challenge. Latch sends the browser on to the
// provider and back to redirectTo (one of Latch's LATCH_REDIRECT_URLS) with
// ?code= (or ?error=: see docs/providers.md), where ExchangeCode finishes.
func (c *Client) ProviderAuthorizeURL(provider, redirectTo string) (*ProviderSignIn, error) {
	return c.signInURL("/auth/providers/"+url.PathEscape(provider)+"/authorize", url.Values{"redirect_to": {redirectTo}})
}

// SSOAuthorizeURL starts an enterprise SSO sign-in: Latch finds the
// organization that verified the domain of email and sends the browser to
// that organization's identity provider (docs/sso.md). The rest is as
// ProviderAuthorizeURL: send the browser to URL, keep Verifier, and finish
// with ExchangeCode where redirectTo receives ?code=. Latch answers the
// browser 404 sso_not_configured when no organization signs in that
// domain.
func (c *Client) SSOAuthorizeURL(email, redirectTo string) (*ProviderSignIn, error) {
	return c.signInURL("/auth/sso", url.Values{"email": {email}, "redirect_to": {redirectTo}})
}

// signInURL makes a PKCE verifier and returns Latch's URL at path with q and
// the verifier's S256 challenge.
func (c *Client) signInURL(path string, q url.Values) (*ProviderSignIn, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	q.Set("code_challenge_method", "S256")
	return &ProviderSignIn{URL: c.BaseURL() + path + "?" + q.Encode(), Verifier: verifier}, nil
}

// ExchangeCode finishes a provider sign-in: it exchanges the one-time code
// that came back to redirect_to (single use, 60 seconds) with the verifier
// of ProviderAuthorizeURL, and the session becomes the Client's, as SignIn's
// does (MFA is set when it waits for a second factor). Returns an *Error
// with ErrInvalidGrant for a used, expired or foreign code or another
// verifier.
func (c *Client) ExchangeCode(ctx context.Context, code, verifier string) (*SignInResult, error) {
	res, err := c.api.ExchangeTokenWithFormdataBodyWithResponse(ctx, latchapi.ExchangeTokenFormdataRequestBody{
		GrantType: latchapi.AuthorizationCode, Code: &code, CodeVerifier: &verifier})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	e := res.JSON200
	if e.RefreshToken == nil || e.SessionId == nil || e.User == nil || e.Aal == nil {
		return nil, errors.New("latch: the code exchange answered no session")
	}
	t := &TokenResponse{AccessToken: e.AccessToken, TokenType: latchapi.TokenResponseTokenTypeBearer, ExpiresIn: e.ExpiresIn,
		ExpiresAt: e.ExpiresAt, RefreshToken: *e.RefreshToken, SessionId: *e.SessionId, User: *e.User, Aal: *e.Aal, Mfa: e.Mfa}
	out := &SignInResult{Tokens: t}
	if t.Mfa != nil && len(t.Mfa.Factors) > 0 {
		out.MFA = &MFAStep{Factors: t.Mfa.Factors}
	}
	return out, c.keep(ctx, t)
}
