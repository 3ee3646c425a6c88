package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIgnoreMatchesAsDockerDoes(t *testing.T) {
	ig, err := ParseIgnore(strings.NewReader("*\n!go.mod\n!cmd/\n!pkg\n**/testdata\n**/*_test.go\n# comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		".git/config":                 true,
		"README.md":                   true,
		".cache/control-plane/etcd":   true,
		"go.mod":                      false,
		"go.sum":                      true,
		"cmd/controller/main.go":      false,
		"pkg/route/table.go":          false,
		"pkg/route/table_test.go":     true,
		"pkg/reconcile/testdata/a.go": true,
		"test/e2e/main_test.go":       true,
	}
	for p, want := range cases {
		if got := ig.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestIgnoreRefusesCharacterClasses(t *testing.T) {
	if _, err := ParseIgnore(strings.NewReader("[ab].go\n")); err == nil {
		t.Fatal("want an error")
	}
}

func TestBuildContextCopiesKeptFilesOnly(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"go.mod", "cmd/a/main.go", "cmd/a/main_test.go", "secret.txt"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ig, _ := ParseIgnore(strings.NewReader("*\n!go.mod\n!cmd\n**/*_test.go\n"))
	dst := t.TempDir()
	if err := BuildContext(root, dst, ig, [][2]string{{"go.mod", "./"}, {"cmd/", "cmd/"}}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{"go.mod": true, "cmd/a/main.go": true, "cmd/a/main_test.go": false, "secret.txt": false} {
		_, err := os.Stat(filepath.Join(dst, f))
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", f, got, want)
		}
	}
	if err := BuildContext(root, t.TempDir(), ig, [][2]string{{"secret.txt", "./"}}); err == nil {
		t.Error("copying an excluded file: want an error, as docker build gives")
	}
}
