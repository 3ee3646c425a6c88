// Package arch holds the architecture's import rules as tests: data flows
// one way, from reconcile to route to proxy, and the proxy never sees
// Kubernetes.
package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kakehi/kakehi/"

// deps returns every package pkg depends on, transitively.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", module+pkg)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	for _, rule := range []struct {
		pkg       string
		forbidden []string // prefixes
		stdOnly   bool
	}{
		{pkg: "pkg/route", stdOnly: true},
		{pkg: "pkg/stream", forbidden: []string{"k8s.io/", "sigs.k8s.io/", module + "pkg/proxy", module + "pkg/reconcile"}},
		{pkg: "pkg/proxy", forbidden: []string{"k8s.io/", "sigs.k8s.io/", module + "pkg/reconcile"}},
		{pkg: "pkg/reconcile", forbidden: []string{module + "pkg/proxy", module + "pkg/stream"}},
		{pkg: "pkg/metrics", forbidden: []string{module + "pkg/route"}},
	} {
		t.Run(rule.pkg, func(t *testing.T) {
			for _, d := range deps(t, rule.pkg) {
				if d == module+rule.pkg {
					continue
				}
				if rule.stdOnly && strings.Contains(strings.Split(d, "/")[0], ".") && !strings.HasPrefix(d, module+rule.pkg) {
					t.Errorf("%s must use the standard library only, but depends on %s", rule.pkg, d)
				}
				for _, f := range rule.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s must not depend on %s (found %s)", rule.pkg, f, d)
					}
				}
			}
		})
	}
}
