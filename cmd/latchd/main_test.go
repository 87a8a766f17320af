package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/internal/app"
)

// TestMain lets a test run this binary as latchd: with LATCH_TEST_AS_LATCHD
// set, the process is latchd, its arguments those of the command line.
func TestMain(m *testing.M) {
	if os.Getenv("LATCH_TEST_AS_LATCHD") == "1" {
		os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestAdminListenerDoesNotShowTheCommandLine starts latchd with its master
// key as a flag and the admin listener on: neither pprof's cmdline nor
// /debug/vars shows it, while pprof itself answers.
func TestAdminListenerDoesNotShowTheCommandLine(t *testing.T) {
	const secret = "cHByb2YtbXVzdC1ub3Qtc2hvdy10aGlzLXNlY3JldCE="
	admin, addr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(os.Args[0], "serve", "-master-key", secret, "-pprof-addr", admin, "-addr", addr,
		"-database-url", "sqlite://"+filepath.Join(t.TempDir(), "latch.db"), "-log-level", "error")
	cmd.Env = append(os.Environ(), "LATCH_TEST_AS_LATCHD=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	get := func(path string) (int, string) {
		res, err := http.Get("http://" + admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := get("/debug/pprof/")
		if code == 200 {
			break
		}
		select {
		case <-done:
			t.Fatal("latchd exited")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the admin listener did not answer")
		}
	}
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/vars", "/debug/pprof/"} {
		code, body := get(path)
		if strings.Contains(body, secret) || strings.Contains(body, "-master-key") {
			t.Errorf("%s (%d) shows the command line: %.200q", path, code, body)
		}
	}
	if code, _ := get("/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/cmdline: %d, want 404", code)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof's profiles are gone: %d", code)
	}
}
