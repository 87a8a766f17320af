package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchauth/latch/client/latchapi"
)

// fail returns the *Error of a generated response that did not succeed.
func (c *Client) fail(hr *http.Response, body []byte) error {
	if hr == nil {
		return errors.New("latch: no response")
	}
	return errorFrom(hr.StatusCode, hr.Header, body, c.auth.now())
}

// SignUp creates an account and makes its first session the Client's.
// Returns an *Error matching ErrEmailTaken, ErrWeakPassword or
// ErrInvalidRequest when Latch refuses, and one matching
// ErrEmailNotVerified when the account was created but Latch requires its
// email to be verified before a session opens.
func (c *Client) SignUp(ctx context.Context, email, password string) (*TokenResponse, error) {
	res, err := c.api.SignupWithResponse(ctx, latchapi.SignupJSONRequestBody{Email: latchapi.Email(email), Password: password})
	if err != nil {
		return nil, err
	}
	if res.JSON202 != nil {
		// The server requires a verified email: the account exists, but no
		// session opens until the link in the verification mail is used.
		return nil, &Error{StatusCode: res.StatusCode(), Code: latchapi.ErrorCodeEmailNotVerified,
			Message: "account created; verify the email address, then log in"}
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	// A SignupSession is a TokenResponse with a status: read the body as one.
	var t TokenResponse
	if err := json.Unmarshal(res.Body, &t); err != nil {
		return nil, fmt.Errorf("latch: signup answer: %w", err)
	}
	return &t, c.keep(ctx, &t)
}

// SignInResult is what a password sign-in opens: a session, and when its
// user has a second factor the step that remains before the session is
// aal2.
type SignInResult struct {
	// Tokens are the new session's (already the Client's).
	Tokens *TokenResponse
	// MFA is set when the session is aal1 and the user has a verified
	// second factor: operations that need aal2 answer ErrMFARequired until
	// one of the factors is verified (c.MFA().VerifyTOTP,
	// VerifyRecoveryCode or VerifyWebAuthn), which upgrades this same
	// session. It is nil when no second factor is needed.
	MFA *MFAStep
}

// MFAStep is the second factor a session still needs.
type MFAStep struct {
	// Factors are the user's verified factors that can complete the step.
	Factors []MFAFactor
}

// Has reports whether one of the factors is of the type.
func (s *MFAStep) Has(t MFAFactorType) bool {
	for _, f := range s.Factors {
		if f.Type == t {
			return true
		}
	}
	return false
}

// SignIn signs in with email and password and makes the new session the
// Client's, replacing any other in its token store, whether or not a
// second factor is pending (the session is aal1 while the result's MFA is
// set). Returns an *Error matching ErrInvalidCredentials for a wrong email
// or password, ErrRateLimited or ErrEmailNotVerified when Latch refuses.
// When the token store fails, the result comes with the error (see
// SetTokens), as with SignUp.
func (c *Client) SignIn(ctx context.Context, email, password string) (*SignInResult, error) {
	res, err := c.api.LoginWithResponse(ctx, latchapi.LoginJSONRequestBody{Email: latchapi.Email(email), Password: password})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return c.signedIn(ctx, res.JSON200)
}

// signedIn makes the session t, just opened, the Client's and says which
// second factor it waits for.
func (c *Client) signedIn(ctx context.Context, t *TokenResponse) (*SignInResult, error) {
	out := &SignInResult{Tokens: t}
	if t.Mfa != nil && len(t.Mfa.Factors) > 0 {
		out.MFA = &MFAStep{Factors: t.Mfa.Factors}
	}
	return out, c.keep(ctx, t)
}

// OTPRequest is what SignInWithOTP asks for.
type OTPRequest struct {
	// Email is the address the mail goes to.
	Email string
	// CreateUser creates the account on verification if none has Email.
	CreateUser bool
	// RedirectTo is the page the mail's link opens, with "token" added to
	// its query; Latch must list it in LATCH_OTP_REDIRECT_URLS. "" leaves
	// the link to Latch's configuration (LATCH_OTP_URL, or none).
	RedirectTo string
}

// SignInWithOTP asks Latch to mail a sign-in link and a 6-digit code, which
// VerifyOTP takes. It returns nil whether or not an account has the
// address (nothing is mailed to an unknown one unless CreateUser). Returns
// an *Error matching ErrInvalidRequest for a RedirectTo Latch does not
// allow, ErrRateLimited per address and per IP.
func (c *Client) SignInWithOTP(ctx context.Context, req OTPRequest) error {
	body := latchapi.SignInWithOtpJSONRequestBody{Email: latchapi.Email(req.Email)}
	if req.CreateUser {
		body.CreateUser = &req.CreateUser
	}
	if req.RedirectTo != "" {
		body.RedirectTo = &req.RedirectTo
	}
	res, err := c.api.SignInWithOtpWithResponse(ctx, body)
	if err != nil {
		return err
	}
	if res.JSON202 == nil {
		return c.fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// OTPVerification is what VerifyOTP presents: Email and the mail's Code,
// or the Token of its link (the "token" query parameter of the page the
// link opened).
type OTPVerification struct {
	Email string
	Code  string
	Token string
}

// VerifyOTP signs in with a mailed code or link token and makes the new
// session the Client's, exactly as SignIn does (the result's MFA is set
// when a second factor is pending). Returns an *Error matching
// ErrInvalidToken for a wrong, used or expired code or link (five wrong
// codes end the mail's challenge), ErrInvalidRequest unless exactly one
// form is given, ErrRateLimited. When the token store fails, the result
// comes with the error, as with SignIn.
func (c *Client) VerifyOTP(ctx context.Context, v OTPVerification) (*SignInResult, error) {
	var body latchapi.VerifyOtpJSONRequestBody
	if v.Email != "" {
		e := latchapi.Email(v.Email)
		body.Email = &e
	}
	if v.Code != "" {
		body.Code = &v.Code
	}
	if v.Token != "" {
		body.Token = &v.Token
	}
	res, err := c.api.VerifyOtpWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return c.signedIn(ctx, res.JSON200)
}

// keep makes the session t, just opened or upgraded by Latch, the Client's
// and saves it to the token store. When the store fails the session still
// exists on the server: the error says so, and the caller, which gets t
// beside it, may keep it elsewhere (SetTokens) or end it (Logout).
func (c *Client) keep(ctx context.Context, t *TokenResponse) error {
	if err := c.auth.save(ctx, c.auth.fromTokenResponse(t)); err != nil {
		return fmt.Errorf("latch: the session is open on the server, but the token store failed: %w", err)
	}
	return nil
}

// Refresh rotates the session's refresh token now, whether or not the
// access token is due, unless another process sharing the token store has
// just done so. Returns ErrNotLoggedIn without a session, an error matching
// ErrSessionEnded when the session has ended or Latch refuses (the tokens
// are cleared), and a *RefreshBackoffError while an earlier failure's
// backoff lasts or when this refresh fails.
func (c *Client) Refresh(ctx context.Context) (*Tokens, error) {
	if c.auth.mode != modeSession {
		return nil, errors.New("latch: Refresh needs a session Client")
	}
	t, _, end, err := c.auth.current(ctx)
	if err != nil {
		return nil, err
	}
	if t == nil {
		if end != nil {
			return nil, c.auth.report(&sessionEnded{end})
		}
		return nil, ErrNotLoggedIn
	}
	return c.auth.renew(ctx, t.AccessToken)
}

// Logout ends this session (LogoutLocal), the user's other sessions
// (LogoutOthers) or all of them (LogoutGlobal). Unless the scope is
// LogoutOthers the Client forgets its tokens, even when Latch cannot be
// reached, and the session ends with SessionEndLogout (see
// WithOnSessionEnd); a session that had already ended, or none, is no
// error.
func (c *Client) Logout(ctx context.Context, scope LogoutScope) error {
	if scope == "" {
		scope = LogoutLocal
	}
	res, err := c.api.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &scope})
	if err == nil && res.StatusCode() != http.StatusNoContent {
		err = c.fail(res.HTTPResponse, res.Body)
	}
	if scope == LogoutOthers {
		return err
	}
	if errors.Is(err, ErrSessionEnded) || errors.Is(err, ErrNotLoggedIn) || errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrTokenExpired) {
		err = nil
	}
	return errors.Join(err, c.auth.logout(ctx))
}

// Me returns the authenticated user. An organization API key has no user:
// Latch answers ErrNotFound.
func (c *Client) Me(ctx context.Context) (*User, error) {
	res, err := c.api.GetMeWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, nil
}

// Sessions returns every live session of the user, newest first, reading
// page after page.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var out []Session
	params := &latchapi.ListSessionsParams{}
	for {
		res, err := c.api.ListSessionsWithResponse(ctx, params)
		if err != nil {
			return nil, err
		}
		if res.JSON200 == nil {
			return nil, c.fail(res.HTTPResponse, res.Body)
		}
		out = append(out, res.JSON200.Sessions...)
		if res.JSON200.NextCursor == nil {
			return out, nil
		}
		params.Cursor = res.JSON200.NextCursor
	}
}

// RevokeSession ends one of the user's sessions. Returns ErrNotFound when
// it is not theirs or already ended.
func (c *Client) RevokeSession(ctx context.Context, id SessionId) error {
	res, err := c.api.RevokeSessionWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if res.StatusCode() != http.StatusNoContent {
		return c.fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// RenewSession extends a session by the idle lifetime, up to its absolute
// lifetime: the user's own, or with an organization key (sessions:write) a
// delegated session of the organization.
func (c *Client) RenewSession(ctx context.Context, id SessionId) (*Session, error) {
	res, err := c.api.RenewSessionWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, nil
}

// CreateAPIKey creates a personal API key; the secret in the result's Key
// is shown this once.
func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKeyRequest) (*APIKeyWithSecret, error) {
	res, err := c.api.CreateAPIKeyWithResponse(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// APIKeys lists every personal API key of the user, never their secrets,
// reading page after page.
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	params := &latchapi.ListAPIKeysParams{}
	for {
		res, err := c.api.ListAPIKeysWithResponse(ctx, params)
		if err != nil {
			return nil, err
		}
		if res.JSON200 == nil {
			return nil, c.fail(res.HTTPResponse, res.Body)
		}
		out = append(out, res.JSON200.ApiKeys...)
		if res.JSON200.NextCursor == nil {
			return out, nil
		}
		params.Cursor = res.JSON200.NextCursor
	}
}

// RevokeAPIKey revokes a personal API key.
func (c *Client) RevokeAPIKey(ctx context.Context, id KeyId) error {
	res, err := c.api.RevokeAPIKeyWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if res.StatusCode() != http.StatusNoContent {
		return c.fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// RollAPIKey replaces a personal API key; the old one keeps working for
// overlap.
func (c *Client) RollAPIKey(ctx context.Context, id KeyId, overlap time.Duration) (*APIKeyWithSecret, error) {
	secs := int(overlap / time.Second)
	res, err := c.api.RollAPIKeyWithResponse(ctx, id, latchapi.RollAPIKeyRequest{OverlapSeconds: &secs})
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// CreateOrganization creates an organization owned by the user.
func (c *Client) CreateOrganization(ctx context.Context, name string) (*Organization, error) {
	res, err := c.api.CreateOrganizationWithResponse(ctx, latchapi.CreateOrganizationRequest{Name: name})
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// CreateOrgAPIKey creates an API key of the organization; the secret in
// the result's Key is shown this once.
func (c *Client) CreateOrgAPIKey(ctx context.Context, org OrgId, req CreateAPIKeyRequest) (*APIKeyWithSecret, error) {
	res, err := c.api.CreateOrgAPIKeyWithResponse(ctx, org, req)
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// CreateDelegatedSession opens a session for an organization's own user
// (organization API key with sessions:write). The result's tokens belong to
// that user: hand them over, and do not keep them in this Client.
func (c *Client) CreateDelegatedSession(ctx context.Context, req DelegatedSessionRequest) (*TokenResponse, error) {
	res, err := c.api.CreateDelegatedSessionWithResponse(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// OrgSessions lists the organization's live delegated sessions, those of
// one external user when externalID is not empty.
func (c *Client) OrgSessions(ctx context.Context, org OrgId, externalID string) ([]Session, error) {
	var p latchapi.ListOrgSessionsParams
	if externalID != "" {
		p.ExternalId = &externalID
	}
	res, err := c.api.ListOrgSessionsWithResponse(ctx, org, &p)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200.Sessions, nil
}

// RevokeOrgSession ends a delegated session of the organization.
func (c *Client) RevokeOrgSession(ctx context.Context, org OrgId, id SessionId) error {
	res, err := c.api.RevokeOrgSessionWithResponse(ctx, org, id)
	if err != nil {
		return err
	}
	if res.StatusCode() != http.StatusNoContent {
		return c.fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// Exchange trades the Client's API key (WithAPIKey or WithAPIKeyExchange)
// for an access token now, without caching it: for handing a token to
// someone else. Token is the cached alternative.
func (c *Client) Exchange(ctx context.Context, req ExchangeRequest) (*ExchangeResponse, error) {
	if c.auth.apiKey == "" {
		return nil, errors.New("latch: Exchange needs an API key Client")
	}
	// Through the Client's transport, which retries 429 and 503 and leaves
	// the caller's own X-API-Key alone.
	res, err := c.api.ExchangeTokenWithResponse(ctx, req, func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-API-Key", c.auth.apiKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, nil
}
