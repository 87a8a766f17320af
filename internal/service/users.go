package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/domain"
)

// Users is the operators' management of users (the admin API: list,
// read, change, ban, end sessions, remove factors, delete, export) and a
// user's own user_metadata. Who may call what is decided before it, by the
// HTTP layer's one authentication step (operators only for the admin
// operations). It is safe for concurrent use.
type Users struct {
	store    UsersStore
	sessions *Sessions
	keys     *KeyAuth
	events   *EventLog
	mail     *Mail
	mailOn   bool
	clock    domain.Clock
	log      *slog.Logger
}

// NewUsers returns the users service, made with the shared pieces.
func NewUsers(sh Shared, store UsersStore) *Users {
	return &Users{store: store, sessions: sh.Sessions, keys: sh.Keys, events: sh.Events, mail: sh.Mail,
		mailOn: sh.Config.Recovery.Mail, clock: sh.Clock, log: sh.Log}
}

// The reasons recorded with sessions that operators end.
const (
	endReasonOperator = "operator"
	endReasonBanned   = "banned"
)

// ListUsers returns a page of the users that match the filter, newest
// first. Email is normalised and EmailPrefix lower-cased. Returns
// CodeInvalidRequest for a malformed email or a limit out of range.
func (us *Users) ListUsers(ctx context.Context, f domain.UserFilter, page PageRequest) ([]domain.UserSummary, *domain.Cursor, error) {
	if f.Email != "" {
		e, err := domain.NormalizeEmail(f.Email)
		if err != nil {
			return nil, nil, err
		}
		f.Email = e
	}
	f.EmailPrefix = strings.ToLower(strings.TrimSpace(f.EmailPrefix))
	f.Now = us.clock.Now()
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.UserSummary, error) {
		return us.store.ListUsers(ctx, f, after, limit)
	}, func(x *domain.UserSummary) domain.Cursor { return domain.Cursor{CreatedAt: x.CreatedAt, ID: x.ID} })
}

// UserDetail is a user as an operator reads them: never a password hash,
// a key hash or a factor's secret leaves the service in it (the HTTP
// layer's conversion leaves them out too).
type UserDetail struct {
	User     domain.UserSummary
	Sessions []domain.Session
	Keys     []domain.APIKey
	Factors  []domain.Factor
	Orgs     []domain.Organization
	// Events are set by Export only.
	Events []domain.Event
}

// detailItems is how many sessions, keys and organizations GetUser reads.
const detailItems = MaxPageLimit

// exportItems bounds each list of an export.
const exportItems = 100_000

// GetUser returns the user with their active sessions, personal API keys,
// factors and organizations (each at most detailItems). Returns
// CodeNotFound for an unknown user.
func (us *Users) GetUser(ctx context.Context, id uuid.UUID) (*UserDetail, error) {
	return us.detail(ctx, id, detailItems, false)
}

// Export returns everything stored about the user: GetUser's details with
// every item and the user's security events. Returns CodeNotFound for an
// unknown user.
func (us *Users) Export(ctx context.Context, id uuid.UUID) (*UserDetail, error) {
	return us.detail(ctx, id, exportItems, true)
}

// all reads the pages of a list until it ends or holds max items.
func all[T any](max int, fetch func(after *domain.Cursor, limit int) ([]T, error), pos func(*T) domain.Cursor) ([]T, error) {
	var out []T
	var after *domain.Cursor
	for len(out) < max {
		limit := min(MaxPageLimit, max-len(out))
		page, err := fetch(after, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < limit {
			break
		}
		c := pos(&page[len(page)-1])
		after = &c
	}
	return out, nil
}

func (us *Users) detail(ctx context.Context, id uuid.UUID, max int, events bool) (*UserDetail, error) {
	u, err := us.store.UserSummary(ctx, id)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return nil, err
	}
	d := &UserDetail{User: *u}
	now := us.clock.Now()
	if d.Sessions, err = all(max, func(after *domain.Cursor, limit int) ([]domain.Session, error) {
		return us.store.ListSessions(ctx, id, now, after, limit)
	}, sessionPos); err != nil {
		return nil, err
	}
	if d.Keys, err = all(max, func(after *domain.Cursor, limit int) ([]domain.APIKey, error) {
		return us.store.ListAPIKeys(ctx, domain.KeyOwner{UserID: id}, nil, after, limit)
	}, func(k *domain.APIKey) domain.Cursor { return domain.Cursor{CreatedAt: k.CreatedAt, ID: k.ID} }); err != nil {
		return nil, err
	}
	if d.Factors, err = us.store.ListFactors(ctx, id); err != nil {
		return nil, err
	}
	if d.Orgs, err = all(max, func(after *domain.Cursor, limit int) ([]domain.Organization, error) {
		return us.store.ListOrganizations(ctx, id, after, limit)
	}, func(o *domain.Organization) domain.Cursor { return domain.Cursor{CreatedAt: o.CreatedAt, ID: o.ID} }); err != nil {
		return nil, err
	}
	if events {
		if d.Events, err = all(max, func(after *domain.Cursor, limit int) ([]domain.Event, error) {
			var cur domain.Cursor
			if after != nil {
				cur = *after
			}
			return us.store.ListEvents(ctx, id, cur, limit)
		}, func(e *domain.Event) domain.Cursor { return domain.Cursor{CreatedAt: e.CreatedAt, ID: e.ID} }); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// UserUpdate is an operator's change to a user: nil fields stay as they
// are.
type UserUpdate struct {
	// Email is a new email, unverified unless EmailVerified is true.
	Email         *string
	EmailVerified *bool
	// BannedUntil bans the user until then; Unban lifts a ban (and clears
	// its reason).
	BannedUntil *time.Time
	Unban       bool
	BanReason   *string
	// AppMetadata and UserMetadata replace the stored objects: JSON
	// objects of at most domain.MaxMetadataBytes.
	AppMetadata  json.RawMessage
	UserMetadata json.RawMessage
}

// checkMetadata refuses metadata over domain.MaxMetadataBytes. Returns
// CodeInvalidRequest.
func checkMetadata(name string, b json.RawMessage) error {
	if len(b) > domain.MaxMetadataBytes {
		return domain.Errorf(domain.CodeInvalidRequest, "%s must be at most %d bytes serialised", name, domain.MaxMetadataBytes)
	}
	return nil
}

// metadataOrNil is nil for an empty object, so that "{}" clears.
func metadataOrNil(b json.RawMessage) json.RawMessage {
	if s := strings.TrimSpace(string(b)); s == "{}" || s == "null" || s == "" {
		return nil
	}
	return b
}

// UpdateUser applies an operator's change in one transaction that also
// writes its outbound events (user.updated with the changed field names;
// user.banned for a ban). A ban then revokes every session of the user
// through the shared revoke path: at once on this instance, within
// Config.SessionCacheTTL on the others. Returns CodeNotFound,
// CodeInvalidRequest (a malformed email, a reason over 500 bytes,
// metadata over the cap, a ban that ends in the past), CodeEmailTaken.
func (us *Users) UpdateUser(ctx context.Context, id uuid.UUID, upd UserUpdate, meta domain.RequestMeta) (*domain.UserSummary, error) {
	now := us.clock.Now()
	if upd.Email != nil {
		e, err := domain.NormalizeEmail(*upd.Email)
		if err != nil {
			return nil, err
		}
		upd.Email = &e
	}
	if upd.BanReason != nil && len(*upd.BanReason) > 500 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "ban_reason must be at most 500 bytes")
	}
	if upd.BannedUntil != nil && !upd.BannedUntil.After(now) {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "banned_until must be in the future (send null to lift a ban)")
	}
	if err := checkMetadata("app_metadata", upd.AppMetadata); err != nil {
		return nil, err
	}
	if err := checkMetadata("user_metadata", upd.UserMetadata); err != nil {
		return nil, err
	}
	banned, banChanged := false, false
	_, err := us.store.UpdateUser(ctx, id, now, func(u *domain.User) ([]domain.OutboundEvent, error) {
		var fields []string
		if upd.Email != nil && *upd.Email != u.Email {
			u.Email, u.EmailVerified, u.VerifiedAt = *upd.Email, false, nil
			fields = append(fields, "email", "email_verified")
		}
		if upd.EmailVerified != nil && *upd.EmailVerified != u.EmailVerified {
			u.EmailVerified = *upd.EmailVerified
			u.VerifiedAt = nil
			if u.EmailVerified {
				u.VerifiedAt = &now
			}
			if !slices.Contains(fields, "email_verified") {
				fields = append(fields, "email_verified")
			}
		}
		if upd.Unban && u.BannedUntil != nil {
			u.BannedUntil, u.BanReason = nil, ""
			banChanged = true
			fields = append(fields, "banned_until", "ban_reason")
		}
		if upd.BannedUntil != nil {
			t := upd.BannedUntil.UTC()
			u.BannedUntil = &t
			banned, banChanged = true, true
			fields = append(fields, "banned_until")
		}
		if upd.BanReason != nil && *upd.BanReason != u.BanReason {
			u.BanReason = *upd.BanReason
			if !slices.Contains(fields, "ban_reason") {
				fields = append(fields, "ban_reason")
			}
		}
		if upd.AppMetadata != nil {
			u.AppMetadata = metadataOrNil(upd.AppMetadata)
			fields = append(fields, "app_metadata")
		}
		if upd.UserMetadata != nil {
			u.UserMetadata = metadataOrNil(upd.UserMetadata)
			fields = append(fields, "user_metadata")
		}
		if len(fields) == 0 {
			return nil, nil
		}
		uid := u.ID
		evs := []domain.OutboundEvent{{Type: domain.OutUserUpdated, UserID: &uid, OrgID: u.OrgID, CreatedAt: now,
			Data: map[string]any{"user_id": u.ID.String(), "fields": fields}}}
		if banned {
			evs = append(evs, domain.OutboundEvent{Type: domain.OutUserBanned, UserID: &uid, OrgID: u.OrgID, CreatedAt: now,
				Data: map[string]any{"user_id": u.ID.String(), "banned_until": u.BannedUntil.Format(time.RFC3339), "reason": u.BanReason}})
		}
		return evs, nil
	})
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return nil, err
	}
	us.sessions.userChanged(id)
	if banChanged {
		// The key cache holds each key with its owner's ban: every
		// instance reads the user's keys again.
		if err := us.forgetKeys(ctx, id); err != nil {
			return nil, err
		}
	}
	if banned {
		if err := us.endSessions(ctx, id, endReasonBanned, meta); err != nil {
			return nil, err
		}
	}
	return us.store.UserSummary(ctx, id)
}

// forgetKeys drops every personal key of the user from every instance's
// key cache.
func (us *Users) forgetKeys(ctx context.Context, id uuid.UUID) error {
	keys, err := all(exportItems, func(after *domain.Cursor, limit int) ([]domain.APIKey, error) {
		return us.store.ListAPIKeys(ctx, domain.KeyOwner{UserID: id}, nil, after, limit)
	}, func(k *domain.APIKey) domain.Cursor { return domain.Cursor{CreatedAt: k.CreatedAt, ID: k.ID} })
	for i := range keys {
		us.keys.forgetKey(&keys[i])
	}
	return err
}

// EndSessions revokes every active session of the user through the
// shared revoke path, with one session.revoked outbound event carrying the
// count. Returns CodeNotFound for an unknown user.
func (us *Users) EndSessions(ctx context.Context, id uuid.UUID, meta domain.RequestMeta) error {
	return us.endSessions(ctx, id, endReasonOperator, meta)
}

func (us *Users) endSessions(ctx context.Context, id uuid.UUID, reason string, meta domain.RequestMeta) error {
	err := us.sessions.revoke(ctx, meta, nil, map[string]any{"reason": reason}, func(now time.Time) (uuid.UUID, []uuid.UUID, error) {
		ids, err := us.store.EndUserSessions(ctx, id, reason, now)
		return id, ids, err
	})
	if domain.IsCode(err, domain.CodeNotFound) {
		return domain.Errorf(domain.CodeNotFound, "user not found")
	}
	return err
}

// RemoveFactors removes the user's factor id (nil: every factor), for a
// support-led recovery: in one transaction with the mail that tells the
// user and an mfa.factor.removed outbound event per factor; then an
// mfa_factor_removed security event per factor, which the user sees.
// Returns CodeNotFound for an unknown user, or an unknown factor of theirs.
func (us *Users) RemoveFactors(ctx context.Context, userID uuid.UUID, id *uuid.UUID, meta domain.RequestMeta) error {
	u, err := us.store.UserByID(ctx, userID)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return err
	}
	now := us.clock.Now()
	m, err := us.supportMail(u, now)
	if err != nil {
		return err
	}
	removed, err := us.store.RemoveFactors(ctx, userID, id, m, now)
	if err != nil {
		return err
	}
	for i := range removed {
		f := &removed[i]
		us.events.record(ctx, domain.EventMFAFactorRemoved, meta, &userID, nil, nil,
			map[string]any{"factor_id": f.ID.String(), "type": string(f.Type), "by": "operator"})
	}
	if m != nil && len(removed) > 0 {
		us.mail.queued()
	}
	return nil
}

// supportMail returns the mail that tells the user an operator removed
// their factors; nil when mail is off or the user has no email.
func (us *Users) supportMail(u *domain.User, now time.Time) (*domain.OutboxMessage, error) {
	sealer := us.mail.outbox
	if !us.mailOn || sealer == nil || u.Email == "" {
		return nil, nil
	}
	data, err := json.Marshal(domain.MailData{Email: u.Email, ExpiresAt: now})
	if err != nil {
		return nil, err
	}
	id := uuid.New()
	payload, err := sealer.Seal(data, domain.OutboxPayloadLabel(id))
	if err != nil {
		return nil, err
	}
	uid := u.ID
	return &domain.OutboxMessage{ID: id, Template: domain.MailFactorsRemovedBySupport, Recipient: u.Email, UserID: &uid,
		Payload: payload, CreatedAt: now, NextAttemptAt: now, Priority: domain.MailPriorityAccount}, nil
}

// DeleteUser deletes the user and all they hold (see the store's
// DeleteUser), then drops their sessions, keys and user entry from every
// instance's caches. Returns CodeNotFound, or CodeConflict when they alone
// own an organization and deleteSoleOwnedOrgs is false.
func (us *Users) DeleteUser(ctx context.Context, id uuid.UUID, deleteSoleOwnedOrgs bool) error {
	d, err := us.store.DeleteUser(ctx, id, deleteSoleOwnedOrgs, us.clock.Now())
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return domain.Errorf(domain.CodeNotFound, "user not found")
		}
		return err
	}
	us.sessions.forget(d.Sessions...)
	for i := range d.Keys {
		us.keys.forgetKey(&d.Keys[i])
	}
	us.sessions.userChanged(id)
	return nil
}

// UpdateOwnMetadata replaces the principal's own user_metadata (app_metadata
// is the operators'), with a user.updated outbound event. Returns
// CodeNotFound for an organization key, CodeInvalidRequest over the cap.
func (us *Users) UpdateOwnMetadata(ctx context.Context, p *domain.Principal, userMetadata json.RawMessage) (*domain.User, error) {
	if p.UserID == uuid.Nil {
		return nil, domain.Errorf(domain.CodeNotFound, "an organization key has no user")
	}
	if err := checkMetadata("user_metadata", userMetadata); err != nil {
		return nil, err
	}
	now := us.clock.Now()
	u, err := us.store.UpdateUser(ctx, p.UserID, now, func(u *domain.User) ([]domain.OutboundEvent, error) {
		u.UserMetadata = metadataOrNil(userMetadata)
		uid := u.ID
		return []domain.OutboundEvent{{Type: domain.OutUserUpdated, UserID: &uid, OrgID: u.OrgID, CreatedAt: now,
			Data: map[string]any{"user_id": u.ID.String(), "fields": []string{"user_metadata"}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	us.sessions.userChanged(p.UserID)
	return u, nil
}

// Now returns the time on the service's clock, for answers that say
// whether a ban holds.
func (us *Users) Now() time.Time { return us.clock.Now() }
