package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/latchauth/latch/internal/domain"
)

// The outbound events of the store's changes. Each builder below makes the
// event of one kind of change, with the payload that openapi.yaml declares
// for its type (the ...EventData schemas); none carries a secret. A change
// emits after its writes succeeded, so a change that fails or changes
// nothing emits nothing; and one event per kind of change, so that a bulk
// revocation writes one row whatever it revoked.

// Reasons of session.revoked and api_key.revoked.
const (
	reasonRevoked         = "revoked"
	reasonReuseDetected   = "reuse_detected"
	reasonPasswordChanged = "password_changed"
	reasonPasswordReset   = "password_reset"
	reasonSessionQuota    = "session_quota"
	reasonMemberRemoved   = "member_removed"
)

// emitEach emits the events that are not nil, in order, in tx.
func (s *Store) emitEach(ctx context.Context, tx *sqlx.Tx, evs ...*domain.OutboundEvent) error {
	for _, e := range evs {
		if e == nil {
			continue
		}
		if err := s.emit(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

func idPtr(id uuid.UUID) *uuid.UUID { return &id }

// putOpt sets data[k] to v unless v is the zero value of its kind.
func putOpt(data map[string]any, k string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case *uuid.UUID:
		if x == nil {
			return
		}
		v = *x
	case *time.Time:
		if x == nil {
			return
		}
		v = x.UTC()
	}
	data[k] = v
}

// userCreated is user.created for u, who came by source (signup,
// delegated).
func userCreated(u *domain.User, source string) *domain.OutboundEvent {
	data := map[string]any{"user_id": u.ID, "email_verified": u.EmailVerified, "source": source}
	putOpt(data, "email", u.Email)
	putOpt(data, "org_id", u.OrgID)
	putOpt(data, "external_id", u.ExternalID)
	return &domain.OutboundEvent{Type: domain.OutUserCreated, OrgID: u.OrgID, UserID: idPtr(u.ID), Data: data, CreatedAt: u.CreatedAt}
}

// sessionCreated is session.created for sess; nil for no session.
func sessionCreated(sess *domain.Session) *domain.OutboundEvent {
	if sess == nil {
		return nil
	}
	amr := sess.AMR
	if amr == nil {
		amr = []string{}
	}
	data := map[string]any{"session_id": sess.ID, "user_id": sess.UserID, "aal": aalOf(sess.AAL), "amr": amr,
		"expires_at": sess.AbsoluteExpiresAt.UTC()}
	putOpt(data, "org_id", sess.OrgID)
	putOpt(data, "ip", sess.IP)
	putOpt(data, "user_agent", sess.UserAgent)
	return &domain.OutboundEvent{Type: domain.OutSessionCreated, OrgID: sess.OrgID, UserID: idPtr(sess.UserID), Data: data, CreatedAt: sess.CreatedAt}
}

// sessionsRevoked is session.revoked for the user's sessions ids, one event
// for the whole change; nil when ids is empty (nothing was revoked).
func sessionsRevoked(userID uuid.UUID, orgID *uuid.UUID, ids []uuid.UUID, reason string, now time.Time) *domain.OutboundEvent {
	if len(ids) == 0 {
		return nil
	}
	return &domain.OutboundEvent{Type: domain.OutSessionRevoked, OrgID: orgID, UserID: idPtr(userID),
		Data: map[string]any{"user_id": userID, "session_ids": ids, "reason": reason}, CreatedAt: now}
}

// apiKeyCreated is api_key.created for k; rolledFrom, when not nil, is the
// key it replaces.
func apiKeyCreated(k *domain.APIKey, rolledFrom *domain.APIKey) *domain.OutboundEvent {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	data := map[string]any{"api_key_id": k.ID, "prefix": k.Prefix, "scopes": scopes}
	putOpt(data, "label", k.Label)
	putOpt(data, "user_id", k.UserID)
	putOpt(data, "org_id", k.OrgID)
	putOpt(data, "created_by", k.CreatedBy)
	putOpt(data, "expires_at", k.ExpiresAt)
	if rolledFrom != nil {
		data["rolled_from"] = rolledFrom.ID
		end := rolledFrom.ExpiresAt
		if rolledFrom.RevokedAt != nil {
			end = rolledFrom.RevokedAt
		}
		putOpt(data, "rolled_from_expires_at", end)
	}
	return &domain.OutboundEvent{Type: domain.OutAPIKeyCreated, OrgID: k.OrgID, UserID: keySubject(k), Data: data, CreatedAt: k.CreatedAt}
}

// keySubject is the user an event about the key is about: its owner, or
// for an organization key its creator.
func keySubject(k *domain.APIKey) *uuid.UUID {
	if k.UserID != nil {
		return k.UserID
	}
	return k.CreatedBy
}

// apiKeysRevoked is api_key.revoked for keys, which one change revoked and
// which share their owner (a user's personal keys, or an organization's);
// nil when keys is empty.
func apiKeysRevoked(keys []domain.APIKey, reason string, now time.Time) *domain.OutboundEvent {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(keys))
	for i := range keys {
		ids[i] = keys[i].ID
	}
	k := &keys[0]
	data := map[string]any{"api_key_ids": ids, "reason": reason}
	putOpt(data, "user_id", k.UserID)
	putOpt(data, "org_id", k.OrgID)
	e := &domain.OutboundEvent{Type: domain.OutAPIKeyRevoked, OrgID: k.OrgID, UserID: k.UserID, Data: data, CreatedAt: now}
	if len(keys) == 1 {
		e.UserID = keySubject(k)
	}
	return e
}

// memberAdded is organization.member.added for m; invitationID, when not
// nil, is the invitation accepted.
func memberAdded(m *domain.Member, invitationID *uuid.UUID) *domain.OutboundEvent {
	data := map[string]any{"org_id": m.OrgID, "user_id": m.UserID, "role": string(m.Role)}
	putOpt(data, "invitation_id", invitationID)
	return &domain.OutboundEvent{Type: domain.OutOrgMemberAdded, OrgID: idPtr(m.OrgID), UserID: idPtr(m.UserID), Data: data, CreatedAt: m.CreatedAt}
}
