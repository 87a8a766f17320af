// Package logwriter coalesces log lines into few writes.
//
// The access log writes one line per request. Written straight to stderr
// that is one write system call per request, which on the hottest
// endpoints costs as much as serving them. A Writer copies each line into
// a buffer and returns; one goroutine writes out whatever has gathered as
// soon as there is something. When lines arrive slower than a write takes,
// each is written at once (after the linger, below), alone, as before;
// under load the lines that arrive during one write share the next.
//
// A linger makes the batches larger still: woken by a first line, the
// goroutine waits that long before it takes what has gathered, so that at
// thousands of requests a second one write carries tens of lines instead
// of a few. A line then reaches the underlying writer at most a linger
// later (plus the write's own time); Flush and Close still wait for
// everything.
package logwriter

import (
	"io"
	"sync"
	"time"
)

// DefaultMaxPending is the default bound on buffered bytes.
const DefaultMaxPending = 1 << 20

// Writer is an io.Writer that hands its writes to one goroutine writing to
// the underlying writer. It is safe for concurrent use. Nothing is dropped:
// a Write that would take the pending bytes over the bound waits until the
// goroutine has written them. Close writes out what is pending and stops
// the goroutine; a Write after Close goes straight to the underlying
// writer. A failure of the underlying writer is not reported to Write's
// callers (a logger has nobody to tell).
type Writer struct {
	out    io.Writer
	max    int
	linger time.Duration

	mu      sync.Mutex
	drained *sync.Cond // signalled after each write-out and on close
	pending []byte
	busy    bool // the goroutine is writing a batch out
	closed  bool
	wake    chan struct{}
	quit    chan struct{} // closed by Close
	done    chan struct{}
}

// New starts a Writer over out that buffers at most maxPending bytes
// (DefaultMaxPending when maxPending <= 0) and lingers that long after a
// first line before writing (none when linger <= 0).
func New(out io.Writer, maxPending int, linger time.Duration) *Writer {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	w := &Writer{out: out, max: maxPending, linger: linger, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	w.drained = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write buffers p and returns len(p), nil; see Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) > 0 && len(w.pending)+len(p) > w.max && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after what was buffered before Close
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Flush waits until everything written before it has been written out.
func (w *Writer) Flush() {
	w.mu.Lock()
	for (len(w.pending) > 0 || w.busy) && !w.closed {
		w.drained.Wait()
	}
	w.mu.Unlock()
}

// Close writes out what is pending and stops the goroutine. It always
// returns nil; calling it again does nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	close(w.wake)
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	var batch []byte
	for range w.wake {
		if w.linger > 0 {
			t := time.NewTimer(w.linger)
			select {
			case <-t.C:
			case <-w.quit: // Close does not wait for the linger
				t.Stop()
			}
		}
		for {
			w.mu.Lock()
			batch, w.pending = w.pending, batch[:0]
			w.busy = len(batch) > 0
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			_, _ = w.out.Write(batch)
			w.mu.Lock()
			w.busy = false
			w.drained.Broadcast()
			w.mu.Unlock()
		}
	}
	// Closed: what arrived between the last batch and Close.
	w.mu.Lock()
	rest := w.pending
	w.pending = nil
	w.drained.Broadcast()
	w.mu.Unlock()
	if len(rest) > 0 {
		_, _ = w.out.Write(rest)
	}
}
