package client

import (
	"context"
)

// LoginResult is what a password login opens: a session, and when its user
// has a second factor the step that remains before the session is aal2.
type LoginResult struct {
	// Tokens are the new session's (already the Client's).
	Tokens *TokenResponse
	// MFA is set when the session is aal1 and the user has a verified
	// second factor: operations that need aal2 answer ErrMFARequired until
	// one of the factors is verified (VerifyTOTP, VerifyRecoveryCode,
	// VerifyWebAuthn), which upgrades this same session.
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

// SignIn logs in like Login and says whether a second factor is pending:
// the session is the Client's either way (at aal1 while MFA is set).
// Returns an *Error matching ErrInvalidCredentials, ErrRateLimited or
// ErrEmailNotVerified when Latch refuses.
func (c *Client) SignIn(ctx context.Context, email, password string) (*LoginResult, error) {
	t, err := c.Login(ctx, email, password)
	if err != nil {
		return nil, err
	}
	out := &LoginResult{Tokens: t}
	if t.Mfa != nil && len(t.Mfa.Factors) > 0 {
		out.MFA = &MFAStep{Factors: t.Mfa.Factors}
	}
	return out, nil
}

// verify posts a second factor and makes the upgraded session's new tokens
// the Client's.
func (c *Client) verify(ctx context.Context, body VerifyMFAJSONRequestBody) (*TokenResponse, error) {
	res, err := c.api.VerifyMFAWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, c.auth.save(ctx, c.auth.fromTokenResponse(res.JSON200))
}

// VerifyTOTP raises the Client's session to aal2 with a TOTP code. Returns
// an *Error matching ErrMFAVerificationFailed for a wrong or used code,
// ErrRateLimited after too many.
func (c *Client) VerifyTOTP(ctx context.Context, code string) (*TokenResponse, error) {
	return c.verify(ctx, VerifyMFAJSONRequestBody{Method: MFAVerifyRequestMethodTotp, Code: &code})
}

// VerifyRecoveryCode raises the Client's session to aal2 with a recovery
// code, which is spent. Errors as VerifyTOTP.
func (c *Client) VerifyRecoveryCode(ctx context.Context, code string) (*TokenResponse, error) {
	return c.verify(ctx, VerifyMFAJSONRequestBody{Method: MFAVerifyRequestMethodRecoveryCode, Code: &code})
}

// BeginWebAuthn returns the options for navigator.credentials.get() that a
// WebAuthn second factor answers (then VerifyWebAuthn). Returns an *Error
// matching ErrNotFound when the user has no WebAuthn factor.
func (c *Client) BeginWebAuthn(ctx context.Context) (map[string]any, error) {
	res, err := c.api.BeginWebAuthnVerificationWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200.Options, nil
}

// VerifyWebAuthn raises the Client's session to aal2 with a WebAuthn
// assertion (the PublicKeyCredential's JSON form). Errors as VerifyTOTP.
func (c *Client) VerifyWebAuthn(ctx context.Context, assertion map[string]any) (*TokenResponse, error) {
	cred := WebAuthnCredential(assertion)
	return c.verify(ctx, VerifyMFAJSONRequestBody{Method: MFAVerifyRequestMethodWebauthn, Credential: &cred})
}

// Factors lists the user's second factors.
func (c *Client) Factors(ctx context.Context) (*MFAFactorList, error) {
	res, err := c.api.ListMFAFactorsWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, nil
}

// EnrollTOTP starts a TOTP enrolment: show the QR code (or the secret),
// then ConfirmTOTP with a code from the app. Returns an *Error matching
// ErrMFARequired when the user has a factor and the session is aal1.
func (c *Client) EnrollTOTP(ctx context.Context, name string) (*TOTPEnrollment, error) {
	body := EnrollTOTPJSONRequestBody{}
	if name != "" {
		body.Name = &name
	}
	res, err := c.api.EnrollTOTPWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// ConfirmTOTP completes a TOTP enrolment; the session's new (aal2) tokens
// become the Client's. The result carries the recovery codes with the
// account's first factor: show them once.
func (c *Client) ConfirmTOTP(ctx context.Context, factor FactorId, code string) (*MFAEnrollment, error) {
	res, err := c.api.ConfirmTOTPWithResponse(ctx, factor, ConfirmTOTPJSONRequestBody{Code: code})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, c.auth.save(ctx, c.auth.fromTokenResponse(&res.JSON200.Tokens))
}

// RemoveFactor removes a factor; Latch signs out the user's other
// sessions. Returns an *Error matching ErrMFARequired at aal1.
func (c *Client) RemoveFactor(ctx context.Context, factor FactorId) error {
	res, err := c.api.DeleteMFAFactorWithResponse(ctx, factor)
	if err != nil {
		return err
	}
	if res.StatusCode() != 204 {
		return fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// RegenerateRecoveryCodes replaces the recovery codes and returns the new
// ones. Returns an *Error matching ErrMFARequired at aal1.
func (c *Client) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	res, err := c.api.RegenerateRecoveryCodesWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200.Codes, nil
}
