// Command imagecheck checks Kakehi's container build without a Docker
// engine. It reads the Dockerfile and fails on a structure the image must
// not have (a single stage, an unpinned or wrong base, a root or named
// USER, ADD, RUN or a shell-form entrypoint in the final stage, a build
// line without CGO_ENABLED=0, -trimpath, -s -w or the version stamp). Then
// it lays out the build context as the builder stage sees it (its COPY
// lines after .dockerignore) in a temporary folder, runs the Dockerfile's
// own go build line there, and checks the binary: static (no PT_INTERP, no
// needed libraries), stripped, version-stamped and free of build paths.
//
//	go run ./hack/imagecheck [-root .] [-lint-only] [-o bin/kakehi-image]
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// finalBase is the only base the image may have: no shell, no package
// manager, no libc, and a non-root default user.
const finalBase = "gcr.io/distroless/static-debian12:nonroot"

// mustIgnore are paths that must never reach the build context: history,
// caches with 200 MB binaries, local builds.
var mustIgnore = []string{".git/config", ".cache/control-plane/x", "bin/kakehi", "test/e2e/main_test.go"}

func main() {
	root := flag.String("root", ".", "repository root holding Dockerfile, .dockerignore and go.mod")
	lintOnly := flag.Bool("lint-only", false, "check the Dockerfile's structure only; do not build")
	keep := flag.String("o", "", "copy the built binary here (default: discard)")
	flag.Parse()
	if err := run(*root, *lintOnly, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "image-check:", err)
		os.Exit(1)
	}
	fmt.Println("image-check: ok")
}

func run(root string, lintOnly bool, keep string) error {
	goVersion, err := goDirective(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	df, err := parseFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return err
	}
	bl, errs := Lint(df, Policy{FinalBase: finalBase, GoVersion: goVersion, Package: "./cmd/controller"})
	ig, err := parseIgnoreFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, p := range mustIgnore {
			if !ig.Excluded(p) {
				errs = append(errs, fmt.Errorf(".dockerignore lets %s into the build context", p))
			}
		}
	}
	if len(errs) > 0 || lintOnly {
		return errors.Join(errs...)
	}
	fmt.Printf("image-check: Dockerfile structure ok; running line %d: %s\n", bl.Line, bl.Command)
	bin, cleanup, err := Build(root, bl, ig)
	defer cleanup()
	if err != nil {
		return err
	}
	if keep != "" {
		if err := copyFile(bin.Path, keep); err != nil {
			return err
		}
	}
	return errors.Join(CheckBinary(bin.Path, bin.Want)...)
}

// Built is a binary made by Build and what it must look like.
type Built struct {
	Path string
	Want BinaryWant
}

// Build runs bl's command in a copy of the build context, with a unique
// VERSION, the -o path moved into a temporary folder, and none of the
// caller's GOFLAGS, GOOS, GOARCH or CGO_ENABLED, as in a clean golang
// image. The returned cleanup removes the temporary folder.
func Build(root string, bl *BuildLine, ig *Ignore) (*Built, func(), error) {
	tmp, err := os.MkdirTemp("", "kakehi-imagecheck-")
	if err != nil {
		return nil, func() {}, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	copies, err := Copies(bl.Stage)
	if err != nil {
		return nil, cleanup, err
	}
	ctxDir := filepath.Join(tmp, "src")
	if err := BuildContext(root, ctxDir, ig, copies); err != nil {
		return nil, cleanup, err
	}
	out := filepath.Join(tmp, "out", filepath.Base(bl.Output))
	cmdline := strings.Replace(bl.Command, "-o "+bl.Output, "-o "+out, 1)
	version := "imagecheck-" + nonce()
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = ctxDir
	cmd.Env = append(cleanEnv(os.Environ()), "VERSION="+version, "GOWORK=off", "GOFLAGS=-mod=readonly")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, cleanup, fmt.Errorf("build line %d failed in the Dockerfile's context (go.mod, go.sum and the COPY sources only): %w", bl.Line, err)
	}
	modcache, _ := exec.Command("go", "env", "GOMODCACHE").Output()
	return &Built{Path: out, Want: BinaryWant{
		Version:   version,
		Forbidden: []string{ctxDir, strings.TrimSpace(string(modcache))},
	}}, cleanup, nil
}

// cleanEnv drops the variables a clean golang image would not have set and
// that would change what the build line builds.
func cleanEnv(env []string) []string {
	drop := map[string]bool{"CGO_ENABLED": true, "GOFLAGS": true, "GOOS": true, "GOARCH": true,
		"GOWORK": true, "GOEXPERIMENT": true, "VERSION": true, "CC": true, "GOAMD64": true}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func parseFile(path string) (*Dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseDockerfile(f)
}

func parseIgnoreFile(path string) (*Ignore, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("a .dockerignore is required: %w", err)
	}
	defer f.Close()
	return ParseIgnore(f)
}

// goDirective returns the version of go.mod's go line.
func goDirective(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s has no go directive", path)
}
