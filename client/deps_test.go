package client_test

import (
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
	for _, pkg := range []string{"github.com/latchauth/latch/client", "github.com/latchauth/latch/client/verify"} {
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
