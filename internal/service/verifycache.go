package service

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchauth/latch/internal/token"
)

// verifyAccess verifies an access token (token.Issuer.Verify) through the
// verified-token cache: a token that passed every check moments ago passes
// again until it expires, so its claims are reused instead of checking the
// signature again. The claims returned are shared with the cache and must
// not be changed. Returns CodeTokenExpired, CodeInvalidToken, or an error
// that wraps token.ErrUnknownKey.
func (t *Tokens) verifyAccess(tok string) (*token.Claims, error) {
	var h [sha256.Size]byte
	if len(tok) <= token.MaxTokenBytes { // a longer token is refused unhashed
		h = sha256.Sum256([]byte(tok))
		if c, ok := t.verified.get(h, t.clock.Now()); ok {
			return c, nil
		}
	}
	gen := t.verified.generation()
	c, err := t.issuer.Verify(tok)
	if err != nil {
		return nil, err
	}
	t.verified.put(h, c, t.clock.Now(), gen)
	return c, nil
}

// verifyCache remembers the claims of tokens that passed verification, keyed
// by the SHA-256 of the whole token, so a client that sends the same access
// token on every request pays for one signature check per TTL instead of
// one per request. An entry is used only while the token is unexpired (exp
// strictly in the future by the service's clock, without leeway), for at
// most the TTL after its check, and only under the key set it was checked
// with: ReloadKeys starts a new generation. Expiry, a changed key set, or
// any doubt fall back to the full check. It holds no token, only its hash.
// Claims never change, so the TTL bounds no staleness: it bounds how long
// an idle entry takes memory (Config.VerifyCacheTTL).
type verifyCache struct {
	ttl    time.Duration
	gen    atomic.Uint64
	shards [verifyShards]verifyShard
}

const (
	verifyShards   = 16
	verifyPerShard = 4096 // 65,536 entries in all, a few MiB at most
)

type verifyShard struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifyEntry
}

type verifyEntry struct {
	claims *token.Claims
	exp    time.Time // the token's exp
	until  time.Time // checked-at + TTL
	gen    uint64
}

func newVerifyCache(ttl time.Duration) *verifyCache {
	if ttl <= 0 {
		return nil
	}
	c := &verifyCache{ttl: ttl}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]verifyEntry)
	}
	return c
}

// get returns the cached claims of the token with hash h, if they may
// still be used at now; they are shared and must not be changed.
func (c *verifyCache) get(h [sha256.Size]byte, now time.Time) (*token.Claims, bool) {
	if c == nil {
		return nil, false
	}
	sh := &c.shards[h[0]%verifyShards]
	sh.mu.Lock()
	e, ok := sh.m[h]
	sh.mu.Unlock()
	if !ok || e.gen != c.gen.Load() || !now.Before(e.exp) || !now.Before(e.until) {
		return nil, false
	}
	return e.claims, true
}

// put remembers claims checked at now under generation gen (read before the
// check began, so a Load during the check discards the entry).
func (c *verifyCache) put(h [sha256.Size]byte, cl *token.Claims, now time.Time, gen uint64) {
	if c == nil || cl.ExpiresAt == nil {
		return
	}
	e := verifyEntry{claims: cl, exp: cl.ExpiresAt.Time, until: now.Add(c.ttl), gen: gen}
	sh := &c.shards[h[0]%verifyShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.m) >= verifyPerShard {
		for k, v := range sh.m {
			if !now.Before(v.until) || !now.Before(v.exp) || v.gen != gen {
				delete(sh.m, k)
			}
		}
		if len(sh.m) >= verifyPerShard {
			clear(sh.m)
		}
	}
	sh.m[h] = e
}

// invalidate drops every entry (by starting a new generation).
func (c *verifyCache) invalidate() {
	if c != nil {
		c.gen.Add(1)
	}
}

// generation returns the current generation.
func (c *verifyCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}
