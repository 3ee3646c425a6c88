package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoDockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var testPolicy = Policy{FinalBase: finalBase, GoVersion: "1.26.0", Package: "./cmd/controller"}

func lintString(t *testing.T, text string) (*BuildLine, []error) {
	t.Helper()
	df, err := ParseDockerfile(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Lint(df, testPolicy)
}

func TestRepoDockerfilePassesLint(t *testing.T) {
	bl, errs := lintString(t, repoDockerfile(t))
	for _, err := range errs {
		t.Error(err)
	}
	if bl == nil || bl.Output != "/out/kakehi" || bl.Stage.Name != "build" {
		t.Fatalf("build line = %+v", bl)
	}
}

// TestLintRejects mutates the repository's Dockerfile one way at a time and
// expects the lint to name the problem.
func TestLintRejects(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/kakehi /kakehi\n", "", "multi-stage"},
		{"wrong final base", "static-debian12:nonroot", "static-debian12:latest", "final stage image"},
		{"debian final base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm", "final stage image"},
		{"unpinned builder", "FROM golang:1.26 AS build", "FROM golang AS build", "explicit tag"},
		{"old builder", "FROM golang:1.26 AS build", "FROM golang:1.24 AS build", "older than go.mod"},
		{"root user", "USER 65532:65532", "USER 0:0", "USER is root"},
		{"root group", "USER 65532:65532", "USER 65532:0", "group is root"},
		{"named user", "USER 65532:65532", "USER nonroot", "must be numeric"},
		{"no user", "USER 65532:65532\n", "", "no USER"},
		{"run in final", "USER 65532:65532", "RUN chmod 0755 /kakehi\nUSER 65532:65532", "RUN in the final stage"},
		{"add url", "COPY cmd/ cmd/", "ADD https://example.invalid/x.tgz /x\nCOPY cmd/ cmd/", "ADD from a URL"},
		{"add local", "COPY cmd/ cmd/", "ADD cmd/ cmd/", "ADD is not allowed"},
		{"shell entrypoint", `ENTRYPOINT ["/kakehi"]`, "ENTRYPOINT /kakehi", "shell form"},
		{"cgo on", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"no trimpath", "-trimpath ", "", `"-trimpath"`},
		{"not stripped", "-s -w ", "", `"-s -w"`},
		{"no version", " -X main.version=${VERSION}", "", "main.version"},
		{"no version arg", "ARG VERSION=dev\n", "", "no ARG VERSION"},
		{"wrong package", "./cmd/controller\n", "./hack/demo\n", "must end with the package"},
		{"copy misses binary", "COPY --from=build /out/kakehi /kakehi", "COPY --from=build /out/other /kakehi", "does not COPY --from=build /out/kakehi"},
		{"two builds", "RUN go mod download", "RUN go build ./...", "exactly one RUN with go build"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := repoDockerfile(t)
			if !strings.Contains(orig, c.old) {
				t.Fatalf("Dockerfile no longer contains %q; update the case", c.old)
			}
			_, errs := lintString(t, strings.Replace(orig, c.old, c.new, 1))
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

func TestParseJoinsContinuationsAndSkipsComments(t *testing.T) {
	df, err := ParseDockerfile(strings.NewReader("ARG X=1\n# c\nFROM a:1 AS b\nRUN one \\\n  # inner comment\n  two\nFROM c:2\nUSER 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.Global) != 1 || len(df.Stages) != 2 {
		t.Fatalf("global %d, stages %d", len(df.Global), len(df.Stages))
	}
	run := df.Stages[0].Instrs[0]
	if run.Cmd != "RUN" || strings.Join(strings.Fields(run.Args), " ") != "one two" || run.Line != 4 {
		t.Fatalf("run = %+v", run)
	}
}

func TestParseRefusesInstructionBeforeFrom(t *testing.T) {
	if _, err := ParseDockerfile(strings.NewReader("RUN x\nFROM a:1\n")); err == nil {
		t.Fatal("want an error")
	}
}
