package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildTiny builds a small main package with the given environment and
// flags and returns the binary's path.
func buildTiny(t *testing.T, src string, env []string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module tiny\n\ngo 1.26\n",
		"main.go": src,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, ".")...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(os.Environ()), append(env, "GOWORK=off")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

const tinySrc = "package main\n\nimport \"fmt\"\n\nvar version = \"dev\"\n\nfunc main() { fmt.Println(version) }\n"

func TestCheckBinaryAcceptsStaticStrippedStamped(t *testing.T) {
	bin := buildTiny(t, tinySrc, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags", "-s -w -X main.version=v-stamp-1")
	if errs := CheckBinary(bin, BinaryWant{Version: "v-stamp-1", Forbidden: []string{filepath.Dir(bin)}}); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestCheckBinaryRejects(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		env   []string
		flags []string
		want  string
		needs string // a program the case needs
	}{
		{"not stripped", tinySrc, []string{"CGO_ENABLED=0"}, []string{"-trimpath", "-ldflags", "-X main.version=v-stamp-1"}, "symbol table", ""},
		{"no stamp", tinySrc, []string{"CGO_ENABLED=0"}, []string{"-trimpath", "-ldflags", "-s -w"}, "does not contain the version", ""},
		{"no trimpath", tinySrc, []string{"CGO_ENABLED=0"}, []string{"-ldflags", "-s -w -X main.version=v-stamp-1"}, "not built with -trimpath", ""},
		{"dynamic", "package main\n\nimport (\n\t\"fmt\"\n\t\"os/user\"\n)\n\nvar version = \"dev\"\n\nfunc main() { u, _ := user.Current(); fmt.Println(version, u) }\n",
			[]string{"CGO_ENABLED=1"}, []string{"-trimpath", "-ldflags", "-s -w -X main.version=v-stamp-1"}, "PT_INTERP", "cc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" {
				if _, err := exec.LookPath(c.needs); err != nil {
					t.Skipf("no %s: cannot build a cgo binary", c.needs)
				}
			}
			bin := buildTiny(t, c.src, c.env, c.flags...)
			errs := CheckBinary(bin, BinaryWant{Version: "v-stamp-1", Forbidden: []string{filepath.Dir(bin)}})
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			if !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Fatalf("want an error containing %q, got %q", c.want, all)
			}
		})
	}
}
