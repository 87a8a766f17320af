package service

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// MaxImpersonationTTL is the longest an impersonation session (and its one
// access token) lasts; Config.AccessTTL when that is shorter.
const MaxImpersonationTTL = 15 * time.Minute

// Impersonation lets an operator act as a user for a short while, read
// only: the operator gate and the read-only rule are the HTTP layer's,
// applied to every operation at once. It is safe for concurrent use.
type Impersonation struct {
	cfg      Config
	store    ImpersonationStore
	sessions *Sessions
	events   *EventLog
}

// ImpersonationStore is the storage impersonation needs; the SQL store
// implements it.
type ImpersonationStore interface {
	// UserByID returns the user. Returns CodeNotFound if there is none.
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
}

// NewImpersonation returns the impersonation service.
func NewImpersonation(sh Shared, store ImpersonationStore) *Impersonation {
	return &Impersonation{cfg: sh.Config, store: store, sessions: sh.Sessions, events: sh.Events}
}

// Impersonate opens a dedicated session of the password account userID in
// which the principal's user (the operator) acts, and returns its access
// token: no refresh token, aal1 with amr ["impersonation"] whatever the
// user's factors, the act claim naming the operator, and session and token
// ending after MaxImpersonationTTL (or AccessTTL if shorter). The session
// is the user's like any other (listed, revocable, ended by a global
// logout or a password change), and an impersonation_started event naming
// the operator is recorded on the user's feed. Returns CodeNotFound for an
// unknown user or a delegated identity, CodeInvalidRequest when the
// principal has no user (an organization key).
func (im *Impersonation) Impersonate(ctx context.Context, p *domain.Principal, userID uuid.UUID, meta domain.RequestMeta) (*TokenSet, error) {
	if p.UserID == uuid.Nil {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "impersonation needs an operator's own credentials")
	}
	u, err := im.store.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.OrgID != nil {
		return nil, domain.Errorf(domain.CodeNotFound, "user not found")
	}
	operator, err := im.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	ttl := min(MaxImpersonationTTL, im.cfg.AccessTTL)
	actor := p.UserID
	ts, err := im.sessions.open(ctx, u, nil, meta, "", func(s *domain.Session) {
		s.ActorID = &actor
		s.AAL, s.AMR = domain.AAL1, []string{domain.AMRImpersonation}
		s.ExpiresAt = s.CreatedAt.Add(ttl)
		s.AbsoluteExpiresAt = s.ExpiresAt
	})
	if err != nil {
		return nil, err
	}
	im.events.record(ctx, domain.EventImpersonationStarted, meta, &u.ID, &ts.Session.ID, nil,
		map[string]any{"actor_id": actor.String(), "actor_email": operator.Email, "expires_at": ts.ExpiresAt})
	return ts, nil
}
