package app

import (
	"os"
	"runtime/debug"
)

// memoryHeadroom is the Go memory latchd plans for beside the argon2id
// buffers of the hashes in flight: the heap of everything else (caches,
// connections, the spec). The process's RSS also holds what the Go runtime
// does not count (the binary, SQLite's page cache): about 30 MiB more.
const memoryHeadroom = 60 << 20

// MemoryLimit returns the soft memory limit that serve gives the Go runtime
// for c: the argon2id memory of LATCH_HASH_CONCURRENCY hashes plus 60 MiB.
// Each hashing slot keeps its argon2id memory from hash to hash (see
// password.Hasher), so logins make little garbage; the limit bounds what
// does: a stored hash with a larger memory cost than configured (verified in
// memory of its own), and a heap whose live part is mostly those slot
// buffers, which the collector's default growth target (GOGC) would let
// double. Waiting logins hold no hash memory, so the bound holds however
// many queue. The limit is soft: a live heap above it (very large caches)
// makes the collector run more often, never fail; set GOMEMLIMIT to choose
// another.
func MemoryLimit(c Config) int64 {
	return int64(c.HashConc)*int64(c.Argon2.MemoryKiB)*1024 + memoryHeadroom
}

// GCPercent is the collector's growth target (GOGC) that serve sets beside
// the memory limit. The default, 100, collects whenever the heap has grown
// by its live size: with a small live heap (a server that has hashed no
// password yet holds a few MiB) that is a collection every few MiB of
// request garbage, a tenth of the CPU of GET /auth/me. At 400 the heap may
// grow to five times its live size, and the memory limit still caps it:
// near the limit the collector runs as often as it must.
const GCPercent = 400

// applyGCSettings sets MemoryLimit(c) unless GOMEMLIMIT is set, and
// GCPercent unless GOGC is set: the environment wins. Returns the limit set,
// or 0.
func applyGCSettings(c Config) int64 {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	n := MemoryLimit(c)
	debug.SetMemoryLimit(n)
	return n
}
