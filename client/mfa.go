package client

import (
	"context"
	"net/http"

	"github.com/latchauth/latch/client/latchapi"
)

// MFA groups the operations on second factors: verifying one to raise the
// Client's session to aal2 after SignIn, and managing the user's factors.
// Get it with Client.MFA.
type MFA struct{ c *Client }

// MFA returns the Client's second-factor operations.
func (c *Client) MFA() *MFA { return c.mfa }

// verify posts a second factor and makes the upgraded session's new tokens
// the Client's.
func (m *MFA) verify(ctx context.Context, body latchapi.VerifyMFAJSONRequestBody) (*TokenResponse, error) {
	res, err := m.c.api.VerifyMFAWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, m.c.keep(ctx, res.JSON200)
}

// VerifyTOTP raises the Client's session to aal2 with a TOTP code. Returns
// an *Error matching ErrMFAVerificationFailed for a wrong or used code,
// ErrRateLimited after too many.
func (m *MFA) VerifyTOTP(ctx context.Context, code string) (*TokenResponse, error) {
	return m.verify(ctx, latchapi.VerifyMFAJSONRequestBody{Method: latchapi.MFAVerifyRequestMethodTotp, Code: &code})
}

// VerifyRecoveryCode raises the Client's session to aal2 with a recovery
// code, which is spent. Errors as VerifyTOTP.
func (m *MFA) VerifyRecoveryCode(ctx context.Context, code string) (*TokenResponse, error) {
	return m.verify(ctx, latchapi.VerifyMFAJSONRequestBody{Method: latchapi.MFAVerifyRequestMethodRecoveryCode, Code: &code})
}

// BeginWebAuthn returns the options for navigator.credentials.get() that a
// WebAuthn second factor answers (then VerifyWebAuthn). Returns an *Error
// matching ErrNotFound when the user has no WebAuthn factor.
func (m *MFA) BeginWebAuthn(ctx context.Context) (map[string]any, error) {
	res, err := m.c.api.BeginWebAuthnVerificationWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200.Options, nil
}

// VerifyWebAuthn raises the Client's session to aal2 with a WebAuthn
// assertion (the PublicKeyCredential's JSON form). Errors as VerifyTOTP.
func (m *MFA) VerifyWebAuthn(ctx context.Context, assertion map[string]any) (*TokenResponse, error) {
	cred := latchapi.WebAuthnCredential(assertion)
	return m.verify(ctx, latchapi.VerifyMFAJSONRequestBody{Method: latchapi.MFAVerifyRequestMethodWebauthn, Credential: &cred})
}

// Factors lists the user's second factors and the session's assurance
// level.
func (m *MFA) Factors(ctx context.Context) (*MFAFactorList, error) {
	res, err := m.c.api.ListMFAFactorsWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, nil
}

// EnrollTOTP starts a TOTP enrolment: show the QR code (or the secret),
// then ConfirmTOTP with a code from the app, promptly and with the same
// session. Returns an *Error matching ErrMFARequired when the user has a
// factor and the session is aal1.
func (m *MFA) EnrollTOTP(ctx context.Context, name string) (*TOTPEnrollment, error) {
	body := latchapi.EnrollTOTPJSONRequestBody{}
	if name != "" {
		body.Name = &name
	}
	res, err := m.c.api.EnrollTOTPWithResponse(ctx, body)
	if err != nil {
		return nil, err
	}
	if res.JSON201 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON201, nil
}

// ConfirmTOTP completes a TOTP enrolment; the session's new (aal2) tokens
// become the Client's. The result carries the recovery codes with the
// account's first factor: show them once. Returns an *Error matching
// ErrMFAVerificationFailed for a wrong code, ErrMFARequired at aal1 when
// the user already has a verified factor; Latch also refuses an enrolment
// that another session started or that is too old (minutes).
func (m *MFA) ConfirmTOTP(ctx context.Context, factor FactorId, code string) (*MFAEnrollment, error) {
	res, err := m.c.api.ConfirmTOTPWithResponse(ctx, factor, latchapi.ConfirmTOTPJSONRequestBody{Code: code})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200, m.c.keep(ctx, &res.JSON200.Tokens)
}

// RemoveFactor removes a factor; Latch signs out the user's other
// sessions. Returns an *Error matching ErrMFARequired at aal1.
func (m *MFA) RemoveFactor(ctx context.Context, factor FactorId) error {
	res, err := m.c.api.DeleteMFAFactorWithResponse(ctx, factor)
	if err != nil {
		return err
	}
	if res.StatusCode() != http.StatusNoContent {
		return m.c.fail(res.HTTPResponse, res.Body)
	}
	return nil
}

// RegenerateRecoveryCodes replaces the recovery codes and returns the new
// ones. Returns an *Error matching ErrMFARequired at aal1.
func (m *MFA) RegenerateRecoveryCodes(ctx context.Context) ([]string, error) {
	res, err := m.c.api.RegenerateRecoveryCodesWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, m.c.fail(res.HTTPResponse, res.Body)
	}
	return res.JSON200.Codes, nil
}
