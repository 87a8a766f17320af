package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an underlying writer that counts its writes and can be held.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	hold   chan struct{} // when not nil, each write waits for a value
	// entered, when not nil, is told of each write before it waits.
	entered chan struct{}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	return r.buf.Write(p)
}

func (r *recorder) snapshot() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String(), r.writes
}

func TestEveryLineArrivesWholeAndInOrderPerWriter(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 256, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(w, "g%d line %04d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := rec.snapshot()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("got %d lines, want %d", len(lines), 8*500)
	}
	next := map[string]int{}
	for _, l := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] {
			t.Fatalf("%s: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

func TestLinesWrittenDuringAWriteShareTheNext(t *testing.T) {
	rec := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 2)}
	w := New(rec, 1<<20, 0)
	defer w.Close()
	w.Write([]byte("first\n"))
	<-rec.entered
	// The goroutine now waits inside the first write: these gather.
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	rec.hold <- struct{}{} // the first write
	rec.hold <- struct{}{} // one write for the hundred lines
	close(rec.hold)
	w.Flush()
	out, writes := rec.snapshot()
	if writes != 2 {
		t.Fatalf("%d writes, want 2 (one alone, then the hundred together)", writes)
	}
	if !strings.HasPrefix(out, "first\nline 0\n") || !strings.HasSuffix(out, "line 99\n") {
		t.Fatalf("out of order: %.40q", out)
	}
}

func TestWriteWaitsWhenTheBoundIsReached(t *testing.T) {
	rec := &recorder{hold: make(chan struct{}), entered: make(chan struct{}, 3)}
	w := New(rec, 10, 0)
	w.Write([]byte("0123456789")) // taken by the goroutine, held
	<-rec.entered
	w.Write([]byte("abcdefghij")) // pending: the bound is reached
	wrote := make(chan struct{})
	go func() {
		w.Write([]byte("KLMNOPQRST")) // must wait for room
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("a write went over the bound instead of waiting")
	default:
	}
	close(rec.hold)
	<-wrote
	w.Close()
	if out, _ := rec.snapshot(); out != "0123456789abcdefghijKLMNOPQRST" {
		t.Fatalf("got %q", out)
	}
}

func TestCloseWritesOutWhatIsPendingAndLaterWritesGoStraight(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 0, 0)
	w.Write([]byte("a\n"))
	w.Close()
	w.Close()
	w.Write([]byte("b\n"))
	if out, _ := rec.snapshot(); out != "a\nb\n" {
		t.Fatalf("got %q", out)
	}
}

func TestLingerGathersLinesIntoOneWrite(t *testing.T) {
	rec := &recorder{}
	// Long enough that the hundred writes below all land within it even
	// on a loaded machine; Flush, not the clock, decides when we look.
	w := New(rec, 0, 500*time.Millisecond)
	defer w.Close()
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	w.Flush()
	out, writes := rec.snapshot()
	if writes != 1 {
		t.Fatalf("%d writes, want 1: the lines written during the linger share one", writes)
	}
	if !strings.HasPrefix(out, "line 0\n") || !strings.HasSuffix(out, "line 99\n") || strings.Count(out, "\n") != 100 {
		t.Fatalf("lost or reordered lines: %.40q", out)
	}
}

func TestCloseDuringALingerLosesNothing(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 0, time.Hour)
	w.Write([]byte("a\n"))
	done := make(chan struct{})
	go func() { w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the linger")
	}
	if out, _ := rec.snapshot(); out != "a\n" {
		t.Fatalf("got %q", out)
	}
}
