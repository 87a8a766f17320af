// Package poll is the loop of Latch's queue workers (the mail outbox, the
// webhook deliveries): take a batch at once, then whenever woken or every
// interval, and again at once while batches come back full.
package poll

import (
	"context"
	"time"
)

// Loop calls once at the start and then each time wake receives or
// interval has passed since the last call, until ctx ends; when once
// reports more (a full batch: more may be due right now) it is called
// again at once. A wake that arrives during a call is not lost: the next
// call follows it. Loop returns when ctx ends.
func Loop(ctx context.Context, wake <-chan struct{}, interval time.Duration, once func(ctx context.Context) (more bool)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		next := interval
		if once(ctx) {
			next = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}
