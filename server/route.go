package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"
)

// routeTable routes a request once: chi's tree (the one the generated
// handlers are registered on) finds the pattern, and the table gives that
// operation's kin-openapi route, to validate the request and check its
// security, and its generated handler, to serve it. Every operation of
// the spec has both, or newRouteTable fails.
type routeTable struct {
	mux    *chi.Mux
	routes map[routeKey]*routeEntry
}

// routeKey is an operation's method and path pattern (a struct, so that a
// lookup builds no string).
type routeKey struct{ method, pattern string }

type routeEntry struct {
	route   *routers.Route
	handler http.Handler
}

// newRouteTable pairs the spec's operations with the handlers registered on
// mux. Returns an error when an operation has no handler or a handler no
// operation.
func newRouteTable(doc *openapi3.T, mux *chi.Mux) (*routeTable, error) {
	t := &routeTable{mux: mux, routes: map[routeKey]*routeEntry{}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			t.routes[routeKey{method, path}] = &routeEntry{route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}}
		}
	}
	err := chi.Walk(mux, func(method, pattern string, h http.Handler, mws ...func(http.Handler) http.Handler) error {
		e := t.routes[routeKey{method, pattern}]
		if e == nil {
			return fmt.Errorf("server: %s %s is served but not in the spec", method, pattern)
		}
		e.handler = chi.Chain(mws...).Handler(h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var missing []string
	for k, e := range t.routes {
		if e.handler == nil {
			missing = append(missing, k.method+" "+k.pattern)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("server: operations without a handler: %v", missing)
	}
	return t, nil
}

// serve returns the handler that routes each request once, validates it
// against its operation (parameters, body, and security through
// opts.AuthenticationFunc, which also enforces scope, operator and
// assurance), and calls the operation's handler. A request that matches
// no operation goes to the mux, whose NotFound and MethodNotAllowed
// handlers answer it.
func (t *routeTable) serve(opts *openapi3filter.Options, fail func(ctx context.Context, err error, w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The route context lives in the request state base made, which
		// the request's context answers chi's key with; a request that
		// came without one (a test of the table alone) gets its own.
		st, _ := r.Context().Value(keyRequest).(*requestState)
		if st == nil {
			st = &requestState{}
			r = r.WithContext(&requestContext{Context: r.Context(), st: st})
		}
		rctx := &st.route
		rctx.Reset()
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		e := t.routes[routeKey{r.Method, t.mux.Find(rctx, r.Method, path)}]
		if e == nil {
			t.mux.ServeHTTP(w, r)
			return
		}
		var params map[string]string
		if keys := rctx.URLParams.Keys; len(keys) > 0 {
			params = make(map[string]string, len(keys))
			for i, k := range keys {
				v := rctx.URLParams.Values[i]
				if r.URL.RawPath != "" {
					if u, err := url.PathUnescape(v); err == nil {
						v = u
					}
				}
				params[k] = v
			}
		}
		// The generated handler reads its path parameters from chi's
		// route context, as it would had chi routed the request.
		st.routed = true
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: e.route, Options: opts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			fail(r.Context(), err, w, r)
			return
		}
		e.handler.ServeHTTP(w, r)
	})
}
