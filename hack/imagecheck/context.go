package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Ignore is a parsed .dockerignore: patterns are matched in order against a
// slash-separated path relative to the context root, a pattern also
// matches every path under a directory it matches, and the last matching
// pattern wins ("!" re-includes). This is the subset of Docker's rules that
// needs no character classes; ParseIgnore refuses patterns outside it.
type Ignore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re      *regexp.Regexp
	include bool // a "!" pattern
	text    string
}

// ParseIgnore reads .dockerignore rules.
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		pat := path.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/"))
		if strings.ContainsAny(pat, `[]\`) {
			return nil, fmt.Errorf(".dockerignore pattern %q: character classes and escapes are not supported by the checker", line)
		}
		ig.rules = append(ig.rules, ignoreRule{re: regexp.MustCompile(globRE(pat)), include: include, text: line})
	}
	return ig, sc.Err()
}

// globRE translates a pattern with *, ** and ? into an anchored regexp.
func globRE(pat string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// Excluded reports whether rel (slash-separated, relative to the context
// root) is left out of the build context.
func (ig *Ignore) Excluded(rel string) bool {
	rel = path.Clean(rel)
	excluded := false
	for _, r := range ig.rules {
		if r.matchesOrParent(rel) {
			excluded = !r.include
		}
	}
	return excluded
}

func (r ignoreRule) matchesOrParent(rel string) bool {
	for p := rel; ; {
		if r.re.MatchString(p) {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// BuildContext copies what the builder stage's COPY instructions take from
// root, after .dockerignore, into dst (standing for the stage's WORKDIR).
// It fails as docker build would when a source is missing or wholly
// excluded.
func BuildContext(root, dst string, ig *Ignore, copies [][2]string) error {
	for _, c := range copies {
		src, to := path.Clean(c[0]), c[1]
		if strings.HasPrefix(to, "/") {
			return fmt.Errorf("COPY %s %s: absolute destinations are not supported by the checker; use paths relative to WORKDIR", c[0], to)
		}
		info, err := os.Stat(filepath.Join(root, src))
		if err != nil {
			return fmt.Errorf("COPY %s: %w", c[0], err)
		}
		if !info.IsDir() {
			if ig.Excluded(src) {
				return fmt.Errorf("COPY %s: excluded by .dockerignore", c[0])
			}
			target := filepath.Join(dst, to)
			if strings.HasSuffix(to, "/") || to == "." {
				target = filepath.Join(dst, to, filepath.Base(src))
			}
			if err := copyFile(filepath.Join(root, src), target); err != nil {
				return err
			}
			continue
		}
		n, err := copyTree(root, src, filepath.Join(dst, to), ig)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("COPY %s: every file is excluded by .dockerignore", c[0])
		}
	}
	return nil
}

// copyTree copies the files under root/src that ig keeps into dst and
// returns how many it copied.
func copyTree(root, src, dst string, ig *Ignore) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(root, src), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if ig.Excluded(filepath.ToSlash(rel)) {
			return nil
		}
		under, _ := filepath.Rel(filepath.Join(root, src), p)
		n++
		return copyFile(p, filepath.Join(dst, under))
	})
	return n, err
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
