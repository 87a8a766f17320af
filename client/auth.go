package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/latchauth/latch/client/latchapi"
)

// RefreshPolicy says how long before expiry the Client renews an access
// token. The margin is the shorter of Before and Fraction of the token's
// lifetime, plus a random extra of up to Jitter times the margin, drawn once
// per token, so that many clients given tokens at the same moment do not
// all refresh at the same moment.
//
// Within the margin the token is still valid: calls go ahead with it at
// once while one renewal runs in the background, so that no call waits for
// a refresh. Only a call whose token has expired waits for the renewal.
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
// A renewal that fails is remembered (see RefreshBackoffError), and so is
// the end of the session (see ErrSessionEnded): neither is retried by every
// call that follows.
type auth struct {
	mode     authMode
	apiKey   string
	exchReq  ExchangeRequest
	store    TokenStore
	raw      *latchapi.ClientWithResponses // unauthenticated, no retries: refresh and exchange
	now      func() time.Time
	policy   RefreshPolicy
	backoffs RetryPolicy // BaseDelay and MaxDelay pace renewals after a failure
	jitter   func(max time.Duration) time.Duration
	timeout  time.Duration
	onEnd    func(SessionEndReason)

	sf singleflight.Group
	// bgBusy is set while a background renewal runs; bg counts them, so
	// that tests can wait for one.
	bgBusy atomic.Bool
	bg     sync.WaitGroup

	mu    sync.Mutex
	cur   *Tokens
	extra time.Duration // the jitter of cur's margin
	end   *sessionEnd   // the session has ended; nil otherwise
	// After a failed renewal: how many in a row, the last one's error, and
	// when the next may be tried.
	fails   int
	lastErr error
	retryAt time.Time
	// refused is Latch's permanent refusal of a renewal (see permanent):
	// returned to every later call that needs one, without a request,
	// until a new session.
	refused error
}

// setLocked replaces the current tokens and draws their jitter; a.mu is held.
func (a *auth) setLocked(t *Tokens) {
	a.cur = t.clone()
	a.extra = 0
	if t != nil && a.policy.Jitter > 0 {
		a.extra = a.jitter(time.Duration(a.policy.Jitter * float64(a.policy.margin(t))))
	}
}

func (a *auth) set(t *Tokens) {
	a.mu.Lock()
	a.setLocked(t)
	a.mu.Unlock()
}

// current returns the tokens in memory and the end of the session, if it
// has ended. Without tokens in memory it loads them from the store:
// another process sharing it may have logged in meanwhile, and tokens there
// that are not the ended session's open a new session here too.
func (a *auth) current(ctx context.Context) (*Tokens, time.Duration, *sessionEnd, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil && a.mode == modeSession {
		t, err := a.store.Load(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		if t != nil && !a.end.owns(t) {
			a.resetLocked()
			a.setLocked(t)
		}
	}
	return a.cur.clone(), a.extra, a.end, nil
}

// owns reports whether t are the tokens of the ended session e.
func (e *sessionEnd) owns(t *Tokens) bool {
	if e == nil {
		return false
	}
	return (e.access != "" && t.AccessToken == e.access) || (e.refresh != "" && t.RefreshToken == e.refresh)
}

// resetLocked forgets the end of a session and any backoff, for a new
// session; a.mu is held.
func (a *auth) resetLocked() {
	a.end, a.refused = nil, nil
	a.fails, a.lastErr, a.retryAt = 0, nil, time.Time{}
}

// due reports whether t should be renewed now.
func (a *auth) due(t *Tokens, extra time.Duration) bool {
	return !a.now().Before(t.ExpiresAt.Add(-a.policy.margin(t) - extra))
}

func (a *auth) expired(t *Tokens) bool { return !a.now().Before(t.ExpiresAt) }

// token returns the access token to send. A token that is due but still
// valid is returned at once while a renewal runs in the background; an
// expired one (or none, in exchange mode) is renewed first, unless an
// earlier renewal failed and its backoff has not passed. Without a session
// it returns ErrNotLoggedIn, or the end of the session once it has ended:
// no request goes out without credentials.
func (a *auth) token(ctx context.Context) (*Tokens, error) {
	t, extra, end, err := a.current(ctx)
	if err != nil {
		return nil, err
	}
	if t == nil {
		switch {
		case a.mode != modeSession:
			return a.renew(ctx, "")
		case end != nil:
			return nil, a.report(&sessionEnded{end})
		}
		return nil, ErrNotLoggedIn
	}
	if !a.due(t, extra) {
		return t, nil
	}
	if !a.expired(t) {
		// A session token without a refresh token is used until it expires.
		if a.mode == modeExchange || t.RefreshToken != "" {
			a.renewInBackground(ctx, t.AccessToken)
		}
		return t, nil
	}
	return a.renew(ctx, t.AccessToken)
}

// blocked returns the error of a renewal that must not be tried now: the
// session has ended, Latch refused a renewal for good, or an earlier
// renewal failed and its backoff has not passed. It returns nil when a
// renewal may go ahead.
func (a *auth) blocked() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.end != nil {
		return &sessionEnded{a.end}
	}
	if a.refused != nil {
		return a.refused
	}
	if now := a.now(); now.Before(a.retryAt) {
		return &RefreshBackoffError{RetryAt: a.retryAt, RetryAfter: a.retryAt.Sub(now), Err: a.lastErr}
	}
	return nil
}

// renew replaces the access token stale, which has expired or was refused,
// and returns the new tokens. Concurrent calls share one renewal (see
// renewShared); the caller stops waiting when its context ends.
func (a *auth) renew(ctx context.Context, stale string) (*Tokens, error) {
	if err := a.blocked(); err != nil {
		return nil, a.report(err)
	}
	ch := a.sf.DoChan("renew", func() (any, error) { return a.renewShared(ctx, stale) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, a.report(r.Err)
		}
		return r.Val.(*Tokens).clone(), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// renewInBackground starts renewing stale, which is due but still valid,
// and returns at once: the caller goes ahead with it. At most one such
// renewal runs at a time, none while renewals are blocked. Its outcome is
// found by the calls that follow: the new tokens, the backoff, or the end
// of the session (reported, and told to WithOnSessionEnd's function, by
// the next call that needs the session).
func (a *auth) renewInBackground(ctx context.Context, stale string) {
	if a.blocked() != nil || !a.bgBusy.CompareAndSwap(false, true) {
		return
	}
	a.bg.Add(1)
	ch := a.sf.DoChan("renew", func() (any, error) { return a.renewShared(ctx, stale) })
	go func() {
		defer a.bg.Done()
		<-ch
		a.bgBusy.Store(false)
	}()
}

// renewShared is the renewal that concurrent callers share. It runs on a
// context detached from the caller's cancellation, with its own timeout: a
// caller that gives up does not waste a refresh that others wait for. A
// permanent refusal (see permanent) is returned as the *Error it is, to
// this call and every later one that needs a renewal, without asking
// again, until a new session (SignIn, SignUp, SetTokens); any other
// failure but the end of the session starts a backoff and is returned as
// a *RefreshBackoffError.
func (a *auth) renewShared(ctx context.Context, stale string) (*Tokens, error) {
	// A renewal that failed just before this one was asked for is not
	// repeated.
	if err := a.blocked(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	var t *Tokens
	var err error
	if a.mode == modeExchange {
		t, err = a.exchange(rctx, stale)
	} else {
		t, err = a.refresh(rctx, stale)
	}
	var ended *sessionEnded
	switch {
	case err == nil:
		a.mu.Lock()
		a.fails, a.lastErr, a.retryAt = 0, nil, time.Time{}
		a.mu.Unlock()
	case errors.As(err, &ended):
	case permanent(err):
		a.mu.Lock()
		a.refused = err
		a.mu.Unlock()
	default:
		err = a.backOff(err)
	}
	return t, err
}

// permanent reports whether err is Latch refusing a renewal for a reason
// that waiting does not change: a 4xx other than 408 and 429, such as an
// exchange that the key may not make (403) or a key that is not valid
// (401). Trying again later would fail the same way, so it is no backoff
// and is not tried again: the callers get the *Error at once.
func permanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusRequestTimeout && e.StatusCode != http.StatusTooManyRequests
}

// backOff records a failed renewal and returns the error for its callers:
// no renewal is tried before Retry-After (when Latch sent one) nor before
// an exponential backoff with jitter.
func (a *auth) backOff(err error) error {
	var retryAfter time.Duration
	var ae *Error
	if errors.As(err, &ae) {
		retryAfter = ae.RetryAfter
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.backoffs.backoff(a.fails, retryAfter, a.jitter)
	a.fails++
	a.lastErr, a.retryAt = err, a.now().Add(d)
	return &RefreshBackoffError{RetryAt: a.retryAt, RetryAfter: d, Err: err}
}

// report tells WithOnSessionEnd's function, once per session, when err
// reports the end of the session, and returns err. It runs with no lock
// held, so the function may use the Client.
func (a *auth) report(err error) error {
	var ended *sessionEnded
	if errors.As(err, &ended) && ended.end.notified.CompareAndSwap(false, true) && a.onEnd != nil {
		a.onEnd(ended.end.reason)
	}
	return err
}

// endLocked ends the session once, forgetting its tokens, and returns the
// error that reports it; a.mu is held. The first reason stays.
func (a *auth) endLocked(reason SessionEndReason, cause error, t *Tokens) *sessionEnded {
	if a.end == nil {
		e := &sessionEnd{reason: reason, err: cause}
		if t != nil {
			e.access, e.refresh = t.AccessToken, t.RefreshToken
		}
		a.end = e
	}
	a.setLocked(nil)
	return &sessionEnded{a.end}
}

func (a *auth) endSession(reason SessionEndReason, cause error, t *Tokens) *sessionEnded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.endLocked(reason, cause, t)
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
// they are used as they are. invalid_grant, or a store emptied by another
// process, ends the session.
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
	a.mu.Lock()
	if latest == nil {
		defer a.mu.Unlock()
		return nil, a.endLocked(SessionEndRevokedElsewhere, nil, a.cur)
	}
	extra := a.extra
	if a.cur == nil || a.cur.AccessToken != latest.AccessToken {
		extra = 0
	}
	a.mu.Unlock()
	if latest.AccessToken != stale && !a.due(latest, extra) {
		a.set(latest)
		return latest, nil
	}
	if latest.RefreshToken == "" {
		if !a.expired(latest) {
			a.set(latest)
			return latest, nil
		}
		ended := a.endSession(SessionEndExpired, nil, latest)
		if err := a.store.Clear(ctx); err != nil {
			return nil, errors.Join(ended, err)
		}
		return nil, ended
	}
	res, err := a.raw.RefreshWithResponse(ctx, latchapi.RefreshRequest{RefreshToken: latest.RefreshToken})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		e := errorFrom(res.StatusCode(), res.HTTPResponse.Header, res.Body, a.now())
		if string(e.Code) != string(ErrInvalidGrant) {
			return nil, e
		}
		ended := a.endSession(SessionEndInvalidGrant, e, latest)
		if err := a.store.Clear(ctx); err != nil {
			return nil, errors.Join(ended, err)
		}
		return nil, ended
	}
	t := a.fromTokenResponse(res.JSON200)
	a.set(t)
	if err := a.store.Save(ctx, t); err != nil {
		return nil, fmt.Errorf("latch: refreshed, but could not save the tokens: %w", err)
	}
	return t, nil
}

// exchange trades the API key for a new access token unless the current
// one is not the stale one and still fresh. A failure leaves the current
// token in place: it is used until it expires.
func (a *auth) exchange(ctx context.Context, stale string) (*Tokens, error) {
	a.mu.Lock()
	cur, extra := a.cur.clone(), a.extra
	a.mu.Unlock()
	if cur != nil && cur.AccessToken != stale && !a.due(cur, extra) {
		return cur, nil
	}
	res, err := a.raw.ExchangeTokenWithResponse(ctx, a.exchReq, func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-API-Key", a.apiKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.JSON200 == nil {
		return nil, errorFrom(res.StatusCode(), res.HTTPResponse.Header, res.Body, a.now())
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

// save stores the tokens of a new session (after login or signup) under
// the lock; the end of an earlier session and any backoff are forgotten.
func (a *auth) save(ctx context.Context, t *Tokens) error {
	unlock, err := a.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.store.Save(ctx, t); err != nil {
		return err
	}
	a.mu.Lock()
	a.resetLocked()
	a.setLocked(t)
	a.mu.Unlock()
	return nil
}

// logout forgets the session here and in the store. When there was one,
// it has ended with SessionEndLogout (told to WithOnSessionEnd's function
// after the store's lock is released).
func (a *auth) logout(ctx context.Context) error {
	ended, err := a.clear(ctx)
	if ended != nil {
		a.report(ended)
	}
	return err
}

func (a *auth) clear(ctx context.Context) (*sessionEnded, error) {
	unlock, err := a.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	a.mu.Lock()
	var ended *sessionEnded
	if a.cur != nil {
		ended = a.endLocked(SessionEndLogout, nil, a.cur)
	}
	a.mu.Unlock()
	return ended, a.store.Clear(ctx)
}
