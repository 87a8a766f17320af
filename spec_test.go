package latch

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSpecLint validates openapi.yaml with kin-openapi, examples included,
// and checks the house rules every operation must follow.
func TestSpecLint(t *testing.T) {
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" || len(op.Tags) == 0 || op.Summary == "" {
				t.Errorf("%s: needs an operationId, a tag and a summary", where)
			}
			if op.Responses.Value("500") == nil {
				t.Errorf("%s: does not declare 500", where)
			}
			scope, _ := op.Extensions["x-latch-scope"].(string)
			if scope != "" && !strings.Contains(scope, ":") {
				t.Errorf("%s: x-latch-scope %q is not name:action", where, scope)
			}
			if op.Security != nil {
				for _, req := range *op.Security {
					if _, ok := req["apiKeyAuth"]; ok && scope == "" {
						t.Errorf("%s: accepts API keys but names no x-latch-scope", where)
					}
				}
			}
			checkAssurance(t, where, path, method, op, doc.Security)
			if op.RequestBody != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					s := mt.Schema.Value
					if ct == "application/json" && s.Type.Is("object") && (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) {
						t.Errorf("%s: request body must set additionalProperties: false", where)
					}
					for name, p := range s.Properties {
						if p.Value.Example == nil && p.Value.Default == nil {
							t.Errorf("%s: request property %q has no example", where, name)
						}
					}
				}
				if op.Responses.Value("413") == nil || op.Responses.Value("400") == nil {
					t.Errorf("%s: has a body but does not declare 400 and 413", where)
				}
			}
		}
	}
}

// sensitivePrefixes are the paths whose writes change a credential, a
// factor, a session, an organization's membership, roles, keys, audiences
// or invitations, or recovery settings: every non-GET operation under them
// needs aal2 unless reviewed into assuranceAAL1 below.
var sensitivePrefixes = []string{"/auth/password/change", "/auth/mfa/", "/sessions", "/api-keys", "/organizations", "/invitations", "/admin"}

// assuranceAAL1 are the writes under sensitivePrefixes that need only
// aal1, each with the reason it was reviewed.
var assuranceAAL1 = map[string]string{
	"verifyMFA":                 "it is how an aal1 session reaches aal2",
	"beginWebAuthnVerification": "it starts the ceremony that reaches aal2",
	"createOrganization":        "it creates an organization owned by the caller; it changes nobody's access",
}

// checkAssurance holds the assurance rule of openapi.yaml: every operation
// a user's session can call declares x-latch-assurance (aal1 or aal2), and
// every write under sensitivePrefixes declares aal2 unless reviewed.
func checkAssurance(t *testing.T, where, path, method string, op *openapi3.Operation, global openapi3.SecurityRequirements) {
	t.Helper()
	level, _ := op.Extensions["x-latch-assurance"].(string)
	security := global
	if op.Security != nil {
		security = *op.Security
	}
	bearer := false
	for _, req := range security {
		if _, ok := req["bearerAuth"]; ok {
			bearer = true
		}
	}
	switch {
	case bearer && level != "aal1" && level != "aal2":
		t.Errorf("%s: a session can call it, but it declares no x-latch-assurance (aal1 or aal2)", where)
	case !bearer && level != "":
		t.Errorf("%s: declares x-latch-assurance but no session can call it", where)
	}
	if _, ok := op.Extensions["x-latch-assurance-exempt"]; ok && level != "aal2" {
		t.Errorf("%s: an exemption from aal2 without aal2", where)
	}
	if method == "GET" || !bearer {
		return
	}
	for _, p := range sensitivePrefixes {
		if strings.HasPrefix(path, p) && level != "aal2" {
			if _, ok := assuranceAAL1[op.OperationID]; !ok {
				t.Errorf("%s: changes what %s guards but declares %q, not aal2", where, p, level)
			}
		}
	}
}
