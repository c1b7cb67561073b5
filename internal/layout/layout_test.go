// Package layout holds the test of who may import whom in brig's module.
package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/brig-sandbox/brig"

// allowed lists, for each package of the module, the packages of the module
// its non-test code may import. A package not listed may import none; a new
// package is added here on purpose. The rules: cgroup, seccomp, egress, audit
// and metrics import nothing of brig; jail, the public API, only cgroup, seccomp,
// egress (the policy of Config.Network "proxy") and its runtime
// internal/supervisor, which imports the C runtime internal/stage and
// egress (it serves a jail's proxy; stage only cgroup, for the rlimits it
// passes on); session imports jail
// and, for its file API's view of a running jail, internal/supervisor;
// programs import the public packages, never the runtime nor the test
// support (internal/testenv, its silentmaker); the corpus runner
// internal/hostile knows nothing of jail (jail's own tests import it), its
// API runner does.
var allowed = map[string][]string{
	"audit":                        nil,
	"cgroup":                       nil,
	"egress":                       nil,
	"metrics":                      nil,
	"seccomp":                      nil,
	"jail":                         {"cgroup", "egress", "internal/supervisor", "seccomp"},
	"session":                      {"egress", "internal/supervisor", "jail"},
	"internal/supervisor":          {"cgroup", "egress", "internal/stage", "seccomp"},
	"internal/stage":               {"cgroup"},
	"cmd/brig":                     {"audit", "cgroup", "egress", "jail", "sandboxd", "seccomp", "serve", "session"},
	"serve":                        {"audit", "cgroup", "egress", "jail", "metrics", "session"},
	"serve/client":                 nil,
	"cmd/brig-hostile":             {"internal/hostile", "internal/hostile/apirun", "jail", "serve", "serve/client"},
	"examples/python":              {"jail"},
	"sandboxd":                     {"jail", "serve"},
	"examples/shell":               {"jail"},
	"internal/hostile":             nil,
	"internal/hostile/apirun":      {"cgroup", "egress", "internal/hostile", "jail", "session"},
	"internal/testenv":             nil,
	"internal/testenv/netlab":      nil,
	"internal/testenv/silentmaker": nil,
	"internal/testenv/promserver":  {"internal/testenv"},
}

func TestImportRules(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if pkg == "internal/layout" {
			continue
		}
		seen[pkg] = true
		want, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s: a package the import rules do not know; add it to allowed with what it may import", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !slices.Contains(want, dep) {
				t.Errorf("%s imports %s, which the import rules do not allow", pkg, dep)
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("%s: listed in the import rules but not in the module", pkg)
		}
	}
}
