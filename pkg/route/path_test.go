package route_test

import (
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

// pathCase is a request path and the label of the rule it must match ("" for
// none).
type pathCase struct {
	path, want string
}

func checkPaths(t *testing.T, tbl *route.Table, cases []pathCase) {
	t.Helper()
	for _, tc := range cases {
		if got := name(tbl.Match("example.com", tc.path)); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestExactPathIsCaseAndSlashSensitive(t *testing.T) {
	tbl := build(t, hostRule{"example.com", exact("/foo", "exact")})
	checkPaths(t, tbl, []pathCase{
		{"/foo", "exact"},
		{"/foo/", ""},
		{"/Foo", ""},
		{"/FOO", ""},
		{"/foo/bar", ""},
		{"/fo", ""},
		{"/", ""},
	})
}

func TestPrefixMatchIsElementWise(t *testing.T) {
	tbl := build(t, hostRule{"example.com", prefix("/foo", "p")})
	checkPaths(t, tbl, []pathCase{
		{"/foo", "p"},
		{"/foo/", "p"},
		{"/foo/bar", "p"},
		{"/foo/bar/baz/", "p"},
		{"/foobar", ""},
		{"/foo.bar", ""},
		{"/fo", ""},
		{"/Foo", ""}, // element comparison is case-sensitive
		{"/", ""},
		{"/bar/foo", ""},
	})
}

func TestPrefixRuleTrailingSlashIsIgnored(t *testing.T) {
	tbl := build(t, hostRule{"example.com", prefix("/foo/", "p")})
	checkPaths(t, tbl, []pathCase{
		{"/foo", "p"},
		{"/foo/", "p"},
		{"/foo/bar", "p"},
		{"/foobar", ""},
	})
}

func TestRootPrefixMatchesEverything(t *testing.T) {
	tbl := build(t, hostRule{"example.com", prefix("/", "root")})
	checkPaths(t, tbl, []pathCase{
		{"/", "root"},
		{"", "root"},
		{"/a", "root"},
		{"/a/b/c/", "root"},
		{"//", "root"},
		{"/%2F", "root"},
	})
}

func TestExactBeatsPrefixForTheSamePath(t *testing.T) {
	// Insert the Prefix rule first so that insertion order cannot be what
	// decides.
	tbl := build(t,
		hostRule{"example.com", prefix("/foo", "prefix")},
		hostRule{"example.com", exact("/foo", "exact")},
	)
	checkPaths(t, tbl, []pathCase{
		{"/foo", "exact"},
		{"/foo/", "prefix"},
		{"/foo/x", "prefix"},
	})
}

func TestLongestPrefixWins(t *testing.T) {
	tbl := build(t,
		hostRule{"example.com", prefix("/", "root")},
		hostRule{"example.com", prefix("/a/b/c", "abc")},
		hostRule{"example.com", prefix("/a", "a")},
		hostRule{"example.com", prefix("/a/b", "ab")},
	)
	checkPaths(t, tbl, []pathCase{
		{"/a/b/c/d", "abc"},
		{"/a/b/c", "abc"},
		{"/a/b/cd", "ab"},
		{"/a/b/", "ab"},
		{"/a/bc", "a"},
		{"/a", "a"},
		{"/ab", "root"},
		{"/", "root"},
	})
}

// TestIngressDocsPathExamples is the "Examples" table under "Path types" in
// the Kubernetes Ingress documentation
// (https://kubernetes.io/docs/concepts/services-networking/ingress/#examples).
// A case with want "" is a "No": the request falls to the default backend.
func TestIngressDocsPathExamples(t *testing.T) {
	for _, tc := range []struct {
		doc   string
		rules []route.Rule
		paths []string
		want  string
	}{
		{"Prefix / matches all paths", []route.Rule{prefix("/", "/")},
			[]string{"/", "/foo", "/foo/bar", "/aaa/bbb/"}, "/"},
		{"Exact /foo matches /foo", []route.Rule{exact("/foo", "=/foo")},
			[]string{"/foo"}, "=/foo"},
		{"Exact /foo does not match /bar", []route.Rule{exact("/foo", "=/foo")},
			[]string{"/bar"}, ""},
		{"Exact /foo does not match /foo/", []route.Rule{exact("/foo", "=/foo")},
			[]string{"/foo/"}, ""},
		{"Exact /foo/ does not match /foo", []route.Rule{exact("/foo/", "=/foo/")},
			[]string{"/foo"}, ""},
		{"Prefix /foo matches /foo and /foo/", []route.Rule{prefix("/foo", "/foo")},
			[]string{"/foo", "/foo/"}, "/foo"},
		{"Prefix /foo/ matches /foo and /foo/", []route.Rule{prefix("/foo/", "/foo/")},
			[]string{"/foo", "/foo/"}, "/foo/"},
		{"Prefix /aaa/bb does not match /aaa/bbb", []route.Rule{prefix("/aaa/bb", "/aaa/bb")},
			[]string{"/aaa/bbb"}, ""},
		{"Prefix /aaa/bbb matches /aaa/bbb", []route.Rule{prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/aaa/bbb"}, "/aaa/bbb"},
		{"Prefix /aaa/bbb/ matches /aaa/bbb, ignores trailing slash", []route.Rule{prefix("/aaa/bbb/", "/aaa/bbb/")},
			[]string{"/aaa/bbb"}, "/aaa/bbb/"},
		{"Prefix /aaa/bbb matches /aaa/bbb/, matches trailing slash", []route.Rule{prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/aaa/bbb/"}, "/aaa/bbb"},
		{"Prefix /aaa/bbb matches /aaa/bbb/ccc, matches subpath", []route.Rule{prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/aaa/bbb/ccc"}, "/aaa/bbb"},
		{"Prefix /aaa/bbb does not match /aaa/bbbxyz, not a string prefix", []route.Rule{prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/aaa/bbbxyz"}, ""},
		{"Prefix /, /aaa: /aaa/ccc matches /aaa", []route.Rule{prefix("/", "/"), prefix("/aaa", "/aaa")},
			[]string{"/aaa/ccc"}, "/aaa"},
		{"Prefix /, /aaa, /aaa/bbb: /aaa/bbb matches /aaa/bbb", []route.Rule{prefix("/", "/"), prefix("/aaa", "/aaa"), prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/aaa/bbb"}, "/aaa/bbb"},
		{"Prefix /, /aaa, /aaa/bbb: /ccc matches /", []route.Rule{prefix("/", "/"), prefix("/aaa", "/aaa"), prefix("/aaa/bbb", "/aaa/bbb")},
			[]string{"/ccc"}, "/"},
		{"Prefix /aaa does not match /ccc, default backend", []route.Rule{prefix("/aaa", "/aaa")},
			[]string{"/ccc"}, ""},
		{"Mixed /foo Prefix and /foo Exact: /foo prefers Exact", []route.Rule{prefix("/foo", "/foo"), exact("/foo", "=/foo")},
			[]string{"/foo"}, "=/foo"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			b := route.NewBuilder(1)
			for _, r := range tc.rules {
				b.Add("example.com", r)
			}
			tbl := b.Build()
			for _, p := range tc.paths {
				if got := name(tbl.Match("example.com", p)); got != tc.want {
					t.Errorf("Match(%q) = %q, want %q", p, got, tc.want)
				}
			}
		})
	}
}
