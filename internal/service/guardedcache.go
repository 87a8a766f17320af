package service

import (
	"sync"
	"sync/atomic"

	"github.com/latchauth/latch/internal/clockcache"
)

// guardedCache is the cache of what requests read from the store (sessions,
// users): a value read from the store is added only if nothing was
// forgotten since the read began, so a read that raced with a change here
// or on another instance never puts the old value back, and nothing is
// added while the other instances' changes do not arrive (degraded).
type guardedCache[K comparable, V any] struct {
	c        *clockcache.Cache[K, V]
	degraded func() bool
	// mu orders Fill against Forget; gen counts the forgets.
	mu  sync.Mutex
	gen atomic.Uint64
}

func newGuardedCache[K comparable, V any](c *clockcache.Cache[K, V], degraded func() bool) *guardedCache[K, V] {
	return &guardedCache[K, V]{c: c, degraded: degraded}
}

// Get returns the cached value of k.
func (g *guardedCache[K, V]) Get(k K) (V, bool) { return g.c.Get(k) }

// Peek returns the cached value of k without counting it as a use.
func (g *guardedCache[K, V]) Peek(k K) (V, bool) { return g.c.Peek(k) }

// Generation is taken before a store read whose result Fill may cache.
func (g *guardedCache[K, V]) Generation() uint64 { return g.gen.Load() }

// Fill caches v, read from the store after Generation returned gen, unless
// something was forgotten since or the cache is degraded.
func (g *guardedCache[K, V]) Fill(gen uint64, k K, v V) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gen.Load() == gen && !g.degraded() {
		g.c.Add(k, v)
	}
}

// Forget drops the keys; reads under way no longer cache what they read.
func (g *guardedCache[K, V]) Forget(ks ...K) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen.Add(1)
	for _, k := range ks {
		g.c.Remove(k)
	}
}

// Purge drops every key; reads under way no longer cache what they read.
func (g *guardedCache[K, V]) Purge() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen.Add(1)
	g.c.Purge()
}
