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
