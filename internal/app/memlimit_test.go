package app

import (
	"testing"

	"github.com/latchauth/latch/internal/password"
)

func TestMemoryLimitCoversTheHashesInFlight(t *testing.T) {
	c := Config{HashConc: 2, Argon2: password.DefaultParams}
	want := int64(2*password.DefaultParams.MemoryKiB)*1024 + 60<<20
	if got := MemoryLimit(c); got != want {
		t.Fatalf("MemoryLimit = %d, want %d", got, want)
	}
}
