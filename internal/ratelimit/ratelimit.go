// Package ratelimit keeps in-process token buckets (golang.org/x/time/rate)
// per rule and key, in a bounded LRU so that many keys cannot exhaust memory.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
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

// Limiter holds the buckets. The zero Rule (Burst 0) means no limit. It is
// safe for concurrent use.
type Limiter struct {
	mu      sync.Mutex // serialises bucket creation
	now     func() time.Time
	buckets *expirable.LRU[string, *rate.Limiter]
}

// New returns a Limiter that tracks at most size keys; a bucket is forgotten
// ttl after it was created (set ttl to at least the longest rule's Per, so a
// forgotten bucket would have been full again anyway).
func New(size int, ttl time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, buckets: expirable.NewLRU[string, *rate.Limiter](size, nil, ttl)}
}

func (l *Limiter) bucket(name string, r Rule, key string) *rate.Limiter {
	k := name + "\x00" + key
	if b, ok := l.buckets.Get(k); ok {
		return b
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets.Get(k); ok {
		return b
	}
	b := rate.NewLimiter(rate.Every(r.Per/time.Duration(r.Burst)), r.Burst)
	l.buckets.Add(k, b)
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

// Peek reports whether a token is available without taking it.
func (l *Limiter) Peek(name string, r Rule, key string) (bool, time.Duration) {
	if r.Burst <= 0 {
		return true, 0
	}
	b := l.bucket(name, r, key)
	now := l.now()
	if b.TokensAt(now) >= 1 {
		return true, 0
	}
	return false, wait(b, now)
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
