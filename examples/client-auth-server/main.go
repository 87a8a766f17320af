// Command client-auth-server is a customer's backend that keeps an
// organization API key secret and hands its frontend SDK short-lived Latch
// access tokens: GET or POST /token answers {"accessToken", "expiresIn"}.
//
// The token comes from Latch's /auth/token exchange. The SDK caches it and
// exchanges again before it expires, so a burst of frontends costs Latch one
// exchange. Latch's refusals are passed on with their status and body.
//
// Configuration (environment; flags override all but the key):
//
//	LATCH_API_KEY      the organization API key, with token:exchange (required)
//	LATCH_URL          -latch-url   Latch's base URL (http://127.0.0.1:8080)
//	LATCH_SCOPES       -scopes      scopes to ask for, comma-separated (all of the key's)
//	ADDR               -addr        listen address (127.0.0.1:8081)
//	CORS_ORIGINS       -cors-origins origins allowed to call /token, comma-separated
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/latchauth/latch/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, hooks{}); err != nil {
		fmt.Fprintln(os.Stderr, "client-auth-server:", err)
		os.Exit(1)
	}
}

// config is the whole configuration.
type config struct {
	Addr        string
	LatchURL    string
	APIKey      string
	Scopes      []string
	CORSOrigins []string
}

// parseConfig reads the environment, then flags. Returns an error naming
// what is missing or wrong, before anything listens.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	c := config{Addr: "127.0.0.1:8081", LatchURL: "http://127.0.0.1:8080"}
	if v := getenv("ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("LATCH_URL"); v != "" {
		c.LatchURL = v
	}
	scopes, origins := getenv("LATCH_SCOPES"), getenv("CORS_ORIGINS")
	fs := flag.NewFlagSet("client-auth-server", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (ADDR)")
	fs.StringVar(&c.LatchURL, "latch-url", c.LatchURL, "Latch base URL (LATCH_URL)")
	fs.StringVar(&scopes, "scopes", scopes, "scopes to ask for, comma-separated (LATCH_SCOPES)")
	fs.StringVar(&origins, "cors-origins", origins, "allowed CORS origins, comma-separated (CORS_ORIGINS)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Scopes, c.CORSOrigins = list(scopes), list(origins)
	// The key is never a flag: flags show in ps and shell history.
	c.APIKey = strings.TrimSpace(getenv("LATCH_API_KEY"))
	if c.APIKey == "" {
		return c, errors.New("LATCH_API_KEY is not set: set it to an organization API key with the token:exchange scope")
	}
	return c, nil
}

func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// hooks let tests watch and steer run.
type hooks struct {
	ready   func(addr string)
	now     func() time.Time
	options []client.Option
}

// run serves until ctx ends. Returns an error for a bad configuration
// before listening, and for a failure to listen or serve.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, h hooks) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	now := h.now
	if now == nil {
		now = time.Now
	}
	var exchange client.ExchangeRequest
	if len(cfg.Scopes) > 0 {
		exchange.Scopes = &cfg.Scopes
	}
	opts := append([]client.Option{client.WithAPIKeyExchange(cfg.APIKey, exchange), client.WithClock(now)}, h.options...)
	c, err := client.New(cfg.LatchURL, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(c, cfg.CORSOrigins, now),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	if h.ready != nil {
		h.ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}

// newHandler serves /token.
func newHandler(c *client.Client, origins []string, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Message: "use GET or POST"})
			return
		}
		tok, err := c.Token(r.Context())
		if err != nil {
			writeUpstreamError(w, err)
			return
		}
		// On the SDK's clock, the one that decides renewals.
		expiresIn := int(tok.ExpiresAt.Sub(now()) / time.Second)
		writeJSON(w, http.StatusOK, struct {
			AccessToken string `json:"accessToken"`
			ExpiresIn   int    `json:"expiresIn"`
		}{tok.AccessToken, max(expiresIn, 0)})
	})
	return cors(origins, mux)
}

type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// writeUpstreamError passes Latch's refusal on with its status, and answers
// 502 when Latch cannot be reached. While the SDK backs off after a failed
// exchange (its token had expired), Retry-After says when it tries again.
func writeUpstreamError(w http.ResponseWriter, err error) {
	retryAfter := time.Duration(0)
	var backoff *client.RefreshBackoffError
	if errors.As(err, &backoff) {
		retryAfter = backoff.RetryAfter
	}
	var ae *client.Error
	if errors.As(err, &ae) && retryAfter == 0 {
		retryAfter = ae.RetryAfter
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((retryAfter+time.Second-1)/time.Second)))
	}
	if ae != nil {
		writeJSON(w, ae.StatusCode, errorBody{Error: string(ae.Code), Message: ae.Message, RequestID: ae.RequestID})
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the caller left
	}
	writeJSON(w, http.StatusBadGateway, errorBody{Error: "unavailable", Message: "the authentication service cannot be reached"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cors allows the configured origins to call the handler from a browser.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if origin != "" && (slices.Contains(origins, "*") || slices.Contains(origins, origin)) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
