package server

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/latchauth/latch/internal/domain"
)

// The spec's extensions that declare an operation's assurance.
const (
	// extAssurance is the level an operation needs of a user's session:
	// domain.AAL1 or domain.AAL2. Every operation a session can call
	// declares it (spec_test.go holds the rule).
	extAssurance = "x-latch-assurance"
	// extAssuranceExempt names query parameters and the values for which an
	// aal2 operation needs only aal1 (logout of this session alone). An
	// absent parameter has its schema's default.
	extAssuranceExempt = "x-latch-assurance-exempt"
)

// requiredAssurance is the assurance op declares for the request r:
// domain.AAL2 when it needs a second factor, else domain.AAL1 (also for an
// operation that declares nothing, which the spec test forbids for every
// operation a session can call).
func requiredAssurance(op *openapi3.Operation, r *http.Request) string {
	if op == nil {
		return domain.AAL1
	}
	if level, _ := op.Extensions[extAssurance].(string); level != domain.AAL2 {
		return domain.AAL1
	}
	exempt, _ := op.Extensions[extAssuranceExempt].(map[string]any)
	if len(exempt) == 0 {
		return domain.AAL2
	}
	q := r.URL.Query()
	for name, want := range exempt {
		got := q.Get(name)
		if got == "" {
			if p := op.Parameters.GetByInAndName(openapi3.ParameterInQuery, name); p != nil && p.Schema != nil && p.Schema.Value != nil {
				got = fmt.Sprint(p.Schema.Value.Default)
			}
		}
		if got != fmt.Sprint(want) {
			return domain.AAL2
		}
	}
	return domain.AAL1
}

// impersonationAllows reports whether an impersonation token (an operator
// acting as a user) may call op for r. It may read: a GET or HEAD that
// needs only aal1 for the request. It may end its own session: an
// operation that declares aal2 but whose x-latch-assurance-exempt applies
// to r (logout of this session alone). Everything else is refused, derived
// from the spec rather than listed: every credential change, second
// factor, API key, session management and admin operation needs aal2, and
// the aal1 writes (verifying a second factor, which would raise or lock
// the user's assurance, creating an organization, revoking a token,
// resending a verification mail) are not reads.
func impersonationAllows(op *openapi3.Operation, r *http.Request) bool {
	if op == nil || requiredAssurance(op, r) == domain.AAL2 {
		return false
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	declared, _ := op.Extensions[extAssurance].(string)
	return declared == domain.AAL2
}
