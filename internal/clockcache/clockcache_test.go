package clockcache

import (
	"testing"
	"time"
)

// TestClockCache: entries live for the lifetime on the given clock; Peek,
// Contains, Remove and Purge see the same.
func TestClockCache(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[string, int](2, time.Second, func() time.Time { return now })
	c.Add("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get: %v %v", v, ok)
	}
	now = now.Add(999 * time.Millisecond)
	if !c.Contains("a") {
		t.Fatal("expired early")
	}
	now = now.Add(time.Millisecond)
	if _, ok := c.Get("a"); ok || c.Contains("a") {
		t.Fatal("an expired entry was returned")
	}
	c.Add("a", 2)
	if v, ok := c.Peek("a"); !ok || v != 2 {
		t.Fatalf("re-added: %v %v", v, ok)
	}
	c.Add("b", 3)
	if c.Len() != 2 {
		t.Fatalf("Len %d, want 2", c.Len())
	}
	c.Add("c", 4) // evicts the least recently used, a
	if c.Contains("a") || !c.Contains("b") || !c.Contains("c") {
		t.Fatal("LRU eviction")
	}
	c.Remove("b")
	if c.Contains("b") {
		t.Fatal("Remove")
	}
	c.Purge()
	if c.Contains("c") {
		t.Fatal("Purge")
	}
}
