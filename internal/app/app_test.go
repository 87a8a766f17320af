package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/app"
	"github.com/latchauth/latch/internal/password"
)

func TestServeAndShutdownGracefully(t *testing.T) {
	c, err := app.ParseConfig([]string{"-database-url", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "-log-level", "error"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Argon2 = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	a, err := app.New(context.Background(), c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/health")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("health: %v %v", err, res)
	}
	res.Body.Close()
	if res.Header.Get("X-Request-Id") == "" {
		t.Fatal("no request id")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/health"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	env := map[string]string{"LATCH_ACCESS_TTL": "5m", "LATCH_CORS_ORIGINS": "https://a.example, https://b.example", "LATCH_RATE_LIMITS": "false"}
	c, err := app.ParseConfig([]string{"-access-ttl", "7m"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTTL != 7*time.Minute || len(c.CORSOrigins) != 2 || c.RateLimits {
		t.Fatalf("config = %+v", c)
	}
}
