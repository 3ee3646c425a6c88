package reconcile

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

// updateGolden rewrites testdata/*.golden from the current output:
// go test ./pkg/reconcile -run TestGolden -update
var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden files")

// goldenCases returns the names of the testdata/<case>.yaml files.
func goldenCases(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml cases")
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".yaml")
	}
	return names
}

// loadCase reads testdata/<name>.yaml.
func loadCase(t testing.TB, name string) *Snapshot {
	t.Helper()
	snap, err := readSnapshotFile(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// buildOutput builds snap with a fresh registry and returns the golden
// text: the table's Dump, then one line per Problem.
func buildOutput(snap *Snapshot) string {
	gen := route.NewRegistry(nil).Begin()
	table, problems := Build(snap, testOptions, gen, 1)
	return table.Dump() + renderProblems(problems) + renderPolicies(snap)
}

// renderPolicies formats the RoutePolicy resolution, one line per policy.
func renderPolicies(snap *Snapshot) string {
	_, results := ResolvePolicies(snap, testOptions)
	var sb strings.Builder
	for _, r := range results {
		fmt.Fprintf(&sb, "policy %s/%s %s=%s(%s: %s) %s=%s(%s: %s)\n", r.Namespace, r.Name,
			r.Accepted.Type, r.Accepted.Status, r.Accepted.Reason, r.Accepted.Message,
			r.ResolvedRefs.Type, r.ResolvedRefs.Status, r.ResolvedRefs.Reason, r.ResolvedRefs.Message)
	}
	return sb.String()
}

// TestGolden builds every testdata/<case>.yaml and compares the output with
// testdata/<case>.golden byte for byte.
func TestGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			got := buildOutput(loadCase(t, name))
			path := filepath.Join("testdata", name+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update to accept)\n--- got:\n%s--- want:\n%s", path, got, want)
			}
		})
	}
}
