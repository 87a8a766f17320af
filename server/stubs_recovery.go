package server

import (
	"context"

	"github.com/latchauth/latch/api"
)

// ListEvents is not implemented yet.
func (s *Server) ListEvents(ctx context.Context, request api.ListEventsRequestObject) (api.ListEventsResponseObject, error) {
	return nil, notYet
}

// ChangePassword is not implemented yet.
func (s *Server) ChangePassword(ctx context.Context, request api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	return nil, notYet
}

// ForgotPassword is not implemented yet.
func (s *Server) ForgotPassword(ctx context.Context, request api.ForgotPasswordRequestObject) (api.ForgotPasswordResponseObject, error) {
	return nil, notYet
}

// ResetPassword is not implemented yet.
func (s *Server) ResetPassword(ctx context.Context, request api.ResetPasswordRequestObject) (api.ResetPasswordResponseObject, error) {
	return nil, notYet
}

// VerifyEmail is not implemented yet.
func (s *Server) VerifyEmail(ctx context.Context, request api.VerifyEmailRequestObject) (api.VerifyEmailResponseObject, error) {
	return nil, notYet
}

// ResendVerification is not implemented yet.
func (s *Server) ResendVerification(ctx context.Context, request api.ResendVerificationRequestObject) (api.ResendVerificationResponseObject, error) {
	return nil, notYet
}
