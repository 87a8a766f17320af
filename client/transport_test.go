package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchauth/latch/client"
	"github.com/latchauth/latch/client/latchapi"
)

// These tests run against local handlers that answer what a test needs:
// 429 and 503 with Retry-After, a refresh that hangs, a 401 on a POST.

func writeError(w http.ResponseWriter, status int, code string, header map[string]string) {
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": code, "request_id": "local"})
}

// flaky answers the first n requests with status and Retry-After, then 200
// echoing the request body. It records each attempt's body.
type flaky struct {
	n, status  int
	retryAfter string
	mu         sync.Mutex
	bodies     []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(b))
	attempt := len(f.bodies)
	f.mu.Unlock()
	if attempt <= f.n {
		h := map[string]string{}
		if f.retryAfter != "" {
			h["Retry-After"] = f.retryAfter
		}
		code := "rate_limited"
		if f.status == 503 {
			code = "unavailable"
		}
		writeError(w, f.status, code, h)
		return
	}
	_, _ = w.Write(b)
}

func (f *flaky) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

func localClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t *testing.T, c *client.Client, ctx context.Context, method, url, body string, header ...string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.HTTPClient().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b), nil
}

func TestRetryAfter(t *testing.T) {
	ctx := context.Background()
	t.Run("429 waits for Retry-After, body replayed", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "1"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL)
		began := time.Now()
		res, body, err := send(t, c, ctx, http.MethodPost, srv.URL+"/auth/login", `{"a":1}`)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || body != `{"a":1}` || f.attempts() != 2 {
			t.Fatalf("status %d, body %q, attempts %d", res.StatusCode, body, f.attempts())
		}
		if f.bodies[0] != f.bodies[1] {
			t.Fatalf("the retry sent %q, not %q", f.bodies[1], f.bodies[0])
		}
		if waited := time.Since(began); waited < time.Second {
			t.Fatalf("retried after %v, before Retry-After", waited)
		}
	})
	t.Run("503 retries GET", func(t *testing.T) {
		f := &flaky{n: 2, status: 503}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 3, BaseDelay: time.Millisecond}))
		res, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/health", "")
		if err != nil || res.StatusCode != 200 || f.attempts() != 3 {
			t.Fatalf("err %v, attempts %d", err, f.attempts())
		}
	})
	t.Run("503 does not retry POST", func(t *testing.T) {
		f := &flaky{n: 1, status: 503, retryAfter: "1"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL)
		res, _, err := send(t, c, ctx, http.MethodPost, srv.URL+"/auth/signup", "{}")
		if err != nil || res.StatusCode != 503 || f.attempts() != 1 {
			t.Fatalf("err %v, status %d, attempts %d", err, res.StatusCode, f.attempts())
		}
	})
	t.Run("503 retries POST with an Idempotency-Key", func(t *testing.T) {
		f := &flaky{n: 1, status: 503}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 1, BaseDelay: time.Millisecond}))
		res, _, err := send(t, c, ctx, http.MethodPost, srv.URL+"/auth/signup", "{}", "Idempotency-Key", "k1")
		if err != nil || res.StatusCode != 200 || f.attempts() != 2 {
			t.Fatalf("err %v, attempts %d", err, f.attempts())
		}
	})
	t.Run("gives up after MaxRetries", func(t *testing.T) {
		f := &flaky{n: 100, status: 429}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 2, BaseDelay: time.Millisecond}))
		res, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/health", "")
		if err != nil || res.StatusCode != 429 || f.attempts() != 3 {
			t.Fatalf("err %v, attempts %d", err, f.attempts())
		}
	})
	t.Run("retries off", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "1"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{}))
		res, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/health", "")
		if err != nil || res.StatusCode != 429 || f.attempts() != 1 {
			t.Fatalf("err %v, attempts %d", err, f.attempts())
		}
	})
	t.Run("Retry-After above MaxDelay is not waited for", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "120"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL)
		began := time.Now()
		res, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/health", "")
		if err != nil || res.StatusCode != 429 || f.attempts() != 1 || time.Since(began) > 5*time.Second {
			t.Fatalf("err %v, attempts %d after %v", err, f.attempts(), time.Since(began))
		}
	})
}

func TestRetryHonoursContext(t *testing.T) {
	t.Run("cancelled while waiting", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "5"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		began := time.Now()
		_, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/health", "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("returned after %v", d)
		}
		if f.attempts() != 1 {
			t.Fatalf("attempts = %d", f.attempts())
		}
	})
	t.Run("deadline before Retry-After", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "5"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		began := time.Now()
		res, err := c.API().GetHealthWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(began); d > time.Second {
			t.Fatalf("waited %v for a retry that could not happen in time", d)
		}
		var ae *client.Error
		if err := client.ResponseError(res); !errors.As(err, &ae) || ae.Code != latchapi.ErrorCodeRateLimited || res.StatusCode() != 429 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("RetryAfter on the typed error", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: "7"}
		srv := httptest.NewServer(f)
		defer srv.Close()
		c := localClient(t, srv.URL, client.WithRetryPolicy(client.RetryPolicy{}))
		_, err := c.SignIn(context.Background(), "a@example.com", "x")
		var ae *client.Error
		if !errors.As(err, &ae) || ae.RetryAfter != 7*time.Second || !errors.Is(err, client.ErrRateLimited) {
			t.Fatalf("err = %#v", err)
		}
	})
}

// fakeLatch answers /auth/refresh with rotated tokens named new-1, new-2...
// and /echo with the request body when the bearer is the latest token, 401
// token_expired otherwise. hold, when set, makes the refresh wait for it.
type fakeLatch struct {
	refreshes atomic.Int32
	hold      chan struct{}
	mu        sync.Mutex
	latest    string
}

func (f *fakeLatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/auth/refresh":
		if f.hold != nil {
			<-f.hold
		}
		n := f.refreshes.Add(1)
		tok := "new-" + string(rune('0'+n))
		f.mu.Lock()
		f.latest = tok
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok, "token_type": "Bearer", "expires_in": 900,
			"expires_at": time.Now().Add(15 * time.Minute), "refresh_token": "r-" + tok,
			"session_id": "6f1c1a62-6d1e-4f7e-8d43-2f1a3c1d2b10",
			"user":       map[string]any{"id": "0b8f2f3e-1d2c-4b5a-9e8f-7a6b5c4d3e2f", "email_verified": false, "created_at": time.Now()},
		})
	case "/echo":
		f.mu.Lock()
		ok := r.Header.Get("Authorization") == "Bearer "+f.latest
		f.mu.Unlock()
		if !ok {
			writeError(w, 401, "token_expired", map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`})
			return
		}
		_, _ = io.Copy(w, r.Body)
	default:
		http.NotFound(w, r)
	}
}

func TestRetryAfter401ReplaysBody(t *testing.T) {
	ctx := context.Background()
	f := &fakeLatch{latest: "unknown"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := localClient(t, srv.URL)
	if err := c.SetTokens(ctx, &client.Tokens{AccessToken: "old", RefreshToken: "r-old", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, body, err := send(t, c, ctx, http.MethodPost, srv.URL+"/echo", "the body")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || body != "the body" || f.refreshes.Load() != 1 {
		t.Fatalf("status %d, body %q, refreshes %d", res.StatusCode, body, f.refreshes.Load())
	}

	// A body that cannot be replayed is not retried: the 401 stands.
	f.mu.Lock()
	f.latest = "rotated-elsewhere"
	f.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/echo", io.NopCloser(bytes.NewReader([]byte("once"))))
	res, err = c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || f.refreshes.Load() != 1 {
		t.Fatalf("status %d, refreshes %d", res.StatusCode, f.refreshes.Load())
	}
}

func TestRefreshSurvivesCallerCancel(t *testing.T) {
	f := &fakeLatch{hold: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	clock := newFakeClock()
	c := localClient(t, srv.URL, client.WithClock(clock.Now))
	bg := context.Background()
	if err := c.SetTokens(bg, &client.Tokens{AccessToken: "old", RefreshToken: "r-old", IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute) // expired: the next call must refresh

	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if _, _, err := send(t, c, ctx, http.MethodGet, srv.URL+"/echo", ""); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrNetwork) {
		t.Fatalf("err = %v, want the caller's deadline, a network error", err)
	}
	close(f.hold) // the refresh goes on without the caller
	deadline := time.Now().Add(5 * time.Second)
	for f.refreshes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The next call finds the refreshed token (or joins the refresh).
	res, _, err := send(t, c, bg, http.MethodGet, srv.URL+"/echo", "")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after the refresh: %v", err)
	}
	if n := f.refreshes.Load(); n != 1 {
		t.Fatalf("refreshes = %d, want 1", n)
	}
}

func TestRefreshTimeout(t *testing.T) {
	f := &fakeLatch{hold: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	defer close(f.hold)
	clock := newFakeClock()
	c := localClient(t, srv.URL, client.WithClock(clock.Now), client.WithRefreshTimeout(200*time.Millisecond))
	bg := context.Background()
	_ = c.SetTokens(bg, &client.Tokens{AccessToken: "old", RefreshToken: "r-old", IssuedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)})
	clock.Advance(2 * time.Minute)
	began := time.Now()
	_, _, err := send(t, c, bg, http.MethodGet, srv.URL+"/echo", "")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrNetwork) || time.Since(began) > 3*time.Second {
		t.Fatalf("err = %v after %v, want the refresh timeout", err, time.Since(began))
	}
}

// A Retry-After date is read on the Client's clock (WithClock), not the
// wall clock: here the Client's clock runs an hour ahead, and the server
// asks to retry now on that clock. (Latch itself sends delay-seconds.)
func TestRetryAfterDateOnTheClientsClock(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.Advance(time.Hour)
	date := func(d time.Duration) string { return clock.Now().Add(d).UTC().Format(http.TimeFormat) }

	t.Run("retried within MaxDelay", func(t *testing.T) {
		f := &flaky{n: 1, status: 429, retryAfter: date(0)}
		srv := httptest.NewServer(f)
		defer srv.Close()
		// On the wall clock the date is an hour away, past MaxDelay: the
		// Client would give up instead of retrying.
		c := localClient(t, srv.URL, client.WithClock(clock.Now),
			client.WithRetryPolicy(client.RetryPolicy{MaxRetries: 1, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second}))
		res, _, err := send(t, c, ctx, http.MethodPost, srv.URL+"/auth/login", `{}`)
		if err != nil || res.StatusCode != 200 || f.attempts() != 2 {
			t.Fatalf("err %v, attempts %d; want one retry", err, f.attempts())
		}
	})
}
