package poll

import (
	"context"
	"testing"
	"time"
)

func TestLoopRunsAtOnceOnWakeAndWhileFull(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	calls := make(chan int, 16)
	n := 0
	done := make(chan struct{})
	go func() {
		// An hour's interval: every call below is the start, a wake, or a
		// full batch, never the timer.
		Loop(ctx, wake, time.Hour, func(context.Context) bool {
			n++
			calls <- n
			return n == 2 || n == 3 // the second and third batches are full
		})
		close(done)
	}()
	<-calls // at once
	wake <- struct{}{}
	for _, want := range []int{2, 3, 4} { // woken, then again while full
		if got := <-calls; got != want {
			t.Fatalf("call %d, want %d", got, want)
		}
	}
	select {
	case got := <-calls:
		t.Fatalf("call %d without a wake, a full batch or the interval", got)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return when ctx ended")
	}
}
