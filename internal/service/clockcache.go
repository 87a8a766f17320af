package service

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// clockCache is a bounded LRU cache whose entries expire after a fixed
// lifetime measured on the service's clock (domain.Clock), so that tests
// control expiry and no cache reads the wall clock. An expired entry is
// never returned; it stays until it is replaced or the LRU evicts it. It is
// safe for concurrent use.
type clockCache[K comparable, V any] struct {
	lru *lru.Cache[K, clockEntry[V]]
	ttl time.Duration
	now func() time.Time
}

type clockEntry[V any] struct {
	v     V
	until time.Time
}

// newClockCache returns a cache of at most size entries, each kept for ttl
// as now tells.
func newClockCache[K comparable, V any](size int, ttl time.Duration, now func() time.Time) *clockCache[K, V] {
	c, err := lru.New[K, clockEntry[V]](size)
	if err != nil {
		panic(err) // only for a size below 1, a programming error
	}
	return &clockCache[K, V]{lru: c, ttl: ttl, now: now}
}

// Add caches v under k for the cache's lifetime from now.
func (c *clockCache[K, V]) Add(k K, v V) {
	c.lru.Add(k, clockEntry[V]{v: v, until: c.now().Add(c.ttl)})
}

// Get returns the live entry of k and marks it recently used.
func (c *clockCache[K, V]) Get(k K) (V, bool) {
	e, ok := c.lru.Get(k)
	return c.live(e, ok)
}

// Peek returns the live entry of k without marking it used.
func (c *clockCache[K, V]) Peek(k K) (V, bool) {
	e, ok := c.lru.Peek(k)
	return c.live(e, ok)
}

// Contains reports whether k has a live entry.
func (c *clockCache[K, V]) Contains(k K) bool {
	_, ok := c.Peek(k)
	return ok
}

// Remove drops the entry of k.
func (c *clockCache[K, V]) Remove(k K) { c.lru.Remove(k) }

// Purge drops every entry.
func (c *clockCache[K, V]) Purge() { c.lru.Purge() }

// live returns e's value unless it has expired. An expired entry stays
// until it is replaced or evicted: removing it here could remove a fresh
// entry that another goroutine added meanwhile.
func (c *clockCache[K, V]) live(e clockEntry[V], ok bool) (V, bool) {
	if !ok || !c.now().Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}
