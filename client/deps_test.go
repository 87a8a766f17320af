package client_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/latchauth/latch/client"
)

// forbidden are the import paths (and their subpackages) that the SDK must
// not depend on: the server side of Latch and its libraries.
var forbidden = []string{
	"github.com/latchauth/latch/internal",
	"github.com/latchauth/latch/server",
	"github.com/latchauth/latch/api",
	"github.com/latchauth/latch/cmd",
	"github.com/go-chi/",
	"github.com/getkin/kin-openapi",
	"github.com/jmoiron/sqlx",
	"github.com/lib/pq",
	"modernc.org/sqlite",
	"github.com/pressly/goose",
	"github.com/oapi-codegen/oapi-codegen",
	"github.com/oapi-codegen/nethttp-middleware",
	"golang.org/x/crypto/argon2",
}

func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command to list dependencies: %v", err)
	}
	return p
}

// TestNoServerImports fails when the SDK packages depend, even indirectly,
// on the server side. The root package (the spec embedded for the server)
// is refused too: the SDK carries its own generated models.
func TestNoServerImports(t *testing.T) {
	for _, pkg := range []string{"github.com/latchauth/latch/client", "github.com/latchauth/latch/client/latchapi", "github.com/latchauth/latch/client/verify"} {
		out, err := exec.Command(goTool(t), "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		var bad []string
		for _, dep := range strings.Fields(string(out)) {
			if dep == "github.com/latchauth/latch" {
				bad = append(bad, dep)
			}
			for _, f := range forbidden {
				if dep == strings.TrimSuffix(f, "/") || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
					bad = append(bad, dep)
				}
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s depends on the server side: %v", pkg, bad)
		}
	}
}

// TestPublicPathsMatchSpec keeps the operations that the Client sends
// without credentials in step with `security: []` in openapi.yaml.
func TestPublicPathsMatchSpec(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, item := range doc.Paths {
		public, private := 0, 0
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Security *[]map[string][]string `yaml:"security"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatal(err)
			}
			if op.Security != nil && len(*op.Security) == 0 {
				public++
			} else {
				private++
			}
		}
		if public > 0 && private > 0 {
			t.Errorf("%s mixes public and authenticated operations; the Client cannot tell them apart by path", path)
		}
		if public > 0 {
			want = append(want, path)
		}
	}
	var got []string
	for p := range client.PublicPaths {
		got = append(got, p)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("public paths:\n got %v\nwant %v (from openapi.yaml)", got, want)
	}
}

// TestOneClientOneOptionOneNew keeps the package's surface what go doc
// shows a user first: one Client, made by New alone, one Option type. The
// generated client, its constructors and its option type live in
// client/latchapi, reached through Client.API.
func TestOneClientOneOptionOneNew(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/latchauth/latch/client")
	if err != nil {
		t.Fatal(err)
	}
	var options, clients, clientFuncs []string
	for _, typ := range p.Types {
		if strings.HasSuffix(typ.Name, "Option") {
			options = append(options, typ.Name)
		}
		if strings.Contains(typ.Name, "Client") || strings.Contains(typ.Name, "Doer") || strings.Contains(typ.Name, "Editor") {
			clients = append(clients, typ.Name)
		}
		if typ.Name == "Client" {
			for _, f := range typ.Funcs {
				clientFuncs = append(clientFuncs, f.Name)
			}
		}
	}
	for _, f := range p.Funcs {
		if strings.HasPrefix(f.Name, "NewClient") || f.Name == "WithHTTPClient" || f.Name == "WithBaseURL" || f.Name == "WithRequestEditorFn" {
			t.Errorf("func %s: the generated client's, not the SDK's", f.Name)
		}
	}
	if strings.Join(options, " ") != "Option" || strings.Join(clients, " ") != "Client" || strings.Join(clientFuncs, " ") != "New" {
		t.Fatalf("option types %v, client types %v, constructors of Client %v; want Option, Client, New", options, clients, clientFuncs)
	}
}
