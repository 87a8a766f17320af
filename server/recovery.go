package server

import (
	"context"
	"net/http"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
)

// tokenStatus makes an invalid reset or verification token a 400, as the
// contract says: the token is a request field, not a credential.
func tokenStatus(err error) error {
	if domain.IsCode(err, domain.CodeInvalidToken) {
		return withStatus(http.StatusBadRequest, err)
	}
	return err
}

// ForgotPassword queues a password-reset mail when the email belongs to an
// account. It answers the same 202 in every case.
func (s *Server) ForgotPassword(ctx context.Context, req api.ForgotPasswordRequestObject) (api.ForgotPasswordResponseObject, error) {
	if err := s.recovery.ForgotPassword(ctx, string(req.Body.Email), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.ForgotPassword202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// ResetPassword sets a new password with a reset token.
func (s *Server) ResetPassword(ctx context.Context, req api.ResetPasswordRequestObject) (api.ResetPasswordResponseObject, error) {
	if err := s.recovery.ResetPassword(ctx, req.Body.Token, req.Body.Password, metaFrom(ctx)); err != nil {
		return nil, tokenStatus(err)
	}
	return api.ResetPassword204Response{}, nil
}

// ChangePassword changes the caller's password, keeping this session.
func (s *Server) ChangePassword(ctx context.Context, req api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.recovery.ChangePassword(ctx, p, req.Body.CurrentPassword, req.Body.NewPassword, boolOr(req.Body.RevokeApiKeys, false), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.ChangePassword204Response{}, nil
}

// VerifyEmail marks an email verified with a verification token.
func (s *Server) VerifyEmail(ctx context.Context, req api.VerifyEmailRequestObject) (api.VerifyEmailResponseObject, error) {
	if err := s.recovery.VerifyEmail(ctx, req.Body.Token, metaFrom(ctx)); err != nil {
		return nil, tokenStatus(err)
	}
	return api.VerifyEmail204Response{}, nil
}

// ResendVerification queues a new verification mail for the caller.
func (s *Server) ResendVerification(ctx context.Context, _ api.ResendVerificationRequestObject) (api.ResendVerificationResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.recovery.ResendVerification(ctx, p, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.ResendVerification202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}
