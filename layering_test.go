package latch

import (
	"os/exec"
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
