package ratelimit

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBucket(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(100, time.Hour, c.now)
	r := Rule{Burst: 3, Per: 30 * time.Second}
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("login", r, "a"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	ok, wait := l.Allow("login", r, "a")
	if ok || wait < 9*time.Second || wait > 11*time.Second {
		t.Fatalf("4th attempt: ok=%v wait=%v, want refused with ~10s", ok, wait)
	}
	if ok, _ := l.Allow("login", r, "b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("signup", r, "a"); !ok {
		t.Fatal("another rule shares the bucket")
	}
	c.add(10 * time.Second)
	if ok, _ := l.Allow("login", r, "a"); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := l.Allow("login", r, "a"); ok {
		t.Fatal("a second token after one refill")
	}
	if ok, _ := l.Allow("x", Rule{}, "a"); !ok {
		t.Fatal("zero rule limits")
	}
}

func TestParseRule(t *testing.T) {
	r, err := ParseRule("5/1m")
	if err != nil || r.Burst != 5 || r.Per != time.Minute {
		t.Fatalf("ParseRule = %+v %v", r, err)
	}
	for _, bad := range []string{"", "5", "0/1m", "-1/1m", "5/0s", "x/1m", "5/xyz"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
}

// TestOneRulesFloodKeepsAnotherRulesBuckets floods one rule with more keys
// than a table holds: the other rule's empty bucket must stay empty. With one
// table shared by every rule, the flood evicted it and the account could
// guess again at once.
func TestOneRulesFloodKeepsAnotherRulesBuckets(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(10, time.Hour, c.now)
	account := Rule{Burst: 2, Per: time.Minute}
	for range 2 {
		l.Allow("login-account", account, "victim")
	}
	if ok, _ := l.Allow("login-account", account, "victim"); ok {
		t.Fatal("third failure allowed")
	}
	flood := Rule{Burst: 100, Per: time.Minute}
	for i := range 1000 {
		l.Allow("signup-ip", flood, fmt.Sprintf("198.51.100.%d/%d", i%256, i))
	}
	if ok, _ := l.Allow("login-account", account, "victim"); ok {
		t.Fatal("a flood of signup-ip keys evicted the account's bucket")
	}
}

// TestTableIsBounded checks that a rule's table forgets its least recently
// used keys beyond its size.
func TestTableIsBounded(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(4, time.Hour, c.now)
	r := Rule{Burst: 1, Per: time.Hour}
	l.Allow("x", r, "first")
	for i := range 4 {
		l.Allow("x", r, strconv.Itoa(i))
	}
	if ok, _ := l.Allow("x", r, "first"); !ok {
		t.Fatal("the oldest key was not forgotten")
	}
	if n := l.tables["x"].buckets.Len(); n != 4 {
		t.Fatalf("table holds %d keys, want 4", n)
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":      "2001:db8:1:2::/64",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"fe80::1%eth0":              "fe80::/64",
		"::1":                       "::/64",
		"not an address":            "not an address",
		"":                          "",
		"2001:0db8:0001:0002::0001": "2001:db8:1:2::/64",
	} {
		if got := IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestIPv6ClientsShareTheirSlash64 shows why IP rules are keyed by IPKey: a
// client rotating through the addresses of its /64 still drains one bucket.
func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(100, time.Hour, c.now)
	r := Rule{Burst: 3, Per: time.Minute}
	for i := range 3 {
		if ok, _ := l.Allow("login-ip", r, IPKey(fmt.Sprintf("2001:db8:5:6::%x", i+1))); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if ok, _ := l.Allow("login-ip", r, IPKey("2001:db8:5:6:dead:beef:0:1")); ok {
		t.Fatal("a new address in the same /64 got a fresh bucket")
	}
	if ok, _ := l.Allow("login-ip", r, IPKey("2001:db8:5:7::1")); !ok {
		t.Fatal("the next /64 shares the bucket")
	}
	for range 3 {
		l.Allow("login-ip", r, IPKey("::ffff:203.0.113.9"))
	}
	if ok, _ := l.Allow("login-ip", r, IPKey("203.0.113.9")); ok {
		t.Fatal("an IPv4-mapped address and its IPv4 form have separate buckets")
	}
}

// TestRefund gives back the token of an attempt that succeeded, never
// beyond the burst: a full bucket refunded still holds Burst tokens.
func TestRefund(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := New(10, time.Hour, c.now)
	r := Rule{Burst: 2, Per: time.Hour}
	l.Allow("login-account", r, "a")
	l.Allow("login-account", r, "a")
	if ok, _ := l.Allow("login-account", r, "a"); ok {
		t.Fatal("third attempt allowed")
	}
	l.Refund("login-account", r, "a")
	if ok, _ := l.Allow("login-account", r, "a"); !ok {
		t.Fatal("the refunded token is not there")
	}
	l.Refund("login-account", r, "b")
	l.Refund("login-account", r, "b")
	for i := range 2 {
		if ok, _ := l.Allow("login-account", r, "b"); !ok {
			t.Fatalf("attempt %d on a full bucket refused", i)
		}
	}
	if ok, _ := l.Allow("login-account", r, "b"); ok {
		t.Fatal("refunds filled the bucket beyond its burst")
	}
}
