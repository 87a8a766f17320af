package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchPassword is the password of every account the benchmark makes.
const benchPassword = "latch-bench-Pa55word-7f3c"

// httpc is the load generator's HTTP side: one keep-alive connection per
// worker, loopback only.
type httpc struct {
	base string
	c    *http.Client
}

func newHTTPC(base string, conns int) *httpc {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		MaxConnsPerHost:     conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &httpc{base: base, c: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

func (h *httpc) close() { h.c.CloseIdleConnections() }

// do sends one request and returns the status and, when into is not nil and
// the status is want, decodes the JSON body into it. The body is always read
// to the end so the connection is reused.
func (h *httpc) do(ctx context.Context, method, path string, body []byte, hdr func(http.Header), want int, into any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if hdr != nil {
		hdr(req.Header)
	}
	res, err := h.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if into != nil && res.StatusCode == want {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			return res.StatusCode, err
		}
	}
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != want {
		return res.StatusCode, fmt.Errorf("%s %s: status %d, want %d", method, path, res.StatusCode, want)
	}
	return res.StatusCode, nil
}

// doRaw sends one request with a JSON body and, when the status is want,
// reads the whole response body into *into.
func (h *httpc) doRaw(ctx context.Context, method, path string, body []byte, want int, into *[]byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	res, err := h.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, fmt.Errorf("%s %s: status %d, want %d", method, path, res.StatusCode, want)
	}
	*into, err = io.ReadAll(res.Body)
	return res.StatusCode, err
}

// outcomeOf turns a do result into an outcome.
func outcomeOf(status int, err error) outcome { return outcome{ok: err == nil, status: status} }

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// account is a seeded user: its session's tokens and its API key. The
// refresh scenario rotates refresh in place, so a later run continues the
// chain.
type account struct {
	mu      sync.Mutex
	email   string
	access  string
	refresh string
	apiKey  string
}

func credentials(email string) []byte {
	b, _ := json.Marshal(map[string]string{"email": email, "password": benchPassword})
	return b
}

func bearer(tok string) func(http.Header) {
	v := []string{"Bearer " + tok}
	return func(h http.Header) { h["Authorization"] = v }
}

func apiKeyHeader(key string) func(http.Header) {
	v := []string{key}
	return func(h http.Header) { h["X-Api-Key"] = v }
}

// seedAccounts signs up n accounts (8 at a time) with emails unique to the run.
func seedAccounts(ctx context.Context, h *httpc, run string, n int) ([]*account, error) {
	accts := make([]*account, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range min(8, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				a := &account{email: fmt.Sprintf("seed-%s-%d@bench.example.com", run, i)}
				var tr tokenResponse
				if _, err := h.do(ctx, http.MethodPost, "/auth/signup", credentials(a.email), nil, http.StatusCreated, &tr); err != nil {
					mu.Lock()
					firstErr = cmp(firstErr, err)
					mu.Unlock()
					return
				}
				a.access, a.refresh = tr.AccessToken, tr.RefreshToken
				accts[i] = a
			}
		}()
	}
	wg.Wait()
	return accts, firstErr
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// errUnavailable marks a scenario whose endpoints this build does not serve
// yet (404 not_found).
var errUnavailable = errors.New("endpoint not available in this build (404)")

// seedAPIKeys gives every account a personal API key with the scopes the
// key scenarios need. Returns errUnavailable when /api-keys answers 404.
func seedAPIKeys(ctx context.Context, h *httpc, accts []*account) error {
	body := []byte(`{"label":"latchbench","scopes":["users:read","keys:read","token:exchange"]}`)
	for _, a := range accts {
		var k struct {
			Key string `json:"key"`
		}
		st, err := h.do(ctx, http.MethodPost, "/api-keys", body, bearer(a.access), http.StatusCreated, &k)
		if st == http.StatusNotFound {
			return errUnavailable
		}
		if err != nil {
			return err
		}
		if k.Key == "" {
			return errors.New("POST /api-keys returned no key")
		}
		a.apiKey = k.Key
	}
	return nil
}

// The HTTP scenarios. Each returns its op; state set up per worker comes
// from the accounts.

func floorHTTPOp(hs []*httpc) op {
	return func(ctx context.Context, w *worker) outcome {
		return outcomeOf(next(hs, w).do(ctx, http.MethodGet, "/", nil, nil, http.StatusOK, nil))
	}
}

func signupOp(h *httpc, run string) op {
	var n atomic.Int64
	return func(ctx context.Context, w *worker) outcome {
		email := fmt.Sprintf("s-%s-%d@bench.example.com", run, n.Add(1))
		return outcomeOf(h.do(ctx, http.MethodPost, "/auth/signup", credentials(email), nil, http.StatusCreated, nil))
	}
}

func loginOp(h *httpc, accts []*account) op {
	bodies := make([][]byte, len(accts))
	for i, a := range accts {
		bodies[i] = credentials(a.email)
	}
	return func(ctx context.Context, w *worker) outcome {
		return outcomeOf(h.do(ctx, http.MethodPost, "/auth/login", bodies[w.id%len(bodies)], nil, http.StatusOK, nil))
	}
}

// next returns the instance of the worker's next request: each worker's
// requests go round the instances in turn, starting at a different one per
// worker, so that every instance gets an equal share and a chained refresh
// crosses instances at every step.
func next(hs []*httpc, w *worker) *httpc {
	if len(hs) == 1 {
		return hs[0]
	}
	h := hs[(w.id+w.turn)%len(hs)]
	w.turn++
	return h
}

// refreshOp rotates the worker's own account's refresh token: each
// connection chains its own tokens, on the instances hs in turn. After an
// error (which breaks the chain) the worker logs in again, untimed work
// counted as the error. The token is cut out of the response without a
// JSON decoder, to keep the load generator's share of the CPUs small
// (refresh tokens are base64url, never escaped).
func refreshOp(hs []*httpc, accts []*account) op {
	return func(ctx context.Context, w *worker) outcome {
		h := next(hs, w)
		a := accts[w.id%len(accts)]
		a.mu.Lock()
		defer a.mu.Unlock()
		body := []byte(`{"refresh_token":"` + a.refresh + `"}`)
		var raw []byte
		st, err := h.doRaw(ctx, http.MethodPost, "/auth/refresh", body, http.StatusOK, &raw)
		if err == nil {
			if next := jsonField(raw, "refresh_token"); next != "" {
				a.refresh = next
				return outcome{ok: true, status: st}
			}
		}
		if ctx.Err() == nil {
			var lr tokenResponse
			if _, lerr := h.do(context.WithoutCancel(ctx), http.MethodPost, "/auth/login", credentials(a.email), nil, http.StatusOK, &lr); lerr == nil {
				a.refresh = lr.RefreshToken
			}
		}
		return outcome{ok: false, status: st}
	}
}

// jsonField returns the value of the first "name":"value" string member of
// a flat, unescaped JSON object.
func jsonField(b []byte, name string) string {
	key := []byte(`"` + name + `":"`)
	i := bytes.Index(b, key)
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// meOp reads GET /auth/me with the worker's account's access token, on the
// instances hs in turn.
func meOp(hs []*httpc, accts []*account) op {
	hdrs := make([]func(http.Header), len(accts))
	for i, a := range accts {
		hdrs[i] = bearer(a.access)
	}
	return func(ctx context.Context, w *worker) outcome {
		return outcomeOf(next(hs, w).do(ctx, http.MethodGet, "/auth/me", nil, hdrs[w.id%len(hdrs)], http.StatusOK, nil))
	}
}

func apiKeyReadOp(h *httpc, accts []*account, path string) op {
	hdrs := make([]func(http.Header), len(accts))
	for i, a := range accts {
		hdrs[i] = apiKeyHeader(a.apiKey)
	}
	return func(ctx context.Context, w *worker) outcome {
		return outcomeOf(h.do(ctx, http.MethodGet, path, nil, hdrs[w.id%len(hdrs)], http.StatusOK, nil))
	}
}

func exchangeOp(h *httpc, accts []*account) op {
	hdrs := make([]func(http.Header), len(accts))
	for i, a := range accts {
		hdrs[i] = apiKeyHeader(a.apiKey)
	}
	return func(ctx context.Context, w *worker) outcome {
		return outcomeOf(h.do(ctx, http.MethodPost, "/auth/token", nil, hdrs[w.id%len(hdrs)], http.StatusOK, nil))
	}
}

// probeEndpoint reports whether path answers something other than 404 to a
// GET with an API key of the first account.
func probeEndpoint(ctx context.Context, h *httpc, method, path string, hdr func(http.Header)) (int, error) {
	st, err := h.do(ctx, method, path, nil, hdr, http.StatusOK, nil)
	if st == http.StatusNotFound && strings.HasPrefix(path, "/") {
		return st, errUnavailable
	}
	return st, err
}
