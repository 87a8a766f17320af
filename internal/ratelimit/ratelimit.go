// Package ratelimit keeps in-process token buckets (golang.org/x/time/rate)
// per rule and key. Each rule has its own bounded LRU table of buckets, so
// that many keys cannot exhaust memory and a flood of keys under one rule
// cannot evict the buckets of another.
package ratelimit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchauth/latch/internal/clockcache"
)

// Rule is a token bucket: Burst tokens, refilled evenly over Per.
type Rule struct {
	Burst int
	Per   time.Duration
}

// String formats the rule as "N/duration".
func (r Rule) String() string { return strconv.Itoa(r.Burst) + "/" + r.Per.String() }

// ParseRule parses "N/duration", for example "5/1m".
func ParseRule(s string) (Rule, error) {
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("rate limit %q: want N/duration, e.g. 5/1m", s)
	}
	b, err := strconv.Atoi(n)
	if err != nil || b < 1 {
		return Rule{}, fmt.Errorf("rate limit %q: N must be a positive integer", s)
	}
	per, err := time.ParseDuration(d)
	if err != nil || per <= 0 {
		return Rule{}, fmt.Errorf("rate limit %q: bad duration", s)
	}
	return Rule{Burst: b, Per: per}, nil
}

// IPKey returns the rate-limit key of a client address: an IPv4 address (an
// IPv4-mapped IPv6 address counts as IPv4) is its own key, and an IPv6
// address is keyed by its /64 prefix, since one subscriber is usually given
// a whole /64 and could otherwise take a fresh bucket per address. A string
// that is not an IP address is returned unchanged.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// Limiter holds the buckets: one bounded table per rule name. The zero Rule
// (Burst 0) means no limit. It is safe for concurrent use.
type Limiter struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu     sync.RWMutex
	tables map[string]*table
}

// table is one rule's buckets.
type table struct {
	mu      sync.Mutex // serialises bucket creation
	buckets *clockcache.Cache[string, *rate.Limiter]
}

// New returns a Limiter whose every rule tracks at most size keys of its
// own; a bucket is forgotten ttl after it was created, or the rule's Per if
// that is longer (so a forgotten bucket would have been full again anyway),
// as now tells.
// Rule names come from the code, never from requests: there is one table
// per name.
func New(size int, ttl time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{size: size, ttl: ttl, now: now, tables: map[string]*table{}}
}

func (l *Limiter) table(name string, r Rule) *table {
	l.mu.RLock()
	t := l.tables[name]
	l.mu.RUnlock()
	if t != nil {
		return t
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t = l.tables[name]; t == nil {
		t = &table{buckets: clockcache.New[string, *rate.Limiter](l.size, max(l.ttl, r.Per), l.now)}
		l.tables[name] = t
	}
	return t
}

func (l *Limiter) bucket(name string, r Rule, key string) *rate.Limiter {
	t := l.table(name, r)
	if b, ok := t.buckets.Get(key); ok {
		return b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b, ok := t.buckets.Get(key); ok {
		return b
	}
	b := rate.NewLimiter(rate.Every(r.Per/time.Duration(r.Burst)), r.Burst)
	t.buckets.Add(key, b)
	return b
}

// Allow takes one token from the key's bucket of the named rule. When the
// bucket is empty it takes nothing and returns false with the wait until a
// token is available.
func (l *Limiter) Allow(name string, r Rule, key string) (bool, time.Duration) {
	if r.Burst <= 0 {
		return true, 0
	}
	b := l.bucket(name, r, key)
	now := l.now()
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, wait(b, now)
}

// Refund gives back one token that Allow took; the bucket never holds
// more than the rule's Burst (x/time/rate caps the tokens at the burst
// whenever it next advances the bucket).
func (l *Limiter) Refund(name string, r Rule, key string) {
	if r.Burst <= 0 {
		return
	}
	l.bucket(name, r, key).AllowN(l.now(), -1)
}

func wait(b *rate.Limiter, now time.Time) time.Duration {
	res := b.ReserveN(now, 1)
	d := res.DelayFrom(now)
	res.CancelAt(now)
	if d < time.Second {
		d = time.Second
	}
	return d
}
