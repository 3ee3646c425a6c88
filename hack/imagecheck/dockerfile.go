package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Instruction is one Dockerfile instruction after line continuations are
// joined: Cmd is upper-case (FROM, RUN, ...), Args the rest of the line.
type Instruction struct {
	Cmd  string
	Args string
	Line int // first line of the instruction, 1-based
}

// Stage is one build stage: a FROM and the instructions up to the next.
type Stage struct {
	Image  string // image reference of the FROM
	Name   string // the AS name, or ""
	From   Instruction
	Instrs []Instruction // every instruction after the FROM
}

// Dockerfile is a parsed Dockerfile: the instructions before the first
// FROM (global ARGs) and the stages in order.
type Dockerfile struct {
	Global []Instruction
	Stages []Stage
}

// ParseDockerfile reads a Dockerfile: comments and blank lines are dropped,
// lines ending in a backslash are joined with the next. It fails on an
// instruction before FROM other than ARG, and on a file with no FROM.
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	df := &Dockerfile{}
	sc := bufio.NewScanner(r)
	var (
		buf   strings.Builder
		start int
		n     int
	)
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		return df.add(in)
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && buf.Len() > 0) {
			continue
		}
		if buf.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			buf.WriteString(cont)
			buf.WriteByte(' ')
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(df.Stages) == 0 {
		return nil, errors.New("no FROM instruction")
	}
	return df, nil
}

func (df *Dockerfile) add(in Instruction) error {
	if in.Cmd == "FROM" {
		st, err := parseFrom(in)
		if err != nil {
			return err
		}
		df.Stages = append(df.Stages, st)
		return nil
	}
	if len(df.Stages) == 0 {
		if in.Cmd != "ARG" {
			return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		df.Global = append(df.Global, in)
		return nil
	}
	last := &df.Stages[len(df.Stages)-1]
	last.Instrs = append(last.Instrs, in)
	return nil
}

// parseFrom reads "FROM [--platform=...] image [AS name]".
func parseFrom(in Instruction) (Stage, error) {
	var fields []string
	for _, f := range strings.Fields(in.Args) {
		if !strings.HasPrefix(f, "--") {
			fields = append(fields, f)
		}
	}
	st := Stage{From: in}
	switch {
	case len(fields) == 1:
		st.Image = fields[0]
	case len(fields) == 3 && strings.EqualFold(fields[1], "AS"):
		st.Image, st.Name = fields[0], fields[2]
	default:
		return st, fmt.Errorf("line %d: cannot read FROM %q", in.Line, in.Args)
	}
	return st, nil
}

// Final returns the last stage, the one that becomes the image.
func (df *Dockerfile) Final() *Stage { return &df.Stages[len(df.Stages)-1] }

// Policy is what Lint requires of the Dockerfile.
type Policy struct {
	// FinalBase is the required image of the final stage.
	FinalBase string
	// GoVersion is the go directive of go.mod ("1.26.0"); the builder's
	// golang image must be at least this major.minor.
	GoVersion string
	// Package is the main package the build line must build.
	Package string
}

// BuildLine is the RUN line of a builder stage that runs go build.
type BuildLine struct {
	Stage   *Stage
	Command string // the shell command, as Docker would run it
	Output  string // the -o path
	Line    int
}

// Lint checks the Dockerfile against p and returns the build line and every
// violation found (not just the first).
func Lint(df *Dockerfile, p Policy) (*BuildLine, []error) {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
	}
	if len(df.Stages) < 2 {
		bad(df.Stages[0].From.Line, "want a multi-stage build (a builder stage and a final stage), got %d stage", len(df.Stages))
	}
	for i := range df.Stages {
		st := &df.Stages[i]
		if !pinned(st.Image) {
			bad(st.From.Line, "image %q must carry an explicit tag or digest other than latest", st.Image)
		}
		for _, in := range st.Instrs {
			if in.Cmd == "ADD" {
				if urlRE.MatchString(in.Args) {
					bad(in.Line, "ADD from a URL (%s): fetch nothing at build time that is not pinned by the module proxy", in.Args)
				} else {
					bad(in.Line, "ADD is not allowed; use COPY")
				}
			}
		}
	}
	final := df.Final()
	if final.Image != p.FinalBase {
		bad(final.From.Line, "final stage image is %q, want %q", final.Image, p.FinalBase)
	}
	errs = append(errs, lintFinal(final)...)
	bl, blErrs := findBuildLine(df, p)
	errs = append(errs, blErrs...)
	if bl != nil {
		errs = append(errs, lintBuilder(bl.Stage, p)...)
		if !copiesFrom(final, bl.Stage, bl.Output) {
			bad(final.From.Line, "final stage does not COPY --from=%s %s", stageRef(bl.Stage), bl.Output)
		}
	}
	return bl, errs
}

var (
	urlRE      = regexp.MustCompile(`(?i)(https?|ftp|git)://|git@`)
	numericRE  = regexp.MustCompile(`^[0-9]+$`)
	golangTag  = regexp.MustCompile(`^golang:([0-9]+)\.([0-9]+)`)
	goDirRE    = regexp.MustCompile(`^([0-9]+)\.([0-9]+)`)
	outFlagRE  = regexp.MustCompile(`(?:^|\s)-o\s+(\S+)`)
	versionArg = "-X main.version=${VERSION}"
)

// pinned reports whether an image reference names a tag or digest other
// than latest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	slash := strings.LastIndex(image, "/")
	_, tag, ok := strings.Cut(image[slash+1:], ":")
	return ok && tag != "" && tag != "latest"
}

// lintFinal checks the stage that becomes the image: no shell is run in it,
// it runs as a numeric non-root user, and its entrypoint needs no shell.
func lintFinal(st *Stage) []error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
	}
	var user, entry *Instruction
	for i, in := range st.Instrs {
		switch in.Cmd {
		case "RUN":
			bad(in.Line, "RUN in the final stage: the base has no shell, and the image must not need one")
		case "USER":
			user = &st.Instrs[i]
		case "ENTRYPOINT":
			entry = &st.Instrs[i]
		case "CMD", "SHELL", "HEALTHCHECK":
			if !strings.HasPrefix(in.Args, "[") {
				bad(in.Line, "%s in shell form needs a shell; use the exec (JSON) form", in.Cmd)
			}
		}
	}
	if user == nil {
		bad(st.From.Line, "final stage has no USER")
	} else {
		uid, gid, hasGID := strings.Cut(user.Args, ":")
		if !numericRE.MatchString(uid) || (hasGID && !numericRE.MatchString(gid)) {
			bad(user.Line, "USER %q must be numeric uid[:gid] so that runAsNonRoot can be verified", user.Args)
		} else if n, _ := strconv.Atoi(uid); n == 0 {
			bad(user.Line, "USER is root")
		} else if hasGID {
			if g, _ := strconv.Atoi(gid); g == 0 {
				bad(user.Line, "USER group is root")
			}
		}
	}
	if entry == nil {
		bad(st.From.Line, "final stage has no ENTRYPOINT")
	} else if !strings.HasPrefix(entry.Args, "[") {
		bad(entry.Line, "ENTRYPOINT in shell form needs a shell; use the exec (JSON) form")
	}
	return errs
}

// findBuildLine finds the one RUN ... go build line outside the final stage
// and checks its flags.
func findBuildLine(df *Dockerfile, p Policy) (*BuildLine, []error) {
	var found []*BuildLine
	for i := range df.Stages[:len(df.Stages)-1] {
		st := &df.Stages[i]
		for _, in := range st.Instrs {
			if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
				found = append(found, &BuildLine{Stage: st, Command: in.Args, Line: in.Line})
			}
		}
	}
	if len(found) != 1 {
		return nil, []error{fmt.Errorf("want exactly one RUN with go build in a builder stage, found %d", len(found))}
	}
	bl := found[0]
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("line %d: %s", bl.Line, fmt.Sprintf(format, args...)))
	}
	cmd := bl.Command
	if !strings.Contains(cmd, "CGO_ENABLED=0") {
		bad("build line must set CGO_ENABLED=0 (a static binary for a base with no libc)")
	}
	for _, want := range []string{"-trimpath", "-s -w", versionArg} {
		if !strings.Contains(cmd, want) {
			bad("build line lacks %q", want)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(cmd), " "+p.Package) {
		bad("build line must end with the package %s", p.Package)
	}
	m := outFlagRE.FindStringSubmatch(cmd)
	if m == nil || !strings.HasPrefix(m[1], "/") {
		bad("build line needs -o with an absolute path")
		return nil, errs
	}
	bl.Output = m[1]
	return bl, errs
}

// lintBuilder checks the builder stage: a golang image new enough for
// go.mod, and the VERSION build argument that the build line stamps.
func lintBuilder(st *Stage, p Policy) []error {
	var errs []error
	m := golangTag.FindStringSubmatch(st.Image)
	want := goDirRE.FindStringSubmatch(p.GoVersion)
	switch {
	case m == nil:
		errs = append(errs, fmt.Errorf("line %d: builder image %q is not golang:<major>.<minor>", st.From.Line, st.Image))
	case want == nil:
		errs = append(errs, fmt.Errorf("go.mod go directive %q unreadable", p.GoVersion))
	case atoi(m[1]) < atoi(want[1]) || (m[1] == want[1] && atoi(m[2]) < atoi(want[2])):
		errs = append(errs, fmt.Errorf("line %d: builder image %s is older than go.mod's go %s", st.From.Line, st.Image, p.GoVersion))
	}
	hasArg := false
	for _, in := range st.Instrs {
		if in.Cmd == "ARG" && (in.Args == "VERSION" || strings.HasPrefix(in.Args, "VERSION=")) {
			hasArg = true
		}
	}
	if !hasArg {
		errs = append(errs, fmt.Errorf("line %d: builder stage has no ARG VERSION for the build line's version stamp", st.From.Line))
	}
	return errs
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// stageRef is how a COPY --from names st.
func stageRef(st *Stage) string {
	if st.Name != "" {
		return st.Name
	}
	return "<stage index>"
}

// copiesFrom reports whether final copies path out of the builder stage.
func copiesFrom(final, builder *Stage, path string) bool {
	for _, in := range final.Instrs {
		if in.Cmd != "COPY" {
			continue
		}
		f := strings.Fields(in.Args)
		if len(f) >= 3 && f[0] == "--from="+builder.Name && builder.Name != "" && f[1] == path {
			return true
		}
	}
	return false
}

// Copies returns the sources and destination of each COPY without --from
// in st, for building the context the build line sees.
func Copies(st *Stage) (out [][2]string, err error) {
	for _, in := range st.Instrs {
		if in.Cmd != "COPY" {
			continue
		}
		f := strings.Fields(in.Args)
		if len(f) > 0 && strings.HasPrefix(f[0], "--") {
			if strings.HasPrefix(f[0], "--from=") {
				continue
			}
			return nil, fmt.Errorf("line %d: COPY flag %s not supported by the checker", in.Line, f[0])
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d: COPY needs a source and a destination", in.Line)
		}
		dst := f[len(f)-1]
		for _, src := range f[:len(f)-1] {
			out = append(out, [2]string{src, dst})
		}
	}
	return out, nil
}
