package sqlstore

import (
	"slices"
	"testing"
)

// collect takes what is waiting, up to max a batch, runs each batch before
// taking the next, and returns once stop is closed.
func TestCollectTakesWhatWaits(t *testing.T) {
	in := make(chan int, 8)
	for i := range 5 {
		in <- i
	}
	stop := make(chan struct{})
	var sizes []int
	var got []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		collect(in, stop, 3, func(batch []int) {
			sizes = append(sizes, len(batch))
			got = append(got, batch...)
			if len(got) == 5 {
				// Everything queued was taken: the next wait ends on stop.
				close(stop)
			}
		})
	}()
	<-done
	if !slices.Equal(sizes, []int{3, 2}) || !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("batches of %v holding %v, want [3 2] holding [0 1 2 3 4]", sizes, got)
	}
}
