package main

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchauth/latch/internal/password"
	"github.com/latchauth/latch/internal/third_party/argon2"
)

// floorBody is what the HTTP floor answers: about the size of a small Latch
// JSON response header block plus body.
var floorBody = []byte(`{"status":"ok","version":"0.1.0"}` + "\n")

// serveFloor is the hidden `latchbench -serve-floor ADDR` mode: a bare
// net/http server with one handler that returns a small JSON body, run as
// its own process so that its CPU and RSS are measured like latchd's.
func serveFloor(addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(floorBody)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { <-ctx.Done(); srv.Close() }()
	_ = srv.Serve(ln)
	return 0
}

// passwordFloorOp hashes one password with Latch's parameters and Latch's
// argon2id, each worker in its own reused working memory as each of
// latchd's hashing slots is: the work a login or a signup cannot avoid.
// Run with the server's hashing concurrency it measures raw argon2id hashes
// per second.
func passwordFloorOp(p password.Params) op {
	pw := []byte(benchPassword)
	return func(ctx context.Context, w *worker) outcome {
		m, _ := w.state.(*argon2.Memory)
		if m == nil {
			m = argon2.NewMemory(p.MemoryKiB)
			w.state = m
		}
		salt := make([]byte, p.SaltLen)
		_, _ = rand.Read(salt)
		_ = m.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
		return outcome{ok: true}
	}
}
