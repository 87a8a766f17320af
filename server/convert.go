package server

import (
	"github.com/google/uuid"

	"github.com/latchauth/latch/api"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/service"
)

// convertAll converts every element of a list for a response.
func convertAll[T, U any](in []T, f func(*T) U) []U {
	out := make([]U, len(in))
	for i := range in {
		out[i] = f(&in[i])
	}
	return out
}

func apiUser(u *domain.User) api.User {
	out := api.User{Id: u.ID, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt}
	if u.Email != "" {
		e := u.Email
		out.Email = &e
	}
	if u.OrgID != nil {
		id := *u.OrgID
		out.OrgId = &id
		ext := u.ExternalID
		out.ExternalId = &ext
	}
	out.Metadata = (*map[string]any)(apiMetadata(u.Metadata))
	out.AppMetadata = (*map[string]any)(apiMetadata(u.AppMetadata))
	out.UserMetadata = (*map[string]any)(apiMetadata(u.UserMetadata))
	return out
}

func apiTokens(t *service.TokenSet) api.TokenResponse {
	return api.TokenResponse{
		AccessToken:  t.AccessToken,
		TokenType:    api.TokenResponseTokenTypeBearer,
		ExpiresIn:    t.ExpiresIn,
		ExpiresAt:    t.ExpiresAt,
		RefreshToken: t.RefreshToken,
		SessionId:    t.Session.ID,
		User:         apiUser(&t.User),
		Aal:          apiAAL(t.Session.AAL),
	}
}

func apiSession(s *domain.Session, current uuid.UUID) api.Session {
	out := api.Session{
		Id: s.ID, UserId: s.UserID, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt,
		ExpiresAt: s.ExpiresAt, AbsoluteExpiresAt: s.AbsoluteExpiresAt, Current: s.ID == current,
	}
	if s.AAL != "" {
		aal := apiAAL(s.AAL)
		out.Aal = &aal
	}
	if s.UserAgent != "" {
		ua := s.UserAgent
		out.UserAgent = &ua
	}
	if s.IP != "" {
		ip := s.IP
		out.Ip = &ip
	}
	if s.OrgID != nil {
		id := *s.OrgID
		out.OrgId = &id
	}
	if s.ExternalID != "" {
		ext := s.ExternalID
		out.ExternalId = &ext
	}
	if s.ActorID != nil {
		id := *s.ActorID
		out.ActorId = &id
	}
	return out
}

// apiAAL is a session's level: "" (a row from before MFA) is aal1.
func apiAAL(aal string) api.AAL {
	if aal == "" {
		return api.Aal1
	}
	return api.AAL(aal)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// boolOr returns *b, or def when the parameter was not sent.
func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
