package service

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/latchauth/latch/internal/apikey"
	"github.com/latchauth/latch/internal/clockcache"
	"github.com/latchauth/latch/internal/domain"
)

// DefaultAPIKeyConfig returns the defaults of APIKeyConfig: keys cached
// for 5 s, exchanged tokens of at most 1 h, no operators. New applies them
// to the fields left zero.
func DefaultAPIKeyConfig() APIKeyConfig {
	return APIKeyConfig{CacheTTL: 5 * time.Second, ExchangeMaxTTL: time.Hour}
}

// keyTouchEvery is how often at most a key's last_used_at is written: a key
// used on every request costs one write a minute, not one per request.
const keyTouchEvery = time.Minute

// APIKeyConfig configures API keys, token exchange and operator lookups.
type APIKeyConfig struct {
	// CacheTTL bounds how long an instance keeps accepting an API key, and
	// the access tokens exchanged from it, after another instance revoked,
	// rolled or otherwise changed it: a verified key is cached in process for
	// at most CacheTTL (default 5 s). The instance that revokes or rolls a
	// key drops it from its cache at once, so there the change is immediate.
	// Expiry needs no cache bound: it is checked on every request.
	CacheTTL time.Duration
	// ExchangeMaxTTL caps the lifetime of an exchanged access token (default
	// 1 h).
	ExchangeMaxTTL time.Duration
	// OperatorEmails are the normalised emails of the operators whose
	// personal keys with users:read may look users up by email. An operator
	// must also have verified the email, so that nobody can become one by
	// signing up first with an operator's address.
	OperatorEmails []string
}

func (c APIKeyConfig) withDefaults() APIKeyConfig {
	def := DefaultAPIKeyConfig()
	if c.CacheTTL <= 0 {
		c.CacheTTL = def.CacheTTL
	}
	if c.ExchangeMaxTTL <= 0 {
		c.ExchangeMaxTTL = def.ExchangeMaxTTL
	}
	ops := make([]string, 0, len(c.OperatorEmails))
	for _, e := range c.OperatorEmails {
		if n, err := domain.NormalizeEmail(e); err == nil {
			ops = append(ops, n)
		}
	}
	c.OperatorEmails = ops
	return c
}

// apiKeyState is the in-process cache of verified keys. A key is looked up
// by hash (presented keys) or by id (exchanged tokens); the two caches hold
// the same entries and a change here or elsewhere removes both. Both are
// guardedCaches, so a lookup that raced with a change never caches what it
// read before it, and nothing is cached while degraded. Unknown hashes are
// remembered too, so that a flood of well-formed but unknown keys does not
// reach the database more than once per hash and CacheTTL.
type apiKeyState struct {
	byHash *guardedCache[apikey.Hash, *keyEntry]
	byID   *guardedCache[uuid.UUID, *keyEntry]
	misses *clockcache.Cache[apikey.Hash, struct{}]
}

// newAPIKeyState returns the caches of keys, whose entries live for ttl as
// now (the service's clock) tells.
func newAPIKeyState(ttl time.Duration, degraded func() bool, now func() time.Time) *apiKeyState {
	return &apiKeyState{
		byHash: newGuardedCache(clockcache.New[apikey.Hash, *keyEntry](100_000, ttl, now), degraded),
		byID:   newGuardedCache(clockcache.New[uuid.UUID, *keyEntry](100_000, ttl, now), degraded),
		misses: clockcache.New[apikey.Hash, struct{}](10_000, ttl, now),
	}
}

// generations are taken before a store read whose entry remember may cache.
func (st *apiKeyState) generations() (byHash, byID uint64) {
	return st.byHash.Generation(), st.byID.Generation()
}

// remember caches an entry read from the store after generations returned
// gh and gi, unless the key changed meanwhile (see guardedCache.Fill).
func (st *apiKeyState) remember(gh, gi uint64, e *keyEntry) {
	st.byHash.Fill(gh, e.hash, e)
	st.byID.Fill(gi, e.id, e)
}

// forget drops the key with the id (and, when known, its hash) from both
// caches; lookups under way no longer cache what they read.
func (st *apiKeyState) forget(id uuid.UUID, hash *apikey.Hash) {
	if hash == nil {
		if e, ok := st.byID.Peek(id); ok {
			hash = &e.hash
		}
	}
	if hash != nil {
		st.byHash.Forget(*hash)
	} else {
		st.byHash.Forget()
	}
	st.byID.Forget(id)
}

// purge drops every key.
func (st *apiKeyState) purge() {
	st.byHash.Purge()
	st.byID.Purge()
}

// keyEntry is what authentication needs of a key. Everything but lastUsed
// is immutable; a changed key gets a new entry.
type keyEntry struct {
	id        uuid.UUID
	hash      apikey.Hash
	userID    uuid.UUID
	orgID     *uuid.UUID
	scopes    []string
	createdAt time.Time
	expiresAt *time.Time
	revoked   bool
	// ownerBannedUntil is the ban of a personal key's owner when the key
	// was read; a ban or its lifting forgets the owner's keys everywhere.
	ownerBannedUntil *time.Time
	// lastUsed is the last use written to the store, in Unix microseconds
	// (0: never), so that this instance writes at most once per
	// keyTouchEvery.
	lastUsed atomic.Int64
}

func newKeyEntry(k *domain.APIKey) *keyEntry {
	e := &keyEntry{id: k.ID, orgID: k.OrgID, scopes: k.Scopes, createdAt: k.CreatedAt, expiresAt: k.ExpiresAt, revoked: k.RevokedAt != nil,
		ownerBannedUntil: k.OwnerBannedUntil}
	copy(e.hash[:], k.Hash)
	if k.UserID != nil {
		e.userID = *k.UserID
	}
	if k.LastUsedAt != nil {
		e.lastUsed.Store(k.LastUsedAt.UnixMicro())
	}
	return e
}

func (e *keyEntry) active(now time.Time) bool {
	return !e.revoked && (e.expiresAt == nil || now.Before(*e.expiresAt))
}

func (e *keyEntry) principal() *domain.Principal {
	return &domain.Principal{Kind: domain.PrincipalAPIKey, UserID: e.userID, OrgID: e.orgID, KeyID: e.id, Scopes: e.scopes, ExpiresAt: e.expiresAt}
}

var errBadKey = domain.Errorf(domain.CodeInvalidToken, "the API key is invalid")

// RequireOperator checks that p is an operator (see KeyAuth.RequireOperator).
func (a *APIKeys) RequireOperator(ctx context.Context, p *domain.Principal) error {
	return a.keys.RequireOperator(ctx, p)
}

// AuthenticateAPIKey verifies an API key and returns its principal. A key
// whose prefix, length or checksum is wrong is refused before any store
// access. A well-formed key is looked up by its SHA-256 (an indexed lookup,
// never a comparison of secrets) through an in-process cache: a key revoked
// on this instance is refused at once, one revoked elsewhere within
// APIKeyConfig.CacheTTL. Its last use is recorded at most once a minute.
// Returns CodeInvalidToken for a malformed, unknown, revoked or expired key,
// CodeUserBanned for a personal key of a banned user, CodeUnavailable when
// the store is down.
func (a *APIKeys) AuthenticateAPIKey(ctx context.Context, key string) (*domain.Principal, error) {
	parsed, err := apikey.Parse(key)
	if err != nil {
		return nil, errBadKey
	}
	e, err := a.keys.keyByHash(ctx, parsed.Hash)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	if e.revoked {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the API key is revoked")
	}
	if !e.active(now) {
		return nil, domain.Errorf(domain.CodeInvalidToken, "the API key has expired")
	}
	if (parsed.Kind == apikey.Organization) != (e.orgID != nil) {
		return nil, errBadKey
	}
	if err := checkOwner(e, now); err != nil {
		return nil, err
	}
	a.keys.touchKey(ctx, e, now)
	return e.principal(), nil
}

// APIKeys is API keys, personal and organization ones: their
// authentication (through the shared KeyAuth and its cache), creation,
// listing, revocation and roll. Exchanging them for access tokens, and
// introspecting and revoking tokens, are OAuth's. It is safe for concurrent
// use.
type APIKeys struct {
	quotas Quotas
	store  APIKeyStore
	clock  domain.Clock
	events *EventLog
	keys   *KeyAuth
	// orgs decides what a principal may do with an organization's keys.
	orgs *Orgs
}

// NewAPIKeys returns the API-key service, made with the shared pieces.
func NewAPIKeys(sh Shared, store APIKeyStore, orgs *Orgs) *APIKeys {
	return &APIKeys{quotas: sh.Config.Quotas, store: store, clock: sh.Clock, events: sh.Events, keys: sh.Keys, orgs: orgs}
}

// CreateKeyRequest asks for a new API key.
type CreateKeyRequest struct {
	Label     string
	Scopes    []string
	ExpiresAt *time.Time
}

// CreatedKey is a new key with its secret, which is shown once.
type CreatedKey struct {
	Key    domain.APIKey
	Secret apikey.Secret
}

// keyRealm is the set of keys a principal manages in one call (a user's
// personal keys or an organization's keys) and what it may grant them.
type keyRealm struct {
	owner domain.KeyOwner
	kind  apikey.Kind
	// actor is the user acting, for created_by and events; nil for an
	// organization key.
	actor *uuid.UUID
	// grant returns CodeInsufficientPermissions when the principal may not
	// give a key the scope.
	grant func(scope string) error
	orgID *uuid.UUID
	// notAfter is the acting credential's own expiry (see
	// domain.Principal.ExpiresAt): no key of this realm outlives it.
	notAfter *time.Time
}

// capExpiry returns exp capped at the realm's notAfter.
func (r *keyRealm) capExpiry(exp *time.Time) *time.Time {
	if r.notAfter == nil || (exp != nil && !exp.After(*r.notAfter)) {
		return exp
	}
	t := *r.notAfter
	return &t
}

func (r *keyRealm) event(typ string) (string, map[string]any) {
	if r.orgID != nil {
		return typ, map[string]any{"org_id": r.orgID.String()}
	}
	return typ, nil
}

// personalRealm is the principal's personal keys. A user session manages
// them all and may grant any scope; a personal API key only what it holds
// itself; an organization key and a delegated session have none.
func (a *APIKeys) personalRealm(p *domain.Principal, need string) (*keyRealm, error) {
	switch {
	case p.Kind == domain.PrincipalSession && p.OrgID == nil:
		uid := p.UserID
		return &keyRealm{owner: domain.KeyOwner{UserID: uid}, kind: apikey.Personal, actor: &uid,
			grant: func(string) error { return nil }, notAfter: p.ExpiresAt}, nil
	case p.Kind == domain.PrincipalSession:
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "a delegated session cannot manage API keys")
	case p.OrgID != nil || p.UserID == uuid.Nil:
		return nil, domain.Errorf(domain.CodeInsufficientPermissions, "an organization key has no personal API keys; use /organizations/{org_id}/api-keys")
	}
	if !p.HasScope(need) {
		return nil, missingScope(need)
	}
	uid := p.UserID
	return &keyRealm{owner: domain.KeyOwner{UserID: uid}, kind: apikey.Personal, actor: &uid, notAfter: p.ExpiresAt,
		grant: func(scope string) error {
			if !p.HasScope(scope) {
				return domain.Errorf(domain.CodeInsufficientPermissions, "this API key does not hold the scope %q, so it cannot grant it", scope)
			}
			return nil
		}}, nil
}

// orgRealm is an organization's keys, as the principal may manage them:
// see orgAccess.
func (a *APIKeys) orgRealm(ctx context.Context, p *domain.Principal, orgID uuid.UUID, need string) (*keyRealm, error) {
	acc, err := a.orgs.orgAccess(ctx, p, orgID)
	if err != nil {
		return nil, err
	}
	if err := acc.require(need); err != nil {
		return nil, err
	}
	if need == domain.ScopeKeysWrite {
		if err := a.orgs.requireMemberMFA(ctx, acc); err != nil {
			return nil, err
		}
	}
	r := &keyRealm{owner: domain.KeyOwner{OrgID: orgID}, kind: apikey.Organization, grant: acc.grant, orgID: &acc.org.ID, notAfter: p.ExpiresAt}
	if p.UserID != uuid.Nil {
		uid := p.UserID
		r.actor = &uid
	}
	return r, nil
}

func missingScope(scope string) error {
	return domain.Errorf(domain.CodeInsufficientPermissions, "this operation needs the scope %q", scope)
}

// normalizeScopes checks every scope and returns them sorted and unique.
// Returns CodeInvalidRequest for a malformed or unknown built-in scope.
func normalizeScopes(in []string) ([]string, error) {
	if len(in) > 50 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "a key holds at most 50 scopes")
	}
	out := make([]string, 0, len(in))
	for _, sc := range in {
		if err := domain.CheckScope(sc); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// newKey makes a key of the realm; grant decides every scope.
func (a *APIKeys) newKey(r *keyRealm, label string, scopes []string, expiresAt *time.Time, now time.Time) (*CreatedKey, error) {
	label = strings.TrimSpace(label)
	if label == "" || len(label) > 100 {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "label must be 1 to 100 bytes")
	}
	for _, sc := range scopes {
		if err := r.grant(sc); err != nil {
			return nil, err
		}
	}
	secret, err := apikey.Generate(r.kind)
	if err != nil {
		return nil, err
	}
	h := secret.Hash()
	k := domain.APIKey{ID: uuid.New(), CreatedBy: r.actor, Label: label, Scopes: scopes, Prefix: secret.DisplayPrefix(),
		Hash: h[:], CreatedAt: now, ExpiresAt: expiresAt}
	if r.owner.OrgID != uuid.Nil {
		id := r.owner.OrgID
		k.OrgID = &id
	} else {
		id := r.owner.UserID
		k.UserID = &id
	}
	return &CreatedKey{Key: k, Secret: secret}, nil
}

// requireVerified returns CodeEmailNotVerified unless the user acting has
// verified their email: nobody holds a key for an address they do not
// control (an account pre-registered with someone else's address stays
// keyless until its owner reclaims it, and a reclaim revokes every key).
func (a *APIKeys) requireVerified(ctx context.Context, actor *uuid.UUID) error {
	if actor == nil {
		return nil
	}
	u, err := a.store.UserByID(ctx, *actor)
	if err != nil {
		return err
	}
	if !u.EmailVerified {
		return domain.Errorf(domain.CodeEmailNotVerified, "verify your email address before creating API keys")
	}
	return nil
}

// checkKeyQuota returns CodeQuotaExceeded when the owner already has as
// many active keys as the quota allows.
func (a *APIKeys) checkKeyQuota(ctx context.Context, owner domain.KeyOwner, now time.Time) error {
	max := a.quotas.APIKeys
	if max <= 0 {
		return nil
	}
	n, err := a.store.CountActiveAPIKeys(ctx, owner, now)
	if err != nil {
		return err
	}
	if n >= max {
		return domain.Errorf(domain.CodeQuotaExceeded, "at most %d active API keys per owner; revoke one first", max)
	}
	return nil
}

func (a *APIKeys) createKey(ctx context.Context, r *keyRealm, req CreateKeyRequest, meta domain.RequestMeta) (*CreatedKey, error) {
	scopes, err := normalizeScopes(req.Scopes)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	var exp *time.Time
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			return nil, domain.Errorf(domain.CodeInvalidRequest, "expires_at must be in the future")
		}
		exp = &t
	}
	exp = r.capExpiry(exp)
	ck, err := a.newKey(r, req.Label, scopes, exp, now)
	if err != nil {
		return nil, err
	}
	if err := a.requireVerified(ctx, r.actor); err != nil {
		return nil, err
	}
	if err := a.checkKeyQuota(ctx, r.owner, now); err != nil {
		return nil, err
	}
	if err := a.store.CreateAPIKey(ctx, &ck.Key); err != nil {
		return nil, err
	}
	a.keys.state.misses.Remove(ck.Secret.Hash())
	typ, detail := r.event(domain.EventAPIKeyCreated)
	a.events.record(ctx, typ, meta, r.actor, nil, &ck.Key.ID, detail)
	return ck, nil
}

func (a *APIKeys) getKey(ctx context.Context, r *keyRealm, id uuid.UUID) (*domain.APIKey, error) {
	k, err := a.store.APIKeyByID(ctx, id)
	if err != nil {
		if domain.IsCode(err, domain.CodeNotFound) {
			return nil, domain.Errorf(domain.CodeNotFound, "API key not found")
		}
		return nil, err
	}
	if k.Owner() != r.owner {
		return nil, domain.Errorf(domain.CodeNotFound, "API key not found")
	}
	return k, nil
}

func (a *APIKeys) revokeKey(ctx context.Context, r *keyRealm, id uuid.UUID, meta domain.RequestMeta) error {
	k, err := a.store.RevokeAPIKey(ctx, r.owner, id, a.clock.Now())
	if err != nil {
		return err
	}
	a.keys.forgetKey(k)
	typ, detail := r.event(domain.EventAPIKeyRevoked)
	a.events.record(ctx, typ, meta, r.actor, nil, &k.ID, detail)
	return nil
}

// rollKey replaces a key by a new one with the same label, scopes and
// expiry. The caller must be able to grant every scope of the key: rolling
// hands out a secret, so it is held to the same cap as creating.
func (a *APIKeys) rollKey(ctx context.Context, r *keyRealm, id uuid.UUID, overlap time.Duration, meta domain.RequestMeta) (*CreatedKey, error) {
	if overlap < 0 || overlap > 30*24*time.Hour {
		return nil, domain.Errorf(domain.CodeInvalidRequest, "overlap_seconds must be between 0 and 2592000")
	}
	old, err := a.getKey(ctx, r, id)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	if !old.Active(now) || old.RolledTo != nil {
		return nil, domain.Errorf(domain.CodeConflict, "the API key is revoked, expired or already rolled")
	}
	ck, err := a.newKey(r, old.Label, old.Scopes, r.capExpiry(old.ExpiresAt), now)
	if err != nil {
		return nil, err
	}
	updated, err := a.store.RollAPIKey(ctx, r.owner, id, &ck.Key, now, overlap)
	if err != nil {
		return nil, err
	}
	a.keys.forgetKey(updated)
	typ, detail := r.event(domain.EventAPIKeyRolled)
	if detail == nil {
		detail = map[string]any{}
	}
	detail["new_key_id"] = ck.Key.ID.String()
	detail["overlap_seconds"] = int(overlap / time.Second)
	a.events.record(ctx, typ, meta, r.actor, nil, &old.ID, detail)
	return ck, nil
}

// CreateAPIKey creates a personal key of the principal's user. Returns
// CodeInvalidRequest for a bad label, scope or expiry, and
// CodeInsufficientPermissions for a scope the principal cannot grant.
func (a *APIKeys) CreateAPIKey(ctx context.Context, p *domain.Principal, req CreateKeyRequest, meta domain.RequestMeta) (*CreatedKey, error) {
	r, err := a.personalRealm(p, domain.ScopeKeysWrite)
	if err != nil {
		return nil, err
	}
	return a.createKey(ctx, r, req, meta)
}

// ListAPIKeys returns a page of the user's personal keys, newest first.
// Returns CodeInvalidRequest for a bad page.
func (a *APIKeys) ListAPIKeys(ctx context.Context, p *domain.Principal, page PageRequest) ([]domain.APIKey, *domain.Cursor, error) {
	r, err := a.personalRealm(p, domain.ScopeKeysRead)
	if err != nil {
		return nil, nil, err
	}
	return a.listKeys(ctx, r, nil, page)
}

func (a *APIKeys) listKeys(ctx context.Context, r *keyRealm, createdBy *uuid.UUID, page PageRequest) ([]domain.APIKey, *domain.Cursor, error) {
	return listPage(page, func(after *domain.Cursor, limit int) ([]domain.APIKey, error) {
		return a.store.ListAPIKeys(ctx, r.owner, createdBy, after, limit)
	}, func(k *domain.APIKey) domain.Cursor { return domain.Cursor{CreatedAt: k.CreatedAt, ID: k.ID} })
}

// GetAPIKey returns one personal key. Returns CodeNotFound for a key of
// someone else.
func (a *APIKeys) GetAPIKey(ctx context.Context, p *domain.Principal, id uuid.UUID) (*domain.APIKey, error) {
	r, err := a.personalRealm(p, domain.ScopeKeysRead)
	if err != nil {
		return nil, err
	}
	return a.getKey(ctx, r, id)
}

// RevokeAPIKey revokes a personal key; this instance refuses it at once.
// Returns CodeNotFound for a key of someone else.
func (a *APIKeys) RevokeAPIKey(ctx context.Context, p *domain.Principal, id uuid.UUID, meta domain.RequestMeta) error {
	r, err := a.personalRealm(p, domain.ScopeKeysWrite)
	if err != nil {
		return err
	}
	return a.revokeKey(ctx, r, id, meta)
}

// RollAPIKey replaces a personal key; the old one keeps working for
// overlap. Returns CodeNotFound for a key of someone else and CodeConflict
// for a key that is revoked, expired or already rolled.
func (a *APIKeys) RollAPIKey(ctx context.Context, p *domain.Principal, id uuid.UUID, overlap time.Duration, meta domain.RequestMeta) (*CreatedKey, error) {
	r, err := a.personalRealm(p, domain.ScopeKeysWrite)
	if err != nil {
		return nil, err
	}
	return a.rollKey(ctx, r, id, overlap, meta)
}

// CreateOrgAPIKey creates an organization key, capped by what the principal
// holds in the organization (see orgAccess). Returns CodeNotFound for an
// organization the principal cannot see.
func (a *APIKeys) CreateOrgAPIKey(ctx context.Context, p *domain.Principal, orgID uuid.UUID, req CreateKeyRequest, meta domain.RequestMeta) (*CreatedKey, error) {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysWrite)
	if err != nil {
		return nil, err
	}
	return a.createKey(ctx, r, req, meta)
}

// ListOrgAPIKeys returns a page of the organization's keys (only those
// created by createdBy when it is not nil), newest first.
func (a *APIKeys) ListOrgAPIKeys(ctx context.Context, p *domain.Principal, orgID uuid.UUID, createdBy *uuid.UUID, page PageRequest) ([]domain.APIKey, *domain.Cursor, error) {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysRead)
	if err != nil {
		return nil, nil, err
	}
	return a.listKeys(ctx, r, createdBy, page)
}

// RevokeOrgAPIKeysByCreator revokes every active key of the organization
// that the user created (needs keys:write there) and returns how many.
func (a *APIKeys) RevokeOrgAPIKeysByCreator(ctx context.Context, p *domain.Principal, orgID, creator uuid.UUID, meta domain.RequestMeta) (int, error) {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysWrite)
	if err != nil {
		return 0, err
	}
	keys, err := a.store.RevokeAPIKeysByCreator(ctx, orgID, creator, a.clock.Now())
	if err != nil {
		return 0, err
	}
	a.keys.revokedKeys(ctx, keys, r.actor, meta, "creator_revoked")
	return len(keys), nil
}

// GetOrgAPIKey returns one organization key.
func (a *APIKeys) GetOrgAPIKey(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID) (*domain.APIKey, error) {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysRead)
	if err != nil {
		return nil, err
	}
	return a.getKey(ctx, r, id)
}

// RevokeOrgAPIKey revokes an organization key.
func (a *APIKeys) RevokeOrgAPIKey(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID, meta domain.RequestMeta) error {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysWrite)
	if err != nil {
		return err
	}
	return a.revokeKey(ctx, r, id, meta)
}

// RollOrgAPIKey replaces an organization key.
func (a *APIKeys) RollOrgAPIKey(ctx context.Context, p *domain.Principal, orgID, id uuid.UUID, overlap time.Duration, meta domain.RequestMeta) (*CreatedKey, error) {
	r, err := a.orgRealm(ctx, p, orgID, domain.ScopeKeysWrite)
	if err != nil {
		return nil, err
	}
	return a.rollKey(ctx, r, id, overlap, meta)
}
