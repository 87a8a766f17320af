package server

import (
	"context"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// The user import's path and its body limit, which holds 1000 users with
// their hashes whatever Config.MaxBodyBytes says (the spec documents it).
const (
	importPath         = "/admin/users/import"
	maxImportBodyBytes = 1 << 20
)

// ImportUsers imports users with their password hashes, for operators (the
// gate is the validator's).
func (s *Server) ImportUsers(ctx context.Context, req api.ImportUsersRequestObject) (api.ImportUsersResponseObject, error) {
	recs := make([]service.ImportRecord, len(req.Body.Users))
	for i, u := range req.Body.Users {
		recs[i] = service.ImportRecord{Email: string(u.Email), EmailVerified: deref(u.EmailVerified),
			PasswordHash: deref(u.PasswordHash), ExternalID: deref(u.ExternalId), CreatedAt: u.CreatedAt,
			AppMetadata: deref(u.AppMetadata), UserMetadata: deref(u.UserMetadata)}
	}
	n, results, err := s.userImport.ImportUsers(ctx, recs)
	if err != nil {
		return nil, err
	}
	out := api.ImportUsers200JSONResponse{Created: n, Results: make([]api.ImportUserResult, len(results))}
	for i, r := range results {
		res := api.ImportUserResult{Index: r.Index}
		if r.Err != nil {
			code, msg := api.ErrorCode(domain.ErrorCode(r.Err)), domain.ErrorMessage(r.Err)
			res.Error, res.Message = &code, &msg
		} else {
			id := r.ID
			res.Id = &id
		}
		out.Results[i] = res
	}
	return out, nil
}

// ExportUsers returns a page of the password accounts, without secrets.
func (s *Server) ExportUsers(ctx context.Context, req api.ExportUsersRequestObject) (api.ExportUsersResponseObject, error) {
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	users, next, err := s.userImport.ExportUsers(ctx, page)
	if err != nil {
		return nil, err
	}
	out := api.ExportUsers200JSONResponse{Users: make([]api.ExportedUser, len(users)), NextCursor: nextCursor(next)}
	for i := range users {
		u := &users[i]
		hasPassword := u.PasswordHash != ""
		out.Users[i] = api.ExportedUser{Id: u.ID, Email: u.Email, EmailVerified: u.EmailVerified,
			ExternalId: strPtr(u.ExternalID), HasPassword: &hasPassword, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	}
	return out, nil
}

// ImpersonateUser opens a short, read-only impersonation session of a
// user for an operator.
func (s *Server) ImpersonateUser(ctx context.Context, req api.ImpersonateUserRequestObject) (api.ImpersonateUserResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.impersonation.Impersonate(ctx, p, req.UserId, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.ImpersonateUser200JSONResponse{AccessToken: t.AccessToken, TokenType: api.ImpersonationTokenTokenTypeBearer,
		ExpiresIn: t.ExpiresIn, ExpiresAt: t.ExpiresAt, SessionId: t.Session.ID, UserId: t.User.ID}, nil
}

// deref is *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
