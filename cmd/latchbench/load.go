package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is what one operation of a scenario returned.
type outcome struct {
	// ok is false for an error: a transport error, or a status the scenario
	// did not expect.
	ok bool
	// status is the HTTP status, 0 for transport errors and in-process calls.
	status int
}

// op performs one request of a scenario for worker w. It must honour ctx.
type op func(ctx context.Context, w *worker) outcome

// worker is one closed-loop client: it sends its next request only after
// the previous one answered. State that a scenario chains from one request
// to the next (a rotated refresh token) lives in state.
type worker struct {
	id    int
	state any
	lat   []time.Duration
	errs  int
	n     int
	s5xx  int
	codes map[int]int
	// turn counts the worker's requests that picked an instance (see next).
	turn int
}

// result is the measured part of one closed-loop run.
type result struct {
	Requests  int
	Errors    int
	Status5xx int
	Elapsed   time.Duration
	Lat       []time.Duration // sorted
	Codes     map[int]int     // unexpected statuses, for diagnosis
}

// runLoop drives op from conc workers: first for warmup (not measured), then
// for dur or until maxReq requests, whichever comes first. Every worker
// keeps its own state across warmup and measurement; setup, when not nil,
// initialises it. measureStart and measureEnd are called at the edges of
// the measured window (to read server CPU and reset peak RSS).
func runLoop(ctx context.Context, conc int, warmup, dur time.Duration, maxReq int, setup func(w *worker) error, f op,
	measureStart, measureEnd func()) (result, error) {
	workers := make([]*worker, conc)
	for i := range workers {
		workers[i] = &worker{id: i, codes: map[int]int{}}
		if setup != nil {
			if err := setup(workers[i]); err != nil {
				return result{}, err
			}
		}
	}
	var phase atomic.Int32 // 0 warmup, 1 measuring, 2 done
	var count atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			w.lat = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				if phase.Load() == 2 {
					return
				}
				start := time.Now()
				o := f(ctx, w)
				el := time.Since(start)
				if ctx.Err() != nil && !o.ok {
					return // cut short by the end of the run: not an error
				}
				// A request counts when it completes inside the measured
				// window, wherever it started: throughput is completions per
				// second even when latencies approach the window's length.
				if phase.Load() == 1 {
					if count.Add(1) > int64(maxReq) {
						return
					}
					w.n++
					w.lat = append(w.lat, el)
					if !o.ok {
						w.errs++
						w.codes[o.status]++
					}
					if o.status >= 500 {
						w.s5xx++
					}
				}
			}
		}(w)
	}
	sleep(ctx, warmup)
	measureStart()
	start := time.Now()
	phase.Store(1)
	deadline := time.NewTimer(dur)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-deadline.C:
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if count.Load() >= int64(maxReq) {
				break loop
			}
		}
	}
	phase.Store(2)
	elapsed := time.Since(start)
	measureEnd()
	// Let in-flight requests finish (they are not counted), then stop.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cancel()
		<-done
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return result{}, err
	}
	var r result
	r.Elapsed = elapsed
	r.Codes = map[int]int{}
	for _, w := range workers {
		r.Requests += w.n
		r.Errors += w.errs
		r.Status5xx += w.s5xx
		r.Lat = append(r.Lat, w.lat...)
		for c, n := range w.codes {
			r.Codes[c] += n
		}
	}
	slices.Sort(r.Lat)
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// percentile returns the q-quantile (0..1) of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
