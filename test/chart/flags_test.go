package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/kakehi/kakehi/test/harness"
)

// controllerFlags returns the flag names that `kakehi --help` prints.
func controllerFlags(t *testing.T) map[string]bool {
	t.Helper()
	bin, err := harness.ControllerBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "--help").CombinedOutput() // exits 0; output is what matters
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("--help listed %d flags:\n%s", len(flags), out)
	}
	return flags
}

// TestChartPassesOnlyRealFlags renders every valuesCase and fails when the
// Deployment passes a flag the controller does not have: the chart and the
// code must not drift apart.
func TestChartPassesOnlyRealFlags(t *testing.T) {
	flags := controllerFlags(t)
	for _, vc := range valuesMatrix {
		r := mustRender(t, "kakehi", vc.values)
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			if !strings.HasPrefix(arg, "--") || !flags[name] {
				t.Errorf("%s: chart passes %q, which `kakehi --help` does not list", vc.name, arg)
			}
		}
	}
}

// TestOperationsDocListsEveryFlag fails when docs/operations.md does not
// name a flag of the controller.
func TestOperationsDocListsEveryFlag(t *testing.T) {
	flags := controllerFlags(t)
	doc, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for f := range flags {
		if !strings.Contains(string(doc), "`--"+f+"`") {
			t.Errorf("docs/operations.md does not document --%s", f)
		}
	}
}
