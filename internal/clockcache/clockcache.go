// Package clockcache is a bounded LRU cache whose entries expire on a clock
// the caller gives (domain.Clock's Now in Latch), so that no cache reads the
// wall clock and tests control expiry.
package clockcache

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache is a bounded LRU cache whose entries expire after a fixed
// lifetime measured on the clock its owner gives. An expired entry is
// never returned; it stays until it is replaced or the LRU evicts it. It is
// safe for concurrent use.
type Cache[K comparable, V any] struct {
	lru *lru.Cache[K, entry[V]]
	ttl time.Duration
	now func() time.Time
}

type entry[V any] struct {
	v     V
	until time.Time
}

// New returns a cache of at most size entries, each kept for ttl
// as now tells.
func New[K comparable, V any](size int, ttl time.Duration, now func() time.Time) *Cache[K, V] {
	c, err := lru.New[K, entry[V]](size)
	if err != nil {
		panic(err) // only for a size below 1, a programming error
	}
	return &Cache[K, V]{lru: c, ttl: ttl, now: now}
}

// Add caches v under k for the cache's lifetime from now.
func (c *Cache[K, V]) Add(k K, v V) {
	c.lru.Add(k, entry[V]{v: v, until: c.now().Add(c.ttl)})
}

// Get returns the live entry of k and marks it recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	e, ok := c.lru.Get(k)
	return c.live(e, ok)
}

// Peek returns the live entry of k without marking it used.
func (c *Cache[K, V]) Peek(k K) (V, bool) {
	e, ok := c.lru.Peek(k)
	return c.live(e, ok)
}

// Contains reports whether k has a live entry.
func (c *Cache[K, V]) Contains(k K) bool {
	_, ok := c.Peek(k)
	return ok
}

// Remove drops the entry of k.
func (c *Cache[K, V]) Remove(k K) { c.lru.Remove(k) }

// Len returns the number of entries held, expired ones not yet replaced
// or evicted included.
func (c *Cache[K, V]) Len() int { return c.lru.Len() }

// Purge drops every entry.
func (c *Cache[K, V]) Purge() { c.lru.Purge() }

// live returns e's value unless it has expired. An expired entry stays
// until it is replaced or evicted: removing it here could remove a fresh
// entry that another goroutine added meanwhile.
func (c *Cache[K, V]) live(e entry[V], ok bool) (V, bool) {
	if !ok || !c.now().Before(e.until) {
		var zero V
		return zero, false
	}
	return e.v, true
}
