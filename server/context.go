package server

import (
	"context"

	"github.com/go-chi/chi/v5"

	"github.com/latchauth/latch/internal/domain"
)

type ctxKey int

const (
	keyRequest ctxKey = iota
)

// requestState is what the middlewares learn about a request before the
// handler runs. The validator's AuthenticationFunc cannot replace the
// request context, so it fills this mutable slot instead.
type requestState struct {
	id        string
	meta      domain.RequestMeta
	principal *domain.Principal
	authErr   error
	// route is chi's route context for the operation the route table
	// found (routed says whether it did): requestContext answers chi's
	// key with it, so routing adds no context of its own.
	route  chi.Context
	routed bool
}

// requestContext is the request's context with its state: it answers
// keyRequest, and chi.RouteCtxKey once the route table has routed the
// request, and asks its parent for anything else. base makes one per
// request, so that neither base nor the route table wraps the context
// (and copies the request) again.
type requestContext struct {
	context.Context
	st *requestState
}

// Value returns the request state, chi's route context, or the parent's
// value for key.
func (c *requestContext) Value(key any) any {
	switch key {
	case keyRequest:
		return c.st
	case chi.RouteCtxKey:
		if c.st.routed {
			return &c.st.route
		}
	}
	return c.Context.Value(key)
}

func stateFrom(ctx context.Context) *requestState {
	if st, ok := ctx.Value(keyRequest).(*requestState); ok {
		return st
	}
	return &requestState{}
}

// principalFrom returns the authenticated principal. Returns CodeUnauthorized
// when the request carried none (which the validator normally prevents).
func principalFrom(ctx context.Context) (*domain.Principal, error) {
	st := stateFrom(ctx)
	if st.principal == nil {
		if st.authErr != nil {
			return nil, st.authErr
		}
		return nil, domain.Errorf(domain.CodeUnauthorized, "authentication required")
	}
	return st.principal, nil
}

func metaFrom(ctx context.Context) domain.RequestMeta { return stateFrom(ctx).meta }
