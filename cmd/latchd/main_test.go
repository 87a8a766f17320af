package main

import (
	"bufio"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// latchd runs this binary as latchd with args and the extra environment,
// and returns its exit code, stdout and stderr.
func latchd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "LATCH_TEST_AS_LATCHD=1"), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestHelpExitsZero: latchd -h, --help and help list the subcommands and
// exit 0 (they used to print every flag and exit 2); a command's -h shows
// its flags.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, stdout, stderr := latchd(t, nil, args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "keys rotate") || !strings.Contains(stdout, "migrate") ||
			strings.Contains(stdout, "help requested") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	code, stdout, _ := latchd(t, nil, "serve", "-h")
	if code != 0 || !strings.Contains(stdout, "-access-ttl duration") {
		t.Errorf("serve -h: exit %d, %q", code, stdout)
	}
	code, _, stderr := latchd(t, []string{"LATCH_ACCESS_TTL=banana"}, "migrate")
	if code != 2 || !strings.Contains(stderr, `LATCH_ACCESS_TTL="banana": want a duration such as 15m`) {
		t.Errorf("bad configuration: exit %d, %q", code, stderr)
	}
}

// TestServeOnABusyPortLeavesNoTrace: a second serve on a port in use exits
// non-zero at once; a fresh database file is not created, and an existing
// one is left byte for byte as it was.
func TestServeOnABusyPortLeavesNoTrace(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	code, _, stderr := latchd(t, nil, "serve", "-addr", busy.Addr().String(), "-database-url", "sqlite://"+fresh)
	if code == 0 || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("serve on a busy port: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a fresh database file was created: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(fresh + suffix); !os.IsNotExist(err) {
			t.Fatalf("%s was created: %v", fresh+suffix, err)
		}
	}

	old := filepath.Join(dir, "old.db")
	if code, _, stderr := latchd(t, nil, "migrate", "-database-url", "sqlite://"+old); code != 0 {
		t.Fatalf("migrate: %d %q", code, stderr)
	}
	before := snapshot(t, dir)
	code, _, stderr = latchd(t, nil, "serve", "-addr", busy.Addr().String(), "-database-url", "sqlite://"+old)
	if code == 0 || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("serve on a busy port: exit %d, %q", code, stderr)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Fatalf("the database directory changed:\nbefore %v\nafter  %v", keys(before), keys(after))
	}
}

// snapshot returns each file of dir with its content and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = st.ModTime().String() + "\x00" + string(b)
	}
	return out
}

func keys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// TestMasterKeyWarningOnAPublicAddress: serve without LATCH_MASTER_KEY on
// an address other than loopback warns, naming the setting, and serves.
func TestMasterKeyWarningOnAPublicAddress(t *testing.T) {
	addr := strings.Replace(freeAddr(t), "127.0.0.1", "0.0.0.0", 1)
	cmd := exec.Command(os.Args[0], "serve", "-addr", addr, "-database-url", "sqlite://"+filepath.Join(t.TempDir(), "latch.db"))
	cmd.Env = append(os.Environ(), "LATCH_TEST_AS_LATCHD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "LATCH_MASTER_KEY is not set") {
			if !strings.Contains(sc.Text(), "level=WARN") || !strings.Contains(sc.Text(), "setting=LATCH_MASTER_KEY") {
				t.Fatalf("not a warning naming the setting: %s", sc.Text())
			}
			return
		}
	}
	t.Fatalf("no warning about LATCH_MASTER_KEY; latchd wrote:\n%s", log.String())
}
