package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latchauth/latch/internal/domain"
)

// requestIDs makes request ids: a random per-process prefix and a counter,
// unique without a syscall per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b)}
}

func (g *requestIDs) next() string {
	return g.prefix + "-" + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID accepts a caller's X-Request-Id only when it is short and
// plain, so it cannot inject anything into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// base is the outermost middleware: request id, client metadata, panic
// recovery, body cap, common headers and the access log.
func (h *handler) base(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &requestState{}
		if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
			st.id = id
		} else {
			st.id = h.ids.next()
		}
		st.meta = domain.RequestMeta{IP: h.clientIP(r), UserAgent: r.UserAgent()}
		r = r.WithContext(context.WithValue(r.Context(), keyRequest, st))
		hd := w.Header()
		hd.Set("X-Request-Id", st.id)
		hd.Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "/docs", "/openapi.yaml", "/openapi.json", "/.well-known/jwks.json", "/health":
		default:
			// Responses may carry tokens: never cache them anywhere.
			hd.Set("Cache-Control", "no-store")
			hd.Set("Pragma", "no-cache")
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic", "request_id", st.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(h.log, rec, r, fmt.Errorf("panic: %v", v))
				}
			}
			if h.log.Enabled(r.Context(), slog.LevelInfo) {
				// The query string is not logged: it may carry an email.
				h.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("request_id", st.id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
					slog.Duration("duration", time.Since(start)), slog.String("ip", st.meta.IP))
			}
		}()
		if r.ContentLength > h.cfg.MaxBodyBytes {
			writeError(h.log, rec, r, domain.Errorf(domain.CodePayloadTooLarge, "the body is over %d bytes", h.cfg.MaxBodyBytes))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, h.cfg.MaxBodyBytes)
		}
		// Some clients send API keys as "apikey"; the spec names X-API-Key.
		if r.Header.Get("X-API-Key") == "" {
			if k := r.Header.Get("apikey"); k != "" {
				r.Header.Set("X-API-Key", k)
			}
		}
		next.ServeHTTP(rec, r)
	})
}

// clientIP is the peer address, or with TrustProxy the address the nearest
// proxy appended to X-Forwarded-For.
func (h *handler) clientIP(r *http.Request) string {
	if h.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// cors answers preflights and sets CORS headers for the allowed origins.
func (h *handler) cors(next http.Handler) http.Handler {
	if len(h.cfg.CORSOrigins) == 0 {
		return next
	}
	any := slices.Contains(h.cfg.CORSOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (any || slices.Contains(h.cfg.CORSOrigins, origin)) {
			hd := w.Header()
			hd.Add("Vary", "Origin")
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, WWW-Authenticate")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				hd.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
				hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key, apikey, X-Request-Id")
				hd.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
