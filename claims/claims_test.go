package claims_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/latchauth/latch/claims"
)

// TestClaimsAreTheSchema keeps AccessTokenClaims equal to the
// AccessTokenClaims schema of openapi.yaml, the definition that the
// generated models point at with x-go-type: a property added to either
// without the other, or given another type, fails here.
func TestClaimsAreTheSchema(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				XGoType    string `yaml:"x-go-type"`
				Properties map[string]struct {
					Type   string `yaml:"type"`
					Format string `yaml:"format"`
					Items  *struct {
						Type string `yaml:"type"`
					} `yaml:"items"`
				} `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schema, ok := doc.Components.Schemas["AccessTokenClaims"]
	if !ok {
		t.Fatal("openapi.yaml has no AccessTokenClaims schema")
	}
	if schema.XGoType != "claims.AccessTokenClaims" {
		t.Errorf("the schema's x-go-type is %q, want claims.AccessTokenClaims", schema.XGoType)
	}
	// The Go types a kind of property may be read into: aud is a
	// jwt.ClaimStrings, which also reads a single string; times are
	// jwt.NumericDates.
	types := map[string][]reflect.Type{
		"string":          {reflect.TypeFor[string]()},
		"array of string": {reflect.TypeFor[[]string](), reflect.TypeFor[jwt.ClaimStrings]()},
		"integer int64":   {reflect.TypeFor[*jwt.NumericDate]()},
		"object":          {reflect.TypeFor[*claims.Actor](), reflect.TypeFor[json.RawMessage](), reflect.TypeFor[map[string]any]()},
	}
	fields := map[string]reflect.Type{}
	rt := reflect.TypeFor[claims.AccessTokenClaims]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || opts != "omitempty" {
			t.Errorf("field %s: json tag %q, want the claim's name and omitempty", f.Name, f.Tag.Get("json"))
			continue
		}
		fields[name] = f.Type
	}
	for name, p := range schema.Properties {
		kind := p.Type
		if p.Items != nil {
			kind += " of " + p.Items.Type
		}
		if p.Format != "" {
			kind += " " + p.Format
		}
		got, ok := fields[name]
		switch {
		case !ok:
			t.Errorf("the schema's claim %q has no field in AccessTokenClaims", name)
		case !slices.Contains(types[kind], got):
			t.Errorf("claim %q: a field of type %v for a property of %s (want one of %v)", name, got, kind, types[kind])
		}
	}
	for name := range fields {
		if _, ok := schema.Properties[name]; !ok {
			t.Errorf("the field of claim %q is not in the schema's properties", name)
		}
	}
}
