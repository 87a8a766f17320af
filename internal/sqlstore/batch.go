package sqlstore

// collect is the batching loop that SQLite's writer and PostgreSQL's
// rotation batcher share. It waits for a first item on in, takes the items
// already waiting behind it, up to max, without waiting for more to arrive,
// and hands them to run; then again, until stop is closed (an item that
// arrives together with the close may or may not be taken). A batch is
// therefore as large as the load makes it: one when requests come one by
// one, more while the previous batch ran. run gets a slice that collect
// reuses for the next batch: it must answer the items before it returns and
// keep no reference to the slice. Several goroutines may collect from one
// channel, each running its own batches.
func collect[T any](in <-chan T, stop <-chan struct{}, max int, run func(batch []T)) {
	batch := make([]T, 0, max)
	for {
		select {
		case x := <-in:
			batch = append(batch, x)
		case <-stop:
			return
		}
	fill:
		for len(batch) < max {
			select {
			case x := <-in:
				batch = append(batch, x)
			default:
				break fill
			}
		}
		run(batch)
		// Drop the answered items, so that they are not kept alive until
		// a later batch overwrites them.
		clear(batch)
		batch = batch[:0]
	}
}
