package app

import (
	"runtime/debug"
	"testing"

	"github.com/latchauth/latch/internal/password"
)

func TestMemoryLimitCoversTheHashesInFlight(t *testing.T) {
	c := Config{HashConc: 2, Argon2: password.DefaultParams()}
	want := int64(2*password.DefaultParams().MemoryKiB)*1024 + 60<<20
	if got := MemoryLimit(c); got != want {
		t.Fatalf("MemoryLimit = %d, want %d", got, want)
	}
}

func TestServeSetsGCTargetsUnlessTheEnvironmentDoes(t *testing.T) {
	c := Config{HashConc: 2, Argon2: password.DefaultParams()}
	prevPct := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevPct); debug.SetMemoryLimit(prevLimit) })

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if n := applyGCSettings(c); n != MemoryLimit(c) {
		t.Fatalf("limit set = %d, want %d", n, MemoryLimit(c))
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Fatalf("GC percent = %d, want %d", got, GCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != MemoryLimit(c) {
		t.Fatalf("memory limit = %d, want %d", got, MemoryLimit(c))
	}

	// The environment wins: nothing is changed.
	debug.SetMemoryLimit(1 << 40)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if n := applyGCSettings(c); n != 0 {
		t.Fatalf("limit set = %d with GOMEMLIMIT set", n)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent = %d with GOGC set, want it untouched (100)", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Fatalf("memory limit = %d with GOMEMLIMIT set, want it untouched", got)
	}
}
