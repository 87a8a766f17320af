package latch

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/latchauth/latch"

// layers are the dependency rules of docs/architecture.md: each package (and
// every package below it) must not depend, directly or through another
// package, on any of the listed ones. internal/domain depends on nothing of
// ours; the stores never reach the service, the HTTP layer or the wiring;
// the HTTP layer never reaches a store. (The SDKs' own rule is
// client/deps_test.go.)
var layers = []struct {
	pkg    string
	banned []string
}{
	{"internal/domain", []string{""}},
	{"internal/sqlstore", []string{"internal/service", "server", "internal/app", "cmd", "api"}},
	{"internal/redislimit", []string{"internal/service", "server", "internal/app", "cmd", "api", "internal/sqlstore"}},
	{"internal/service", []string{"server", "internal/app", "internal/sqlstore", "internal/redislimit", "cmd"}},
	{"server", []string{"internal/sqlstore", "internal/redislimit", "internal/app", "cmd"}},
}

// TestLayering fails when a package depends on a layer it must not see.
func TestLayering(t *testing.T) {
	for _, l := range layers {
		out, err := exec.Command("go", "list", "-deps", module+"/"+l.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", l.pkg, err, out)
		}
		self := module + "/" + l.pkg
		for _, dep := range strings.Fields(string(out)) {
			if dep == self || strings.HasPrefix(dep, self+"/") || !(dep == module || strings.HasPrefix(dep, module+"/")) {
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(dep, module), "/")
			for _, b := range l.banned {
				if b == "" || rel == b || strings.HasPrefix(rel, b+"/") {
					t.Errorf("%s depends on %s (%s must not see it)", l.pkg, dep, l.pkg)
				}
			}
		}
	}
}

// httpLayer are the generated api package and the HTTP libraries it is
// built on (chi, kin-openapi, oapi-codegen's runtime): only the HTTP layer
// (server) and what wires or starts it may depend on them.
var httpLayer = []string{module + "/api", "github.com/go-chi/", "github.com/getkin/kin-openapi", "github.com/oapi-codegen/"}

// aboveServer are the packages under internal/ that may see the HTTP layer:
// the wiring and the test harness that starts it.
var aboveServer = []string{"internal/app", "internal/testutil"}

// TestNoHTTPLayerBelowServer fails when a package under internal/ (the
// domain, the stores, the services, token and the rest) depends on the
// generated api package, chi or kin-openapi: the access token's claims come
// from package claims, not from the generated models.
func TestNoHTTPLayerBelowServer(t *testing.T) {
	for pkg, deps := range depsOf(t, module+"/internal/...") {
		rel := strings.TrimPrefix(pkg, module+"/")
		if slices.ContainsFunc(aboveServer, func(a string) bool { return rel == a || strings.HasPrefix(rel, a+"/") }) {
			continue
		}
		for _, dep := range deps {
			for _, b := range httpLayer {
				if dep == strings.TrimSuffix(b, "/") || strings.HasPrefix(dep, strings.TrimSuffix(b, "/")+"/") {
					t.Errorf("%s depends on %s (only the HTTP layer may)", rel, dep)
				}
			}
		}
	}
}

// TestClaimsImportOnlyJWT keeps package claims importable by both the
// server and the Go SDK: it depends on the JWT library and the standard
// library alone.
func TestClaimsImportOnlyJWT(t *testing.T) {
	deps := depsOf(t, module+"/claims")[module+"/claims"]
	if len(deps) == 0 {
		t.Fatal("go list found no dependencies of package claims")
	}
	for _, dep := range deps {
		std := !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".")
		if !std && dep != "github.com/golang-jwt/jwt/v5" {
			t.Errorf("claims depends on %s: it may import only github.com/golang-jwt/jwt/v5", dep)
		}
	}
}

// depsOf returns the dependencies (direct and indirect, without tests) of
// each package that pattern matches.
func depsOf(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pattern, err, out)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}
