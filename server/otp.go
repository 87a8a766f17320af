package server

import (
	"context"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
)

// errNoOTP answers the email sign-in operations when the server has no
// OTP service.
var errNoOTP = domain.Errorf(domain.CodeNotFound, "email sign-in is not enabled")

// SignInWithOtp mails a sign-in link and code. It answers the same 202
// whether or not the email belongs to an account.
func (s *Server) SignInWithOtp(ctx context.Context, req api.SignInWithOtpRequestObject) (api.SignInWithOtpResponseObject, error) {
	if s.otp == nil {
		return nil, errNoOTP
	}
	b := req.Body
	if err := s.otp.SignIn(ctx, string(b.Email), b.CreateUser != nil && *b.CreateUser, deref(b.RedirectTo), metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.SignInWithOtp202JSONResponse{Status: api.AcceptedStatusAccepted}, nil
}

// VerifyOtp opens a session with a mailed code or link token, answered
// like a login.
func (s *Server) VerifyOtp(ctx context.Context, req api.VerifyOtpRequestObject) (api.VerifyOtpResponseObject, error) {
	if s.otp == nil {
		return nil, errNoOTP
	}
	b := req.Body
	email := ""
	if b.Email != nil {
		email = string(*b.Email)
	}
	t, err := s.otp.Verify(ctx, email, deref(b.Code), deref(b.Token), metaFrom(ctx))
	if err != nil {
		return nil, tokenStatus(err)
	}
	tr, err := s.loginTokens(ctx, t)
	if err != nil {
		return nil, err
	}
	return api.VerifyOtp200JSONResponse(tr), nil
}
