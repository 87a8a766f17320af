package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// RefreshPolicy says how long before expiry the Client renews an access
// token. The margin is the shorter of Before and Fraction of the token's
// lifetime, plus a random extra of up to Jitter times the margin, drawn once
// per token, so that many clients given tokens at the same moment do not
// all refresh at the same moment.
type RefreshPolicy struct {
	// Before caps the margin. Default 5 minutes.
	Before time.Duration
	// Fraction is the share of the token's lifetime used as the margin.
	// Default 0.2 (a fifth).
	Fraction float64
	// Jitter is the largest random extra, as a share of the margin.
	// Default 0.1; negative means none.
	Jitter float64
}

// DefaultRefreshPolicy is the policy of a Client without WithRefreshPolicy.
func DefaultRefreshPolicy() RefreshPolicy {
	return RefreshPolicy{Before: 5 * time.Minute, Fraction: 0.2, Jitter: 0.1}
}

func (p RefreshPolicy) withDefaults() RefreshPolicy {
	d := DefaultRefreshPolicy()
	if p.Before <= 0 {
		p.Before = d.Before
	}
	if p.Fraction <= 0 || p.Fraction > 1 {
		p.Fraction = d.Fraction
	}
	if p.Jitter == 0 {
		p.Jitter = d.Jitter
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	return p
}

// margin returns how long before expiry t is renewed, without jitter.
func (p RefreshPolicy) margin(t *Tokens) time.Duration {
	m := p.Before
	if life := t.ExpiresAt.Sub(t.IssuedAt); !t.IssuedAt.IsZero() && life > 0 {
		if f := time.Duration(float64(life) * p.Fraction); f < m {
			m = f
		}
	}
	return m
}

type authMode int

const (
	modeSession  authMode = iota // bearer tokens of a user session, refreshed
	modeAPIKey                   // X-API-Key on every request
	modeExchange                 // bearer tokens exchanged from an API key
)

// auth holds the current credentials and renews them. Renewals are
// collapsed: however many goroutines need one, one request goes to Latch.
type auth struct {
	mode    authMode
	apiKey  string
	scopes  []string
	store   TokenStore
	raw     *ClientWithResponses // unauthenticated: refresh and exchange
	now     func() time.Time
	policy  RefreshPolicy
	timeout time.Duration

	sf singleflight.Group

	mu     sync.Mutex
	cur    *Tokens
	jitter time.Duration
}

// setLocked replaces the current tokens and draws their jitter; a.mu is held.
func (a *auth) setLocked(t *Tokens) {
	a.cur = t.clone()
	a.jitter = 0
	if t != nil && a.policy.Jitter > 0 {
		a.jitter = time.Duration(rand.Float64() * a.policy.Jitter * float64(a.policy.margin(t)))
	}
}

func (a *auth) set(t *Tokens) {
	a.mu.Lock()
	a.setLocked(t)
	a.mu.Unlock()
}

// current returns the tokens in memory, loading them from the store when
// there are none (another process may have logged in meanwhile).
func (a *auth) current(ctx context.Context) (*Tokens, time.Duration, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil && a.mode == modeSession {
		t, err := a.store.Load(ctx)
		if err != nil {
			return nil, 0, err
		}
		a.setLocked(t)
	}
	return a.cur.clone(), a.jitter, nil
}

// due reports whether t should be renewed now.
func (a *auth) due(t *Tokens, jitter time.Duration) bool {
	return !a.now().Before(t.ExpiresAt.Add(-a.policy.margin(t) - jitter))
}

func (a *auth) expired(t *Tokens) bool { return !a.now().Before(t.ExpiresAt) }

// token returns the access token to send, renewing it first when it is due.
// It returns nil and no error in session mode when there is no session. A
// failed proactive renewal is not an error while the old token is valid.
func (a *auth) token(ctx context.Context) (*Tokens, error) {
	t, jitter, err := a.current(ctx)
	if err != nil {
		return nil, err
	}
	if t == nil {
		if a.mode == modeSession {
			return nil, nil
		}
		return a.renew(ctx, "")
	}
	if !a.due(t, jitter) {
		return t, nil
	}
	nt, err := a.renew(ctx, t.AccessToken)
	if err == nil {
		return nt, nil
	}
	if errors.Is(err, ErrSessionEnded) || ctx.Err() != nil || a.expired(t) {
		return nil, err
	}
	return t, nil
}

// renew replaces the access token stale, which is due or was refused, and
// returns the new tokens. Concurrent calls share one renewal, which runs on
// a context detached from the caller's cancellation, with its own timeout:
// a caller that gives up does not waste a refresh that others wait for. The
// caller stops waiting when its context ends.
func (a *auth) renew(ctx context.Context, stale string) (*Tokens, error) {
	ch := a.sf.DoChan("renew", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
		defer cancel()
		if a.mode == modeExchange {
			return a.exchange(rctx, stale)
		}
		return a.refresh(rctx, stale)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Tokens).clone(), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// lock takes the store's cross-process lock when it has one.
func (a *auth) lock(ctx context.Context) (func(), error) {
	if l, ok := a.store.(TokenLocker); ok {
		return l.LockTokens(ctx)
	}
	return func() {}, nil
}

// refresh rotates the refresh token. Under the store's lock it re-loads the
// store first: when the tokens there are not the stale ones and are fresh,
// another process (or an earlier renewal here) has rotated already, and
// they are used as they are. invalid_grant ends the session.
func (a *auth) refresh(ctx context.Context, stale string) (*Tokens, error) {
	unlock, err := a.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	latest, err := a.store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if latest == nil {
		a.set(nil)
		if stale != "" {
			return nil, &sessionEnded{}
		}
		return nil, ErrNotLoggedIn
	}
	a.mu.Lock()
	jitter := a.jitter
	if a.cur == nil || a.cur.AccessToken != latest.AccessToken {
		jitter = 0
	}
	a.mu.Unlock()
	if latest.AccessToken != stale && !a.due(latest, jitter) {
		a.set(latest)
		return latest, nil
	}
	if latest.RefreshToken == "" {
		_ = a.store.Clear(ctx)
		a.set(nil)
		return nil, &sessionEnded{err: errors.New("no refresh token")}
	}
	res, err := a.raw.RefreshWithResponse(ctx, RefreshRequest{RefreshToken: latest.RefreshToken})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		e := errorFrom(res.StatusCode(), res.HTTPResponse.Header, res.Body)
		if string(e.Code) == string(ErrInvalidGrant) {
			if cerr := a.store.Clear(ctx); cerr != nil {
				return nil, errors.Join(&sessionEnded{err: e}, cerr)
			}
			a.set(nil)
			return nil, &sessionEnded{err: e}
		}
		return nil, e
	}
	t := a.fromTokenResponse(res.JSON200)
	a.set(t)
	if err := a.store.Save(ctx, t); err != nil {
		return nil, fmt.Errorf("latch: refreshed, but could not save the tokens: %w", err)
	}
	return t, nil
}

// exchange trades the API key for a new access token unless the current
// one is not the stale one and still fresh.
func (a *auth) exchange(ctx context.Context, stale string) (*Tokens, error) {
	a.mu.Lock()
	cur, jitter := a.cur.clone(), a.jitter
	a.mu.Unlock()
	if cur != nil && cur.AccessToken != stale && !a.due(cur, jitter) {
		return cur, nil
	}
	body := ExchangeRequest{}
	if len(a.scopes) > 0 {
		s := append([]Scope(nil), a.scopes...)
		body.Scopes = &s
	}
	res, err := a.raw.ExchangeTokenWithResponse(ctx, body, func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-API-Key", a.apiKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		a.set(nil)
		return nil, errorFrom(res.StatusCode(), res.HTTPResponse.Header, res.Body)
	}
	now := a.now()
	t := &Tokens{
		AccessToken: res.JSON200.AccessToken,
		IssuedAt:    now,
		ExpiresAt:   expiry(now, res.JSON200.ExpiresIn, res.JSON200.ExpiresAt),
		Scope:       res.JSON200.Scope,
	}
	a.set(t)
	return t, nil
}

// expiry is now plus expiresIn seconds: the Client's clock, not the
// server's, decides. serverAt is the fallback for a missing expires_in.
func expiry(now time.Time, expiresIn int, serverAt time.Time) time.Time {
	if expiresIn > 0 {
		return now.Add(time.Duration(expiresIn) * time.Second)
	}
	return serverAt
}

func (a *auth) fromTokenResponse(r *TokenResponse) *Tokens {
	now := a.now()
	return &Tokens{
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		IssuedAt:     now,
		ExpiresAt:    expiry(now, r.ExpiresIn, r.ExpiresAt),
		SessionID:    r.SessionId.String(),
		UserID:       r.User.Id.String(),
	}
}

// save stores new session tokens (after login or signup) under the lock.
func (a *auth) save(ctx context.Context, t *Tokens) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.store.Save(ctx, t); err != nil {
		return err
	}
	a.set(t)
	return nil
}

// clear forgets the session here and in the store.
func (a *auth) clear(ctx context.Context) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	a.set(nil)
	return a.store.Clear(ctx)
}
