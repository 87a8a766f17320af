package latch

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
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

// TestErrorCodesAreTheSpecs ties every hand-written list of error codes to
// the spec's ErrorCode enum, the one list: the domain's codes and the Go
// SDK's sentinels are exactly the enum, client/verify answers only codes of
// it, and the TypeScript and Python SDKs' generated code unions are the enum
// (so an SDK whose generated files went stale fails here too). The status
// map of the HTTP layer is tied to it by server/codes_internal_test.go.
func TestErrorCodesAreTheSpecs(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	if len(enum) == 0 {
		t.Fatal("openapi.yaml has no ErrorCode enum")
	}
	slices.Sort(enum)
	same := func(what string, got []string) {
		t.Helper()
		for _, c := range enum {
			if !slices.Contains(got, c) {
				t.Errorf("%s lacks the spec's code %q", what, c)
			}
		}
		for _, c := range got {
			if !slices.Contains(enum, c) {
				t.Errorf("%s has the code %q, which is not in the spec's ErrorCode enum", what, c)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
			t.Errorf("%s lists a code twice", what)
		}
	}
	same("internal/domain (Code constants)", codeConsts(t, "internal/domain", "Code"))
	same("client (Code constants)", codeConsts(t, "client", "Code"))
	for _, c := range codeConsts(t, "client/verify", "Code") {
		if !slices.Contains(enum, c) {
			t.Errorf("client/verify answers %q, which is not in the spec's ErrorCode enum", c)
		}
	}
	same("sdk/typescript/src/schema.gen.ts (ErrorCode)", quotedAfter(t, "sdk/typescript/src/schema.gen.ts", "ErrorCode: ", ";", `"`))
	same("sdk/python/src/latch_client/models.py (ErrorCode)", quotedAfter(t, "sdk/python/src/latch_client/models.py", "ErrorCode = Literal[", "]", `'`))
}

// codeConsts returns the values of the constants of type typ declared in the
// package in dir (tests left out). Each must be a string literal, so that
// the list is what the source says.
func codeConsts(t *testing.T, dir, typ string) []string {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
						continue
					}
					for i, v := range vs.Values {
						lit, ok := v.(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("%s: the %s constant %s is not a string literal", dir, typ, vs.Names[i].Name)
							continue
						}
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, s)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s declares no constant of type %s", dir, typ)
	}
	return out
}

// quotedAfter returns the strings quoted with q between the first start in
// the file and the next end.
func quotedAfter(t *testing.T, file, start, end, q string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), start)
	if !ok {
		t.Fatalf("%s has no %q", file, start)
	}
	list, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("%s: no %q after %q", file, end, start)
	}
	var out []string
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(q)+`([a-z_]+)`+regexp.QuoteMeta(q)).FindAllStringSubmatch(list, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestOutboundEventTypesAreTheSpecs ties the outbound event types to the
// spec: every domain.Out* constant is in the OutboundEventType enum and
// the OutboundEvent discriminator, and vice versa, and each type's variant
// carries as data the ...EventData schema that declares that type in
// x-latch-event-type.
func TestOutboundEventTypesAreTheSpecs(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	pkgs, err := parser.ParseDir(token.NewFileSet(), "internal/domain", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, sp := range g.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if !strings.HasPrefix(n.Name, "Out") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok {
							t.Fatalf("%s is not a string literal", n.Name)
						}
						v, _ := strconv.Unquote(lit.Value)
						consts = append(consts, v)
					}
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("no domain.Out* constants found")
	}
	var enum []string
	for _, v := range doc.Components.Schemas["OutboundEventType"].Value.Enum {
		enum = append(enum, v.(string))
	}
	ev := doc.Components.Schemas["OutboundEvent"].Value
	var mapped []string
	for typ, ref := range ev.Discriminator.Mapping {
		mapped = append(mapped, typ)
		name := strings.TrimPrefix(ref.Ref, "#/components/schemas/")
		variant := doc.Components.Schemas[name]
		if variant == nil {
			t.Errorf("%s maps to the missing schema %s", typ, name)
			continue
		}
		var data *openapi3.SchemaRef
		for _, part := range variant.Value.AllOf {
			if d := part.Value.Properties["data"]; d != nil {
				data = d
			}
		}
		if data == nil || data.Value.Extensions["x-latch-event-type"] != typ {
			t.Errorf("%s: its data is not the schema whose x-latch-event-type is %s", name, typ)
		}
	}
	if len(ev.OneOf) != len(mapped) {
		t.Errorf("OutboundEvent has %d variants but maps %d types", len(ev.OneOf), len(mapped))
	}
	var declared []string
	for _, s := range doc.Components.Schemas {
		if typ, ok := s.Value.Extensions["x-latch-event-type"].(string); ok {
			declared = append(declared, typ)
		}
	}
	for what, got := range map[string][]string{"the OutboundEventType enum": enum, "the OutboundEvent discriminator": mapped, "the x-latch-event-type schemas": declared} {
		slices.Sort(got)
		want := slices.Sorted(slices.Values(consts))
		if !slices.Equal(got, want) {
			t.Errorf("%s is %v; the domain.Out* constants are %v", what, got, want)
		}
	}
}
