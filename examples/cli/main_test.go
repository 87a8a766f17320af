package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/testutil"
)

// TestMain lets a test run the real main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("EXAMPLE_RUN_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

const pw = "correct horse battery staple"

func refreshToken(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.RefreshToken == "" {
		t.Fatalf("token file: %v %s", err, b)
	}
	return v.RefreshToken
}

func TestCLIKeepsWorkingAcrossRunsAndExpiry(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	file := filepath.Join(t.TempDir(), "cli", "tokens.json")
	env := map[string]string{"LATCH_URL": s.URL, "LATCH_TOKEN_FILE": file}
	// Each call is a fresh run: a new SDK client built from the file alone.
	cli := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	const addr = "ada@example.com"
	if code, out, errOut := cli(pw+"\n", "signup", "-email", addr); code != 0 || !strings.Contains(out, addr) {
		t.Fatalf("signup: %d %s %s", code, out, errOut)
	}
	if code, _, _ := cli("", "logout"); code != 0 {
		t.Fatal("logout after signup")
	}
	if code, _, errOut := cli("", "me"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("me before login: %d %s", code, errOut)
	}
	if code, _, errOut := cli("not the password\n", "login", "-email", addr); code != 1 || !strings.Contains(errOut, "wrong email or password") {
		t.Fatalf("login with a wrong password: %d %s", code, errOut)
	}
	if code, _, errOut := cli(pw+"\n", "login", "-email", addr); code != 0 {
		t.Fatalf("login: %d %s", code, errOut)
	}
	if fi, err := os.Stat(file); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if code, out, errOut := cli("", "me"); code != 0 || !strings.Contains(out, addr) {
		t.Fatalf("me: %d %s %s", code, out, errOut)
	}

	// The access token expires (for the server); the next run refreshes
	// without asking for the password: stdin is empty.
	rt1 := refreshToken(t, file)
	s.Clock.Advance(16 * time.Minute)
	if code, out, errOut := cli("", "me"); code != 0 || !strings.Contains(out, addr) {
		t.Fatalf("me after expiry: %d %s %s", code, out, errOut)
	}
	rt2 := refreshToken(t, file)
	if rt2 == rt1 {
		t.Fatal("the refresh token was not rotated into the file")
	}

	// Again, in a real separate process.
	s.Clock.Advance(16 * time.Minute)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "me")
	cmd.Env = append(os.Environ(), "EXAMPLE_RUN_MAIN=1", "LATCH_URL="+s.URL, "LATCH_TOKEN_FILE="+file, "LATCH_PASSWORD=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || !strings.Contains(out.String(), addr) {
		t.Fatalf("child process: %v\n%s", err, out.String())
	}
	if refreshToken(t, file) == rt2 {
		t.Fatal("the child did not refresh")
	}

	code, sessions, _ := cli("", "sessions")
	if code != 0 || strings.Count(sessions, "(this one)") != 1 || strings.Count(sessions, "\n") != 2 {
		t.Fatalf("sessions: %d\n%s", code, sessions)
	}

	if code, _, _ := cli("", "logout"); code != 0 {
		t.Fatal("logout")
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token file after logout: %v", err)
	}
	if code, _, errOut := cli("", "me"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("me after logout: %d %s", code, errOut)
	}
}

// TestSessionEndedElsewhere revokes the CLI's session behind its back: the
// next run says once that the session ended and exits 1, and the token file
// is gone, so the run after that is simply not logged in and asks nothing
// of Latch.
func TestSessionEndedElsewhere(t *testing.T) {
	ctx := context.Background()
	s := testutil.Start(t, "sqlite", testutil.Autoconfirm)
	file := filepath.Join(t.TempDir(), "tokens.json")
	env := map[string]string{"LATCH_URL": s.URL, "LATCH_TOKEN_FILE": file}
	cli := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := cli(pw+"\n", "signup", "-email", "grace@example.com"); code != 0 {
		t.Fatalf("signup: %d %s", code, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	global := client.LogoutGlobal
	if res, err := s.Client.LogoutWithResponse(ctx, &latchapi.LogoutParams{Scope: &global}, testutil.Bearer(tok.AccessToken)); err != nil || res.StatusCode() != 204 {
		t.Fatalf("revoke the session elsewhere: %v", err)
	}

	// In this order: the clock only moves forward.
	for _, tc := range []struct {
		name    string
		advance time.Duration
	}{{"token still valid", 0}, {"token expired", 16 * time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, b, 0o600); err != nil { // the ended session, as the file held it
				t.Fatal(err)
			}
			s.Clock.Advance(tc.advance)
			code, out, errOut := cli("", "me")
			if code != 1 || out != "" {
				t.Fatalf("me: exit %d, stdout %q", code, out)
			}
			if n := strings.Count(errOut, "session ended, log in again"); n != 1 || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("me said the session ended %d times:\n%s", n, errOut)
			}
			if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("token file after the end: %v", err)
			}
			if code, _, errOut := cli("", "me"); code != 1 || !strings.Contains(errOut, "not logged in") {
				t.Fatalf("me after the end: %d %s", code, errOut)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	for _, args := range [][]string{nil, {"frobnicate"}, {"login"}, {"-token-file", "x", "me", "-nope"}} {
		if code := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
