package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// The admin API for users. Every operation here is an operator's: the
// validator's authentication refused anyone else before the handler runs
// (x-latch-scope admin:users:*), so the handlers check nothing of the
// caller.

// rawObject returns the JSON of a metadata object; nil for nil.
func rawObject(m *api.Metadata) (json.RawMessage, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(*m)
	if err != nil {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "metadata is not a JSON object")
	}
	return b, nil
}

// apiMetadata decodes stored metadata for a response; nil when none.
func apiMetadata(b json.RawMessage) *api.Metadata {
	if len(b) == 0 {
		return nil
	}
	var m api.Metadata
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil
	}
	return &m
}

func apiAdminUser(u *domain.UserSummary, now time.Time) api.AdminUser {
	out := api.AdminUser{Id: u.ID, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		Banned: u.Banned(now), BannedUntil: u.BannedUntil, BanReason: strPtr(u.BanReason),
		AppMetadata: apiMetadata(u.AppMetadata), UserMetadata: apiMetadata(u.UserMetadata),
		HasPassword: u.PasswordHash != "", FactorCount: u.FactorCount}
	if u.Email != "" {
		e := u.Email
		out.Email = &e
	}
	if u.OrgID != nil {
		id := *u.OrgID
		out.OrgId = &id
		out.ExternalId = strPtr(u.ExternalID)
	}
	return out
}

func apiMembership(o *domain.Organization) api.AdminMembership {
	created := o.CreatedAt
	return api.AdminMembership{Id: o.ID, Name: o.Name, Role: api.Role(o.Role), CreatedAt: &created}
}

// apiSessionOf converts a session an operator reads: none is theirs.
func apiSessionOf(s *domain.Session) api.Session { return apiSession(s, uuid.Nil) }

// ListAdminUsers lists and searches users.
func (s *Server) ListAdminUsers(ctx context.Context, req api.ListAdminUsersRequestObject) (api.ListAdminUsersResponseObject, error) {
	page, err := pageRequest(req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	pr := req.Params
	f := domain.UserFilter{OrgID: pr.OrgId, CreatedAfter: pr.CreatedAfter, CreatedBefore: pr.CreatedBefore, Banned: pr.Banned}
	if pr.Email != nil {
		f.Email = *pr.Email
	}
	if pr.EmailPrefix != nil {
		f.EmailPrefix = *pr.EmailPrefix
	}
	if pr.ExternalId != nil {
		f.ExternalID = *pr.ExternalId
	}
	users, next, err := s.users.ListUsers(ctx, f, page)
	if err != nil {
		return nil, err
	}
	now := s.users.Now()
	return api.ListAdminUsers200JSONResponse{Users: convertAll(users, func(u *domain.UserSummary) api.AdminUser { return apiAdminUser(u, now) }),
		NextCursor: nextCursor(next)}, nil
}

// GetAdminUser returns a user with their sessions, keys, factors and
// organizations.
func (s *Server) GetAdminUser(ctx context.Context, req api.GetAdminUserRequestObject) (api.GetAdminUserResponseObject, error) {
	d, err := s.users.GetUser(ctx, req.UserId)
	if err != nil {
		return nil, err
	}
	return api.GetAdminUser200JSONResponse{User: apiAdminUser(&d.User, s.users.Now()), Sessions: convertAll(d.Sessions, apiSessionOf),
		ApiKeys: convertAll(d.Keys, apiKey), Factors: apiFactors(d.Factors), Organizations: convertAll(d.Orgs, apiMembership)}, nil
}

// ExportAdminUser returns everything stored about a user.
func (s *Server) ExportAdminUser(ctx context.Context, req api.ExportAdminUserRequestObject) (api.ExportAdminUserResponseObject, error) {
	d, err := s.users.Export(ctx, req.UserId)
	if err != nil {
		return nil, err
	}
	now := s.users.Now()
	out := api.ExportAdminUser200JSONResponse{ExportedAt: now, User: apiAdminUser(&d.User, now), Sessions: convertAll(d.Sessions, apiSessionOf),
		ApiKeys: convertAll(d.Keys, apiKey), Factors: apiFactors(d.Factors), Organizations: convertAll(d.Orgs, apiMembership),
		Events: convertAll(d.Events, apiEvent)}
	if m := apiMetadata(d.User.Metadata); m != nil {
		mm := map[string]any(*m)
		out.Metadata = &mm
	}
	return out, nil
}

// UpdateAdminUser changes a user's email, ban or metadata.
func (s *Server) UpdateAdminUser(ctx context.Context, req api.UpdateAdminUserRequestObject) (api.UpdateAdminUserResponseObject, error) {
	b := req.Body
	upd := service.UserUpdate{Email: b.Email, EmailVerified: b.EmailVerified, BanReason: b.BanReason}
	if b.BannedUntil.IsSpecified() {
		if b.BannedUntil.IsNull() {
			upd.Unban = true
		} else {
			t := b.BannedUntil.MustGet()
			upd.BannedUntil = &t
		}
	}
	var err error
	if upd.AppMetadata, err = rawObject(b.AppMetadata); err != nil {
		return nil, err
	}
	if upd.UserMetadata, err = rawObject(b.UserMetadata); err != nil {
		return nil, err
	}
	u, err := s.users.UpdateUser(ctx, req.UserId, upd, metaFrom(ctx))
	if err != nil {
		return nil, err
	}
	return api.UpdateAdminUser200JSONResponse(apiAdminUser(u, s.users.Now())), nil
}

// RevokeAdminUserSessions ends every session of a user.
func (s *Server) RevokeAdminUserSessions(ctx context.Context, req api.RevokeAdminUserSessionsRequestObject) (api.RevokeAdminUserSessionsResponseObject, error) {
	if err := s.users.EndSessions(ctx, req.UserId, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeAdminUserSessions204Response{}, nil
}

// DeleteAdminUserFactors removes every second factor of a user.
func (s *Server) DeleteAdminUserFactors(ctx context.Context, req api.DeleteAdminUserFactorsRequestObject) (api.DeleteAdminUserFactorsResponseObject, error) {
	if err := s.users.RemoveFactors(ctx, req.UserId, nil, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.DeleteAdminUserFactors204Response{}, nil
}

// DeleteAdminUserFactor removes one second factor of a user.
func (s *Server) DeleteAdminUserFactor(ctx context.Context, req api.DeleteAdminUserFactorRequestObject) (api.DeleteAdminUserFactorResponseObject, error) {
	id := req.FactorId
	if err := s.users.RemoveFactors(ctx, req.UserId, &id, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return api.DeleteAdminUserFactor204Response{}, nil
}

// DeleteAdminUser deletes a user.
func (s *Server) DeleteAdminUser(ctx context.Context, req api.DeleteAdminUserRequestObject) (api.DeleteAdminUserResponseObject, error) {
	if err := s.users.DeleteUser(ctx, req.UserId, boolOr(req.Params.DeleteSoleOwnedOrgs, false)); err != nil {
		return nil, err
	}
	return api.DeleteAdminUser204Response{}, nil
}

// UpdateMe replaces the caller's own user_metadata.
func (s *Server) UpdateMe(ctx context.Context, req api.UpdateMeRequestObject) (api.UpdateMeResponseObject, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Body.UserMetadata
	raw, err := rawObject(&m)
	if err != nil {
		return nil, err
	}
	u, err := s.users.UpdateOwnMetadata(ctx, p, raw)
	if err != nil {
		return nil, err
	}
	return api.UpdateMe200JSONResponse(apiUser(u)), nil
}
