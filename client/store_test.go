package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
	"github.com/latchauth/latch/internal/app"
)

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "tokens.json")
	fs := client.NewFileStore(path)
	if tok, err := fs.Load(ctx); tok != nil || err != nil {
		t.Fatalf("empty store: %v %v", tok, err)
	}
	want := &client.Tokens{AccessToken: "a", RefreshToken: "r", IssuedAt: time.Unix(100, 0).UTC(), ExpiresAt: time.Unix(1000, 0).UTC(), SessionID: "s"}
	if err := fs.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctx)
	if err != nil || *got != *want {
		t.Fatalf("load = %+v, %v; want %+v", got, err, want)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Fatalf("file mode %v, want 0600", perm)
		}
		di, _ := os.Stat(filepath.Dir(path))
		if perm := di.Mode().Perm(); perm != 0o700 {
			t.Fatalf("directory mode %v, want 0700", perm)
		}
	}
	// Saves leave no temporary files behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != "tokens.json" && e.Name() != "tokens.json.lock" {
			t.Fatalf("left over: %s", e.Name())
		}
	}
	if err := fs.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if tok, err := fs.Load(ctx); tok != nil || err != nil {
		t.Fatalf("after clear: %v %v", tok, err)
	}
	if err := fs.Clear(ctx); err != nil {
		t.Fatalf("clear twice: %v", err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(ctx); err == nil {
		t.Fatal("a corrupt file loaded")
	}
}

func TestFileStoreLockExcludes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tokens.json")
	a, b := client.NewFileStore(path), client.NewFileStore(path)
	unlock, err := a.LockTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.LockTokens(short); err == nil {
		t.Fatal("a second lock was granted while the first was held")
	}
	unlock()
	unlock2, err := b.LockTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}

// Two processes share one token file. Each round, the server's clock moves
// past the access token's expiry while the children's clocks do not: both
// children send the stale token, get 401, and need a refresh at the same
// moment. With the reuse grace off, a second refresh with the same refresh
// token would revoke the session. Expect one refresh per round, a live
// session afterwards, and one session (one rotation chain).
func TestFileStoreSharedByTwoProcesses(t *testing.T) {
	if os.Getenv("LATCH_HELPER") != "" {
		t.Skip("in a helper process")
	}
	ctx := context.Background()
	l := start(t, func(c *app.Config) { c.ReuseGrace = 0 })
	path := filepath.Join(t.TempDir(), "tokens.json")
	c := l.newClient(t, client.WithTokenStore(client.NewFileStore(path)))
	signup(t, c)

	const rounds, children = 3, 2
	for round := 1; round <= rounds; round++ {
		l.Clock.Advance(accessTTL + time.Minute)
		barrier := t.TempDir()
		var wg sync.WaitGroup
		outs := make([][]byte, children)
		errs := make([]error, children)
		for i := range children {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFileStoreProcess$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(),
				"LATCH_HELPER=1", "LATCH_URL="+l.URL, "LATCH_TOKEN_FILE="+path,
				"LATCH_BARRIER="+barrier, fmt.Sprintf("LATCH_CHILD=%d", i))
			wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
		}
		// Release the children together once both hold the stale token.
		waitFor(t, func() bool {
			for i := range children {
				if _, err := os.Stat(filepath.Join(barrier, fmt.Sprintf("ready-%d", i))); err != nil {
					return false
				}
			}
			return true
		})
		if err := os.WriteFile(filepath.Join(barrier, "go"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i := range children {
			if errs[i] != nil {
				t.Fatalf("round %d, child %d: %v\n%s", round, i, errs[i], outs[i])
			}
		}
		if n := l.refreshes(); n != round {
			t.Fatalf("after round %d: %d refreshes, want %d", round, n, round)
		}
	}

	// A new process, on the children's clock, finds the session alive.
	fresh := l.newClient(t, client.WithTokenStore(client.NewFileStore(path)), client.WithClock(time.Now))
	if _, err := fresh.Me(ctx); err != nil {
		t.Fatalf("the session did not survive: %v", err)
	}
	sessions, err := fresh.Sessions(ctx)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions: %d, %v; want 1", len(sessions), err)
	}
	events, err := fresh.API().ListEventsWithResponse(ctx, nil)
	if err != nil || events.JSON200 == nil {
		t.Fatalf("events: %v", err)
	}
	for _, e := range events.JSON200.Events {
		if e.Type == latchapi.EventTypeRefreshReuseDetected {
			t.Fatal("a refresh token was reused")
		}
	}
	if n := l.refreshes(); n != rounds {
		t.Fatalf("refreshes = %d, want %d", n, rounds)
	}
}

// TestHelperFileStoreProcess is a child of TestFileStoreSharedByTwoProcesses.
func TestHelperFileStoreProcess(t *testing.T) {
	if os.Getenv("LATCH_HELPER") != "1" {
		t.Skip("helper process of TestFileStoreSharedByTwoProcesses")
	}
	ctx := context.Background()
	c, err := client.New(os.Getenv("LATCH_URL"), client.WithTokenStore(client.NewFileStore(os.Getenv("LATCH_TOKEN_FILE"))))
	if err != nil {
		t.Fatal(err)
	}
	// Load the stale token (fresh by this process's clock) before the gate.
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	barrier := os.Getenv("LATCH_BARRIER")
	if err := os.WriteFile(filepath.Join(barrier, "ready-"+os.Getenv("LATCH_CHILD")), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(barrier, "go"))
		return err == nil
	})
	for range 5 {
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// failingStore is a TokenStore whose Save fails, as a full disk would.
type failingStore struct{ client.MemoryStore }

var errDiskFull = errors.New("disk full")

func (*failingStore) Save(context.Context, *client.Tokens) error { return errDiskFull }

// When the token store fails after Latch opened the session, the session
// is not lost silently: the error says so, and the tokens come with it, so
// that the caller can keep them or end the session.
func TestStoreFailureReturnsTheSession(t *testing.T) {
	ctx := context.Background()
	l := start(t)
	c := l.newClient(t, client.WithTokenStore(&failingStore{}))
	addr := email()
	tr, err := c.SignUp(ctx, addr, password)
	if !errors.Is(err, errDiskFull) || tr == nil || tr.AccessToken == "" {
		t.Fatalf("sign up: %v, %v; want the tokens and the store's error", tr, err)
	}
	res, err := c.SignIn(ctx, addr, password)
	if !errors.Is(err, errDiskFull) || res == nil || res.Tokens == nil || res.Tokens.AccessToken == "" {
		t.Fatalf("sign in: %v, %v; want the result and the store's error", res, err)
	}
	// The tokens are good: another Client can take them over.
	other := l.newClient(t)
	if err := other.SetTokens(ctx, other.TokensFrom(res.Tokens)); err != nil {
		t.Fatal(err)
	}
	if me, err := other.Me(ctx); err != nil || string(*me.Email) != addr {
		t.Fatalf("me with the returned tokens: %v", err)
	}
}
