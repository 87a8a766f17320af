package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
)

// silentServer accepts connections on loopback and never answers; closing
// it drops them.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// closedPort returns the URL of a loopback port where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// A request that gets no answer fails with one typed error, *NetworkError
// (errors.Is ErrNetwork), whether Latch cannot be reached or does not
// answer in time, through the Client's methods, the generated client of
// API() and a refresh alike; the caller's own cancellation stays
// context.Canceled.
func TestNetworkError(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, err error, timeout bool) {
		t.Helper()
		var ne *client.NetworkError
		if !errors.Is(err, client.ErrNetwork) || !errors.As(err, &ne) {
			t.Fatalf("got %v (%T), want a *client.NetworkError", err, err)
		}
		if ne.Timeout() != timeout || ne.Method == "" || ne.URL == "" {
			t.Fatalf("%+v: Timeout() %v, want %v", ne, ne.Timeout(), timeout)
		}
		var ae *client.Error
		if errors.As(err, &ae) {
			t.Fatalf("a network error is no answer of Latch's: %v", err)
		}
	}

	t.Run("closed port", func(t *testing.T) {
		c, err := client.New(closedPort(t))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SignIn(ctx, "ada@example.com", password)
		check(t, err, false)
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Fatalf("%v: want the dial error inside", err)
		}
		_, err = c.API().GetHealthWithResponse(ctx)
		var ue *url.Error
		if check(t, err, false); !errors.As(err, &ue) {
			t.Fatalf("the generated client's error: %v", err)
		}
	})

	t.Run("no answer, WithTimeout", func(t *testing.T) {
		c, err := client.New(silentServer(t), client.WithTimeout(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SignIn(ctx, "ada@example.com", password)
		check(t, err, true)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v: want context.DeadlineExceeded inside", err)
		}
		_, err = c.API().GetHealthWithResponse(ctx)
		check(t, err, true)
	})

	t.Run("no answer, the caller's deadline", func(t *testing.T) {
		c, err := client.New(silentServer(t))
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = c.SignUp(dctx, "ada@example.com", password)
		check(t, err, true)
	})

	t.Run("the caller cancels", func(t *testing.T) {
		c, err := client.New(silentServer(t))
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			time.Sleep(50 * time.Millisecond)
			cancel()
		}()
		_, err = c.SignIn(cctx, "ada@example.com", password)
		if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrNetwork) {
			t.Fatalf("got %v, want context.Canceled and no network error", err)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		l := start(t)
		c, err := client.New(l.URL, client.WithClock(l.Clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		signup(t, c)
		l.front.Close() // Latch goes away; the session stays in the Client
		_, err = c.Refresh(ctx)
		if check(t, err, false); !errors.Is(err, client.ErrRefreshBackoff) {
			t.Fatalf("%v: a failed refresh backs off", err)
		}
	})
}

// A body cut short by the server is a *NetworkError too.
func TestNetworkErrorWhileReadingTheBody(t *testing.T) {
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status":`))
		// Returning with fewer bytes than promised breaks the connection.
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	c, err := client.New("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.API().GetHealthWithResponse(context.Background())
	var ne *client.NetworkError
	if !errors.As(err, &ne) || !errors.Is(err, client.ErrNetwork) {
		t.Fatalf("got %v, want a *client.NetworkError", err)
	}
}
