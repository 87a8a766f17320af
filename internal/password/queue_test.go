package password

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// recorder is a QueueObserver that keeps what it was told.
type recorder struct {
	mu       sync.Mutex
	waits    []time.Duration
	rejected int
}

func (r *recorder) HashQueueWait(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
}

func (r *recorder) HashQueueRejected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected++
}

func (r *recorder) get() ([]time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...), r.rejected
}

// steppingClock reads start first, then start+step; it signals its first
// read on queued (a request began waiting for a slot).
type steppingClock struct {
	mu     sync.Mutex
	start  time.Time
	step   time.Duration
	reads  int
	queued chan struct{}
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if c.reads == 1 {
		close(c.queued)
		return c.start
	}
	return c.start.Add(c.step)
}

// TestQueueObserver: a hash that finds a free slot waited zero; one that
// queued waited as long as the clock says it did; one that gave up after
// the maximum wait is a rejection, not a wait.
func TestQueueObserver(t *testing.T) {
	rec := &recorder{}
	clock := &steppingClock{start: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), step: 7 * time.Millisecond, queued: make(chan struct{})}
	ctx := context.Background()

	short, err := NewHasher(cheap, 1, 10*time.Millisecond, WithQueueObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Hash(ctx, "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if w, r := rec.get(); len(w) != 1 || w[0] != 0 || r != 0 {
		t.Fatalf("a free slot: waits %v, rejections %d", w, r)
	}
	held, err := short.acquire(ctx) // observed: a second zero wait
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Hash(ctx, "correct horse battery staple"); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("no slot within the maximum wait: %v", err)
	}
	if w, r := rec.get(); len(w) != 2 || r != 1 {
		t.Fatalf("after a rejection: waits %v, rejections %d", w, r)
	}
	short.release(held)

	// A queued verification: the slot is released only once it waits.
	rec2 := &recorder{}
	long, err := NewHasher(cheap, 1, time.Hour, WithQueueObserver(rec2), WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	phc, err := long.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	held, err = long.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ok, _, err := long.Verify(ctx, "correct horse battery staple", phc)
		if err == nil && !ok {
			err = domain.Errorf(domain.CodeInvalidRequest, "no match")
		}
		done <- err
	}()
	<-clock.queued
	long.release(held)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, r := rec2.get(); len(w) != 3 || w[0] != 0 || w[1] != 0 || w[2] != 7*time.Millisecond || r != 0 {
		t.Fatalf("a queued verification: waits %v, rejections %d", w, r)
	}
}

// TestNoObserverByDefault: a Hasher without an observer hashes as before.
func TestNoObserverByDefault(t *testing.T) {
	h, err := NewHasher(cheap, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hash(context.Background(), "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
}
