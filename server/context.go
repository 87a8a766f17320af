package server

import (
	"context"

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
