package service

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/domain"
	"github.com/latchauth/latch/internal/token"
)

// KeyAuth is what authenticates API keys and the tokens exchanged from
// them: the key cache (apiKeyState) with its lookups, the record of a
// key's use, forgetting changed keys on every instance, and the operator
// rule. APIKeys authenticates presented keys with it; the core Service the
// bearer tokens exchanged from keys; every feature that revokes keys in
// bulk (a logout, a password change, removing a member) forgets them
// through it.
type KeyAuth struct {
	cfg     APIKeyConfig
	store   keyAuthStore
	state   *apiKeyState
	changes *changes
	events  *EventLog
	metrics Metrics
	clock   domain.Clock
	log     *slog.Logger
}

// checkOwner refuses a personal key (or a token exchanged from one) of a
// banned user with CodeUserBanned. The ban is read with the key, into its
// cache entry; a ban or its lifting forgets the owner's keys on this
// instance at once and on the others by notification (within
// APIKeyConfig.CacheTTL when notifications fail).
func checkOwner(e *keyEntry, now time.Time) error {
	if e.ownerBannedUntil != nil && now.Before(*e.ownerBannedUntil) {
		return domain.ErrBanned()
	}
	return nil
}

// keyAuthStore is what KeyAuth needs of the store.
type keyAuthStore interface {
	APIKeyByHash(ctx context.Context, hash []byte) (*domain.APIKey, error)
	APIKeyByID(ctx context.Context, id uuid.UUID) (*domain.APIKey, error)
	TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, every time.Duration) (bool, error)
	UserByID(ctx context.Context, id uuid.UUID) (*domain.User, error)
}

// keyByHash returns the cached entry of the key with the hash, loading it
// on a miss. Returns CodeInvalidToken for an unknown key.
func (ka *KeyAuth) keyByHash(ctx context.Context, h apikey.Hash) (*keyEntry, error) {
	st := ka.state
	if e, ok := st.byHash.Get(h); ok {
		ka.metrics.Cache("api_key", true)
		return e, nil
	}
	ka.metrics.Cache("api_key", false)
	if _, ok := st.misses.Get(h); ok {
		return nil, errBadKey
	}
	gh, gi := st.generations()
	k, err := ka.store.APIKeyByHash(ctx, h[:])
	if domain.IsCode(err, domain.CodeNotFound) {
		st.misses.Add(h, struct{}{})
		return nil, errBadKey
	}
	if err != nil {
		return nil, err
	}
	e := newKeyEntry(k)
	st.remember(gh, gi, e)
	return e, nil
}

// keyByID returns the cached entry of the key, loading it on a miss.
// Returns CodeInvalidToken for an unknown key.
func (ka *KeyAuth) keyByID(ctx context.Context, id uuid.UUID) (*keyEntry, error) {
	st := ka.state
	if e, ok := st.byID.Get(id); ok {
		return e, nil
	}
	gh, gi := st.generations()
	k, err := ka.store.APIKeyByID(ctx, id)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, errBadKey
	}
	if err != nil {
		return nil, err
	}
	e := newKeyEntry(k)
	st.remember(gh, gi, e)
	return e, nil
}

// forgetKey drops a key that changed here from the caches, so that this
// instance sees the change at once.
func (ka *KeyAuth) forgetKey(k *domain.APIKey) {
	var h apikey.Hash
	copy(h[:], k.Hash)
	ka.state.forget(k.ID, &h)
	ka.changes.publish(TopicAPIKey, k.ID.String())
}

// forgetKeyID drops a key that changed on another instance from this
// instance's caches.
func (ka *KeyAuth) forgetKeyID(id uuid.UUID) {
	ka.state.forget(id, nil)
}

// touchKey records a use of the key unless this instance recorded one less
// than keyTouchEvery ago; the store's conditional update coalesces the
// writes of several instances. A failure is logged, never returned: a
// busy database must not refuse a valid key.
func (ka *KeyAuth) touchKey(ctx context.Context, e *keyEntry, now time.Time) {
	last := e.lastUsed.Load()
	if last != 0 && now.Sub(time.UnixMicro(last)) < keyTouchEvery {
		return
	}
	if !e.lastUsed.CompareAndSwap(last, now.UnixMicro()) {
		return // another request of this instance is writing it
	}
	if _, err := ka.store.TouchAPIKey(context.WithoutCancel(ctx), e.id, now, keyTouchEvery); err != nil {
		e.lastUsed.Store(last)
		ka.log.Warn("record API key use", "key_id", e.id, "err", err)
	}
}

// revokedKeys drops keys revoked in bulk from this instance's cache and
// records one event per key.
func (ka *KeyAuth) revokedKeys(ctx context.Context, keys []domain.APIKey, actor *uuid.UUID, meta domain.RequestMeta, reason string) {
	for i := range keys {
		k := &keys[i]
		ka.forgetKey(k)
		detail := map[string]any{"reason": reason}
		if k.OrgID != nil {
			detail["org_id"] = k.OrgID.String()
		}
		uid := actor
		if uid == nil {
			uid = k.UserID
		}
		ka.events.record(ctx, domain.EventAPIKeyRevoked, meta, uid, nil, &k.ID, detail)
	}
}

// authenticateExchanged accepts an access token exchanged from an API key,
// as that key with the token's scopes, only while the key is active: it
// goes through the same cache as AuthenticateAPIKey, so a revoked key's
// tokens are refused at once here and within APIKeyConfig.CacheTTL
// elsewhere. Returns CodeInvalidToken otherwise.
func (ka *KeyAuth) authenticateExchanged(ctx context.Context, c *token.Claims) (*domain.Principal, error) {
	invalid := domain.Errorf(domain.CodeInvalidToken, "the access token is invalid")
	kid, err := uuid.Parse(c.KeyID)
	if err != nil || c.SID != "" {
		return nil, invalid
	}
	e, err := ka.keyByID(ctx, kid)
	if err != nil {
		if domain.IsCode(err, domain.CodeInvalidToken) {
			return nil, invalid
		}
		return nil, err
	}
	now := ka.clock.Now()
	if !e.active(now) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the API key of this token is revoked or expired")
	}
	if err := checkOwner(e, now); err != nil {
		return nil, err
	}
	// The token must describe the key it names.
	if e.orgID != nil {
		if c.OrgID != e.orgID.String() || c.Subject != e.orgID.String() {
			return nil, invalid
		}
	} else if c.OrgID != "" || c.Subject != e.userID.String() {
		return nil, invalid
	}
	var scopes []string
	if c.Scope != "" {
		scopes = strings.Split(c.Scope, " ")
	}
	for _, sc := range scopes {
		if !slices.Contains(e.scopes, sc) {
			return nil, invalid
		}
	}
	p := e.principal()
	p.Scopes = scopes
	p.Exchanged = true
	if c.ExpiresAt != nil && (p.ExpiresAt == nil || c.ExpiresAt.Time.Before(*p.ExpiresAt)) {
		exp := c.ExpiresAt.Time.UTC()
		p.ExpiresAt = &exp
	}
	return p, nil
}

// RequireOperator checks that p is an operator: a personal API key for
// which isOperatorKey holds, or a session (not a delegated one) of a user
// whose verified email is one of the operators'. The caller checks the
// scope and the assurance the operation needs. Returns
// CodeInsufficientPermissions for anyone else, CodeUnavailable when the
// store is down.
func (ka *KeyAuth) RequireOperator(ctx context.Context, p *domain.Principal) error {
	var ok bool
	var err error
	switch {
	case p.Kind == domain.PrincipalSession && p.OrgID == nil:
		var u *domain.User
		u, err = ka.operatorUser(ctx, p.UserID)
		ok = u != nil
	default:
		ok, err = ka.isOperatorKey(ctx, p)
	}
	if err != nil {
		return err
	}
	if !ok {
		return domain.Errorf(domain.CodeInsufficientPermissions, "this operation is for operators only")
	}
	return nil
}

// operatorUser returns the user when their verified email is one of the
// operators', else nil.
func (ka *KeyAuth) operatorUser(ctx context.Context, userID uuid.UUID) (*domain.User, error) {
	u, err := ka.store.UserByID(ctx, userID)
	if domain.IsCode(err, domain.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if u.Email == "" || !u.EmailVerified || u.VerifiedAt == nil || !slices.Contains(ka.cfg.OperatorEmails, u.Email) {
		return nil, nil
	}
	return u, nil
}

// isOperatorKey reports whether p is a personal API key of an operator
// (LATCH_OPERATOR_EMAILS) whose owner verified that email before the key
// was made: a key created while someone else held an unverified account
// with the operator's address never gains operator power. The caller
// checks the scope the operation needs.
func (ka *KeyAuth) isOperatorKey(ctx context.Context, p *domain.Principal) (bool, error) {
	if p.Kind != domain.PrincipalAPIKey || p.Exchanged || p.OrgID != nil || p.UserID == uuid.Nil {
		return false, nil
	}
	owner, err := ka.operatorUser(ctx, p.UserID)
	if owner == nil || err != nil {
		return false, err
	}
	e, err := ka.keyByID(ctx, p.KeyID)
	if err != nil {
		return false, err
	}
	return owner.VerifiedAt.Before(e.createdAt), nil
}
