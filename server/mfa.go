package server

import (
	"context"
	"encoding/json"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// errNoMFA answers the MFA operations of a server built without them.
var errNoMFA = domain.Errorf(domain.CodeNotFound, "multi-factor authentication is not configured")

// loginTokens is a token response of a new session, with the pending
// factors when the session is aal1 and the user has one.
func (s *Server) loginTokens(ctx context.Context, t *service.TokenSet) (api.TokenResponse, error) {
	tr := apiTokens(t)
	if s.mfa == nil {
		return tr, nil
	}
	pending, err := s.mfa.Pending(ctx, t)
	if err != nil {
		return tr, err
	}
	if len(pending) > 0 {
		tr.Mfa = &api.MFAPending{Factors: apiFactors(pending)}
	}
	return tr, nil
}

func apiFactor(f *domain.Factor) api.MFAFactor {
	out := api.MFAFactor{Id: f.ID, Type: api.MFAFactorType(f.Type), Name: f.Name, Verified: f.Verified(),
		CreatedAt: f.CreatedAt, LastUsedAt: f.LastUsedAt}
	if w := f.WebAuthn; w != nil {
		be, bs := w.BackupEligible, w.BackedUp
		out.BackupEligible, out.BackedUp = &be, &bs
	}
	return out
}

func apiFactors(fs []domain.Factor) []api.MFAFactor {
	return convertAll(fs, apiFactor)
}

func apiEnrollment(e *service.Enrollment) api.MFAEnrollment {
	out := api.MFAEnrollment{Factor: apiFactor(&e.Factor), Tokens: apiTokens(e.Tokens)}
	if e.RecoveryCodes != nil {
		codes := e.RecoveryCodes
		out.RecoveryCodes = &codes
	}
	return out
}

// credentialJSON is a WebAuthn credential as the library parses it.
func credentialJSON(c *api.WebAuthnCredential) ([]byte, error) {
	if c == nil {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "credential is required")
	}
	return json.Marshal(c)
}

// mfaPrincipal returns the caller and the MFA service.
func (s *Server) mfaPrincipal(ctx context.Context) (*domain.Principal, error) {
	if s.mfa == nil {
		return nil, errNoMFA
	}
	return principalFrom(ctx)
}

// ListMFAFactors lists the caller's factors.
func (s *Server) ListMFAFactors(ctx context.Context, _ api.ListMFAFactorsRequestObject) (api.ListMFAFactorsResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.mfa.ListFactors(ctx, p)
	if err != nil {
		return nil, err
	}
	return api.ListMFAFactors200JSONResponse{Factors: apiFactors(l.Factors), RecoveryCodesRemaining: l.RecoveryCodesRemaining,
		Aal: api.AAL(l.AAL)}, nil
}

// RenameMFAFactor renames one of the caller's factors.
func (s *Server) RenameMFAFactor(ctx context.Context, req api.RenameMFAFactorRequestObject) (api.RenameMFAFactorResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.mfa.RenameFactor(ctx, p, req.FactorId, req.Body.Name)
	if err != nil {
		return nil, err
	}
	return api.RenameMFAFactor200JSONResponse(apiFactor(f)), nil
}

// DeleteMFAFactor removes one of the caller's factors.
func (s *Server) DeleteMFAFactor(ctx context.Context, req api.DeleteMFAFactorRequestObject) (api.DeleteMFAFactorResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.mfa.DeleteFactor(ctx, p, req.FactorId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.DeleteMFAFactor204Response{}, nil
}

// EnrollTOTP starts a TOTP enrolment.
func (s *Server) EnrollTOTP(ctx context.Context, req api.EnrollTOTPRequestObject) (api.EnrollTOTPResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	name := ""
	if req.Body != nil && req.Body.Name != nil {
		name = *req.Body.Name
	}
	e, err := s.mfa.EnrollTOTP(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return api.EnrollTOTP201JSONResponse{Factor: apiFactor(&e.Factor), Secret: e.Secret, OtpauthUri: e.URI, QrCode: e.QRCodeData}, nil
}

// ConfirmTOTP completes a TOTP enrolment.
func (s *Server) ConfirmTOTP(ctx context.Context, req api.ConfirmTOTPRequestObject) (api.ConfirmTOTPResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.mfa.ConfirmTOTP(ctx, p, req.FactorId, req.Body.Code, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.ConfirmTOTP200JSONResponse(apiEnrollment(e)), nil
}

// BeginWebAuthnRegistration starts registering a credential.
func (s *Server) BeginWebAuthnRegistration(ctx context.Context, _ api.BeginWebAuthnRegistrationRequestObject) (api.BeginWebAuthnRegistrationResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.mfa.BeginRegistration(ctx, p)
	if err != nil {
		return nil, err
	}
	return api.BeginWebAuthnRegistration200JSONResponse{Options: o}, nil
}

// FinishWebAuthnRegistration stores a registered credential.
func (s *Server) FinishWebAuthnRegistration(ctx context.Context, req api.FinishWebAuthnRegistrationRequestObject) (api.FinishWebAuthnRegistrationResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := credentialJSON(&req.Body.Credential)
	if err != nil {
		return nil, err
	}
	name := ""
	if req.Body.Name != nil {
		name = *req.Body.Name
	}
	e, err := s.mfa.FinishRegistration(ctx, p, name, cred, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.FinishWebAuthnRegistration200JSONResponse(apiEnrollment(e)), nil
}

// BeginWebAuthnVerification starts a WebAuthn second factor.
func (s *Server) BeginWebAuthnVerification(ctx context.Context, _ api.BeginWebAuthnVerificationRequestObject) (api.BeginWebAuthnVerificationResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.mfa.BeginVerification(ctx, p, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.BeginWebAuthnVerification200JSONResponse{Options: o}, nil
}

// VerifyMFA raises the caller's session to aal2.
func (s *Server) VerifyMFA(ctx context.Context, req api.VerifyMFARequestObject) (api.VerifyMFAResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	vr := service.VerifyRequest{Method: string(req.Body.Method)}
	if req.Body.Code != nil {
		vr.Code = *req.Body.Code
	}
	if req.Body.Credential != nil {
		if vr.Credential, err = credentialJSON(req.Body.Credential); err != nil {
			return nil, err
		}
	}
	t, err := s.mfa.Verify(ctx, p, vr, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.VerifyMFA200JSONResponse(apiTokens(t)), nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes.
func (s *Server) RegenerateRecoveryCodes(ctx context.Context, _ api.RegenerateRecoveryCodesRequestObject) (api.RegenerateRecoveryCodesResponseObject, error) {
	p, err := s.mfaPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	codes, err := s.mfa.RegenerateRecoveryCodes(ctx, p, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.RegenerateRecoveryCodes200JSONResponse{Codes: codes}, nil
}

// BeginPasskeyLogin starts a passwordless sign-in.
func (s *Server) BeginPasskeyLogin(ctx context.Context, _ api.BeginPasskeyLoginRequestObject) (api.BeginPasskeyLoginResponseObject, error) {
	if s.mfa == nil {
		return nil, errNoMFA
	}
	o, err := s.mfa.BeginPasskeyLogin(ctx, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.BeginPasskeyLogin200JSONResponse{Options: o}, nil
}

// PasskeyLogin signs in with a passkey alone.
func (s *Server) PasskeyLogin(ctx context.Context, req api.PasskeyLoginRequestObject) (api.PasskeyLoginResponseObject, error) {
	if s.mfa == nil {
		return nil, errNoMFA
	}
	cred, err := credentialJSON(&req.Body.Credential)
	if err != nil {
		return nil, err
	}
	t, err := s.mfa.PasskeyLogin(ctx, cred, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	tr, err := s.loginTokens(ctx, t)
	if err != nil {
		return nil, err
	}
	return api.PasskeyLogin200JSONResponse(tr), nil
}
