package contract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// fields records which properties the server's successful JSON responses
// carry, so that a property the spec declares but no response ever sends (a
// field a hand-written encoder forgot, or one a handler never fills) fails
// the contract test. A property of a named schema (components/schemas) counts
// as sent when any response sends it wherever that schema appears; a
// property of an inline schema is counted per operation and status.
type fields struct {
	mu       sync.Mutex
	seen     map[string]bool // "Schema.prop" or "operationId status .path"
	declared map[string]bool // the same keys, for every schema a response used
}

func (f *fields) record(t *testing.T, router routers.Router, req *http.Request, res *http.Response, body []byte) {
	if res.StatusCode < 200 || res.StatusCode > 299 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return
	}
	r2 := req.Clone(req.Context())
	r2.URL = &url.URL{Path: req.URL.Path, RawQuery: req.URL.RawQuery}
	route, _, err := router.FindRoute(r2)
	if err != nil {
		return // ValidateResponse reports it
	}
	ref := route.Operation.Responses.Status(res.StatusCode)
	if ref == nil || ref.Value == nil {
		return
	}
	mt := ref.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen, f.declared = map[string]bool{}, map[string]bool{}
	}
	f.walk(mt.Schema, v, fmt.Sprintf("%s %d ", route.Operation.OperationID, res.StatusCode), 4)
}

// walk visits value v against schema ref: every property the schema declares
// is declared, every one v carries is seen.
func (f *fields) walk(ref *openapi3.SchemaRef, v any, prefix string, depth int) {
	if ref == nil || ref.Value == nil || depth == 0 {
		return
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		prefix = name + "."
	}
	s := ref.Value
	for _, sub := range s.AllOf {
		f.walk(sub, v, prefix, depth)
	}
	if len(s.OneOf) > 0 || len(s.AnyOf) > 0 {
		// Whichever alternative v is: the one whose required properties it has.
		obj, _ := v.(map[string]any)
		for _, sub := range append(append([]*openapi3.SchemaRef{}, s.OneOf...), s.AnyOf...) {
			if sub.Value != nil && hasAll(obj, sub.Value.Required) {
				f.walk(sub, v, prefix, depth)
				break
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for name, p := range s.Properties {
			f.declared[prefix+name] = true
			if e, ok := x[name]; ok {
				f.seen[prefix+name] = true
				f.walk(p, e, prefix+name+".", depth-1)
			}
		}
	case []any:
		for _, e := range x {
			f.walk(s.Items, e, prefix+"[].", depth)
		}
	}
}

func hasAll(obj map[string]any, names []string) bool {
	if obj == nil {
		return false
	}
	for _, n := range names {
		if _, ok := obj[n]; !ok {
			return false
		}
	}
	return true
}

// neverSent are the declared response properties that the scripted flow
// cannot make the server send, each with the reason. Keep it short: every
// entry is a field no contract run checks.
var neverSent = map[string]string{
	"APIKey.revoked_at":                  "every list and lookup of keys returns active keys only; server/apikeys.go fills the field from the key",
	"JWK.n":                              "RSA keys only; the contract run signs with the default algorithm (server/keys_test.go covers RS256)",
	"JWK.e":                              "RSA keys only, like n",
	"ExchangeResponse.issued_token_type": "only the RFC 8693 grant answers it (server/oauth_test.go, interop/)",
	"ExchangeResponse.mfa":               "only a provider sign-in of a user with a second factor answers it (server/providers_test.go TestProviderSignInAndMFA)",
	"Event.key_id":                       "only events about an API key carry it; the flow lists the events of an account that has no key",
	"APIKeyList.next_cursor":             "sent only when a further page exists; paging is tested in server/security_test.go",
	"InvitationList.next_cursor":         "sent only when a further page exists, like APIKeyList",
	"MemberList.next_cursor":             "sent only when a further page exists, like APIKeyList",
	"OrganizationList.next_cursor":       "sent only when a further page exists, like APIKeyList",
	"SessionList.next_cursor":            "sent only when a further page exists, like APIKeyList",
	"WebhookEndpointList.next_cursor":    "sent only when a further page exists, like APIKeyList",
	"WebhookDeliveryList.next_cursor":    "sent only when a further page exists, like APIKeyList",
	"WebhookEndpoint.disabled_at":        "set only after five days of failures (server/webhooks_test.go advances the clock)",
}

// checkFields fails for every property of a schema that a 2xx response used
// and that no response of the flow carried.
func checkFields(t *testing.T, f *fields) {
	t.Helper()
	var missing []string
	for k := range f.declared {
		if !f.seen[k] && neverSent[k] == "" {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("declared response properties that no response of the flow carried (add them to the flow, or to neverSent with the reason):\n  %s",
			strings.Join(missing, "\n  "))
	}
}
