package ratelimit

import (
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
	if ok, _ := l.Peek("login", r, "a"); ok {
		t.Fatal("peek sees a token in an empty bucket")
	}
	c.add(10 * time.Second)
	if ok, _ := l.Peek("login", r, "a"); !ok {
		t.Fatal("peek after refill refused")
	}
	if ok, _ := l.Peek("login", r, "a"); !ok {
		t.Fatal("peek consumed the token")
	}
	if ok, _ := l.Allow("login", r, "a"); !ok {
		t.Fatal("refilled token refused")
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
