package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRepo lays out a tiny module with the repository's own Dockerfile and
// .dockerignore, plus the extra files given.
func fakeRepo(t *testing.T, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                 "module example.invalid/fake\n\ngo 1.26.0\n",
		"go.sum":                 "",
		"cmd/controller/main.go": "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(version) }\n",
		"pkg/README":             "kept so that COPY pkg/ has a source\n",
	}
	for _, name := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for k, v := range extra {
		files[k] = v
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestRunBuildsStaticBinaryFromDockerfileLine(t *testing.T) {
	root := fakeRepo(t, nil)
	out := filepath.Join(t.TempDir(), "kakehi")
	if err := run(root, false, out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("binary not kept: %v", err)
	}
}

func TestRunFailsWithoutVersionVariable(t *testing.T) {
	root := fakeRepo(t, map[string]string{
		"cmd/controller/main.go": "package main\n\nfunc main() {}\n",
	})
	err := run(root, false, "")
	if err == nil || !strings.Contains(err.Error(), "main.version had no effect") {
		t.Fatalf("want the missing version variable named, got %v", err)
	}
}

// TestRunFailsWhenContextLacksAPackage pins that the build runs on the
// Dockerfile's context, not the work tree: a package outside cmd/ and pkg/
// is not copied, so the build must fail as docker build would.
func TestRunFailsWhenContextLacksAPackage(t *testing.T) {
	root := fakeRepo(t, map[string]string{
		"internal/x/x.go":        "package x\n\nconst V = 1\n",
		"cmd/controller/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.invalid/fake/internal/x\"\n)\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(version, x.V) }\n",
	})
	err := run(root, false, "")
	if err == nil || !strings.Contains(err.Error(), "failed in the Dockerfile's context") {
		t.Fatalf("want a build failure, got %v", err)
	}
}

func TestRunLintOnlyReportsEveryProblem(t *testing.T) {
	root := fakeRepo(t, map[string]string{
		".dockerignore": "bin\n",
	})
	df, _ := os.ReadFile(filepath.Join(root, "Dockerfile"))
	bad := strings.Replace(string(df), "USER 65532:65532", "USER root", 1)
	if err := os.WriteFile(filepath.Join(root, "Dockerfile"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(root, true, "")
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"must be numeric", ".git/config", ".cache/control-plane"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
