// Tests of Latch's addition to the package: Memory. Not upstream code.

package argon2

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"

	upstream "golang.org/x/crypto/argon2"
)

// dirty fills m's blocks with pseudo-random words, as a previous hash with
// another password would leave them.
func dirty(m *Memory, r *rand.Rand) {
	for i := range m.blocks {
		for j := range m.blocks[i] {
			m.blocks[i][j] = r.Uint64()
		}
	}
}

// idKeyCases runs f on Argon2id parameters that cover one and several
// lanes, one and several passes, memory that rounds down to a multiple of
// 4 x threads, and the minimum memory.
func idKeyCases(t *testing.T, f func(t *testing.T, pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32)) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		threads := uint8(1 + r.IntN(4))
		memory := uint32(8*int(threads) + r.IntN(1500))
		time := uint32(1 + r.IntN(4))
		keyLen := uint32(16 + r.IntN(100))
		pw := make([]byte, r.IntN(40))
		salt := make([]byte, 8+r.IntN(24))
		for j := range pw {
			pw[j] = byte(r.Uint32())
		}
		for j := range salt {
			salt[j] = byte(r.Uint32())
		}
		f(t, pw, salt, time, memory, threads, keyLen)
	}
}

func TestMemoryIDKeyMatchesUpstreamOnReusedDirtyMemory(t *testing.T) {
	defer func(sse4 bool) { useSSE4 = sse4 }(useSSE4)
	for _, sse4 := range []bool{useSSE4, false} {
		useSSE4 = sse4
		m := NewMemory(2048)
		r := rand.New(rand.NewPCG(3, 4))
		idKeyCases(t, func(t *testing.T, pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) {
			want := upstream.IDKey(pw, salt, time, memory, threads, keyLen)
			// Reused straight after the previous case's hash, then
			// after random garbage: both must give upstream's key.
			if got := m.IDKey(pw, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
				t.Fatalf("sse4=%v t=%d m=%d p=%d: reused memory gave %x, upstream %x", sse4, time, memory, threads, got, want)
			}
			dirty(m, r)
			if got := m.IDKey(pw, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
				t.Fatalf("sse4=%v t=%d m=%d p=%d: dirty memory gave %x, upstream %x", sse4, time, memory, threads, got, want)
			}
		})
	}
}

func TestMemoryIDKeyMatchesUpstreamAtLatchDefaults(t *testing.T) {
	// Latch's default parameters (m=19456 KiB, t=2, p=1), in memory that a
	// hash with another password has just used.
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	m := NewMemory(19456)
	_ = m.IDKey([]byte("another password"), salt, 2, 19456, 1, 32)
	want := upstream.IDKey(pw, salt, 2, 19456, 1, 32)
	if got := m.IDKey(pw, salt, 2, 19456, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("got %x, upstream %x", got, want)
	}
}

func TestMemoryLargerComputationAllocatesAndLeavesMemory(t *testing.T) {
	m := NewMemory(64)
	dirty(m, rand.New(rand.NewPCG(5, 6)))
	before := append([]block(nil), m.blocks...)
	pw, salt := []byte("password"), []byte("saltsaltsalt")
	want := upstream.IDKey(pw, salt, 1, 256, 2, 32)
	if got := m.IDKey(pw, salt, 1, 256, 2, 32); !bytes.Equal(got, want) {
		t.Fatalf("got %x, upstream %x", got, want)
	}
	if m.Cap() != 64 {
		t.Fatalf("Cap = %d after a larger computation, want 64", m.Cap())
	}
	for i := range before {
		if before[i] != m.blocks[i] {
			t.Fatalf("block %d changed by a computation that did not fit", i)
		}
	}
	// A smaller one does use it.
	if got := m.IDKey(pw, salt, 1, 32, 1, 32); !bytes.Equal(got, upstream.IDKey(pw, salt, 1, 32, 1, 32)) {
		t.Fatal("smaller computation differs from upstream")
	}
	if m.blocks[0] == before[0] {
		t.Fatal("a computation that fits did not use the memory")
	}
}

func TestNilAndZeroMemory(t *testing.T) {
	pw, salt := []byte("password"), []byte("saltsaltsalt")
	want := upstream.IDKey(pw, salt, 1, 64, 1, 32)
	var nilMem *Memory
	if got := nilMem.IDKey(pw, salt, 1, 64, 1, 32); !bytes.Equal(got, want) || nilMem.Cap() != 0 {
		t.Fatalf("nil Memory: %x, cap %d", got, nilMem.Cap())
	}
	var zero Memory
	if got := zero.IDKey(pw, salt, 1, 64, 1, 32); !bytes.Equal(got, want) || zero.Cap() != 0 {
		t.Fatalf("zero Memory: %x, cap %d", got, zero.Cap())
	}
}

func TestMemoryIDKeyAllocatesLittle(t *testing.T) {
	m := NewMemory(1024)
	pw, salt := []byte("password"), []byte("saltsaltsalt")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 5; i++ {
		_ = m.IDKey(pw, salt, 1, 1024, 1, 32)
	}
	runtime.ReadMemStats(&after)
	// The key, BLAKE2b states, the goroutine per lane and segment: a few
	// KiB, never the 1 MiB of blocks.
	if perHash := (after.TotalAlloc - before.TotalAlloc) / 5; perHash > 64<<10 {
		t.Fatalf("a hash in reused memory allocated %d bytes, want < 64 KiB", perHash)
	}
}

// BenchmarkIDKeyLatchDefaults compares upstream's allocating IDKey with
// Memory.IDKey at Latch's default parameters (benchstat-friendly names).
func BenchmarkIDKeyLatchDefaults(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("upstream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = upstream.IDKey(pw, salt, 2, 19456, 1, 32)
		}
	})
	b.Run("memory", func(b *testing.B) {
		b.ReportAllocs()
		m := NewMemory(19456)
		for b.Loop() {
			_ = m.IDKey(pw, salt, 2, 19456, 1, 32)
		}
	})
}
