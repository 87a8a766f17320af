package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
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
	var b [32]byte // 12 hex digits, "-", at most 13 base-36 digits
	id := append(append(b[:0], g.prefix...), '-')
	return string(strconv.AppendUint(id, g.n.Add(1), 36))
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

// baseAlloc is what base allocates per request, in one piece.
type baseAlloc struct {
	state requestState
	ctx   requestContext
	rec   statusRecorder
	vals  [4]string
}

// headerValue is h.Get(key) for a key already in canonical form
// (textproto.CanonicalMIMEHeaderKey(key) == key), without canonicalising
// it again.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// base is the outermost middleware: request id, client metadata, panic
// recovery, body cap, common headers and the access log.
func (h *handler) base(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// One allocation for what every request needs: its state, the
		// status recorder and the values of the common headers, which are
		// set by their canonical names (Header.Set would canonicalise each
		// name and allocate each value's slice).
		b := &baseAlloc{}
		st := &b.state
		if id := headerValue(r.Header, "X-Request-Id"); validRequestID(id) {
			st.id = id
		} else {
			st.id = h.ids.next()
		}
		st.meta = domain.RequestMeta{IP: h.clientIP(r), UserAgent: headerValue(r.Header, "User-Agent")}
		b.ctx = requestContext{Context: r.Context(), st: st}
		r = r.WithContext(&b.ctx)
		hd := w.Header()
		b.vals = [4]string{st.id, "nosniff", "no-store", "no-cache"}
		hd["X-Request-Id"] = b.vals[0:1:1]
		hd["X-Content-Type-Options"] = b.vals[1:2:2]
		switch r.URL.Path {
		case "/.well-known/jwks.json":
			// Below LATCH_KEY_PUBLISH_DELAY (10 minutes by default): a resource
			// server's cached JWKS knows a rotated-in key before it signs.
			hd.Set("Cache-Control", "public, max-age=300")
		case "/docs", "/openapi.yaml", "/openapi.json", "/health",
			"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/favicon.ico":
		default:
			// Responses may carry tokens: never cache them anywhere.
			hd["Cache-Control"] = b.vals[2:3:3]
			hd["Pragma"] = b.vals[3:4:4]
		}
		pageHeaders(hd, r.URL.Path)
		rec := &b.rec
		rec.ResponseWriter = w
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
			// A client that went away is no failure of ours: writeError said
			// so once at debug; the metrics count it as 499 (nginx's "client
			// closed request"), not as the 503 nobody received.
			gone := r.Context().Err() != nil
			status := rec.status
			if gone {
				status = StatusClientClosedRequest
			}
			took := time.Since(start)
			if h.cfg.Observe != nil {
				h.cfg.Observe(r.Method, r.URL.Path, status, took)
			}
			if !gone && h.log.Enabled(r.Context(), slog.LevelInfo) {
				// The query string is not logged: it may carry an email.
				// The record is made here rather than by LogAttrs, which would
				// read the clock again and walk the stack for a source
				// location the access log never prints.
				line := slog.NewRecord(start.Add(took), slog.LevelInfo, "request", 0)
				line.AddAttrs(slog.String("request_id", st.id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
					slog.Duration("duration", took), slog.String("ip", st.meta.IP))
				_ = h.log.Handler().Handle(r.Context(), line)
			}
		}()
		limit := h.cfg.MaxBodyBytes
		if r.Method == http.MethodPost && r.URL.Path == importPath {
			limit = max(limit, maxImportBodyBytes)
		}
		if r.ContentLength > limit {
			writeError(h.log, rec, r, domain.Errorf(domain.CodePayloadTooLarge, "the body is over %d bytes", limit))
			return
		}
		if r.Body != nil && r.Body != http.NoBody { // a bodyless request has nothing to cap
			r.Body = http.MaxBytesReader(rec, r.Body, limit)
		}
		// Some clients send API keys as "apikey"; the spec names X-API-Key.
		if headerValue(r.Header, "X-Api-Key") == "" {
			if k := headerValue(r.Header, "Apikey"); k != "" {
				r.Header.Set("X-API-Key", k)
			}
		}
		next.ServeHTTP(rec, r)
	})
}

// clientIP returns the client's address, as recorded on sessions and
// events and logged; rate limits key it with ratelimit.IPKey. It is the TCP
// peer, unless the peer is one of cfg.TrustedProxies: then the
// X-Forwarded-For headers (all of them, in order) are read from the right,
// trusted proxies are skipped, and the first address that is not one is the
// client. An entry that is not an address (or address:port) ends the walk at
// the last address read, a trusted proxy, so a forged or garbled header can
// make a request count against its proxy but never against an address of
// the sender's choosing. When every hop is trusted, the leftmost is the
// client. IPv4-mapped IPv6 addresses are returned as IPv4, without zone.
func (h *handler) clientIP(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	if !h.trusted(peer) {
		return peer.String()
	}
	client := peer
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		for v := xff[i]; v != ""; {
			j := strings.LastIndexByte(v, ',')
			entry := strings.TrimSpace(v[j+1:])
			v = v[:max(j, 0)]
			a, ok := parseHop(entry)
			if !ok {
				return client.String()
			}
			client = a
			if !h.trusted(a) {
				return a.String()
			}
		}
	}
	return client.String()
}

func (h *handler) trusted(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses an address or address:port (IPv6 in brackets), unmapping
// IPv4-mapped IPv6 and dropping any zone.
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes and
// single addresses (a single address is a /32 or /128) for
// Config.TrustedProxies. An IPv4-mapped IPv6 entry is taken as its IPv4
// form, as clientIP takes addresses. Returns an error naming the first entry
// that is neither.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(e, "/") {
			var err error
			if p, err = netip.ParsePrefix(e); err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", e)
			}
			if a := p.Addr(); a.Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("%q: an IPv4-mapped prefix must be at least /96", e)
				}
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
		} else {
			a, err := netip.ParseAddr(e)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", e)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
