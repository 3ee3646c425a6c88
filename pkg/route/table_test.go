package route_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestMatchFallsThroughExactWildcardHostlessDefault(t *testing.T) {
	rules := []hostRule{
		{"a.foo.com", exact("/e", "exact-host")},
		{"a.foo.com", prefix("/s", "exact-host-s")},
		{"*.foo.com", prefix("/w", "wildcard")},
		{"*.foo.com", prefix("/s", "wildcard-s")},
		{"", prefix("/any", "hostless")},
		{"", prefix("/s", "hostless-s")},
	}
	withDefault := func() *route.Table {
		b := route.NewBuilder(1)
		for _, r := range rules {
			b.Add(r.host, r.rule)
		}
		b.SetDefault(tgt("default"))
		return b.Build()
	}()
	noDefault := build(t, rules...)

	for _, tc := range []struct {
		host, path string
		want       string // with a default backend
	}{
		{"a.foo.com", "/e", "exact-host"},
		{"a.foo.com", "/s/x", "exact-host-s"},  // exact host shadows the rest
		{"a.foo.com", "/w", "wildcard"},        // exact host has no match: wildcard
		{"a.foo.com", "/any/x", "hostless"},    // neither host matches: host-less
		{"a.foo.com", "/nothing", "default"},   // nothing matches: default backend
		{"b.foo.com", "/e", "default"},         // /e exists only under a.foo.com
		{"b.foo.com", "/s", "wildcard-s"},      // wildcard shadows host-less
		{"b.foo.com", "/any", "hostless"},      //
		{"x.b.foo.com", "/s", "hostless-s"},    // wildcard is one label only
		{"other.org", "/s", "hostless-s"},      //
		{"other.org", "/w", "default"},         //
		{"", "/any", "hostless"},               // no Host header at all
		{"A.FOO.COM:443", "/e", "exact-host"},  //
		{"a.foo.com.", "/any/y/", "hostless"},  //
		{"b.foo.com", "/nothing", "default"},   //
		{"other.org", "/nothing/x", "default"}, //
	} {
		if got := name(withDefault.Match(tc.host, tc.path)); got != tc.want {
			t.Errorf("with default: Match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
		want := tc.want
		if want == "default" {
			want = "" // nil target: the proxy answers 404
		}
		if got := name(noDefault.Match(tc.host, tc.path)); got != want {
			t.Errorf("no default: Match(%q, %q) = %q, want %q", tc.host, tc.path, got, want)
		}
	}
}

func TestEmptyTableMatchesNothing(t *testing.T) {
	tbl := route.NewBuilder(7).Build()
	if got := tbl.Match("foo.com", "/"); got != nil {
		t.Errorf("Match on an empty table = %v, want nil", got)
	}
	if tbl.Version() != 7 {
		t.Errorf("Version() = %d, want 7", tbl.Version())
	}
}

func TestAddKeepsTheFirstDuplicateRule(t *testing.T) {
	b := route.NewBuilder(1)
	for _, tc := range []struct {
		host string
		rule route.Rule
		want bool
	}{
		{"foo.com", exact("/a", "first-exact"), true},
		{"foo.com", exact("/a", "second-exact"), false},
		{"FOO.com", exact("/a", "upper-host"), false},     // hosts are case-insensitive
		{"foo.com", prefix("/a", "first-prefix"), true},   // other kind: not a duplicate
		{"foo.com", prefix("/a/", "slash-prefix"), false}, // same prefix key as /a
		{"foo.com", exact("/a/", "exact-slash"), true},    // exact paths keep the slash
		{"bar.com", exact("/a", "other-host"), true},
		{"*.foo.com", exact("/a", "wildcard"), true},
		{"*.foo.com", exact("/a", "wildcard-again"), false},
		{"", exact("/a", "hostless"), true},
		{"", exact("/a", "hostless-again"), false},
		{"foo.com", prefix("/", "root"), true},
		{"foo.com", prefix("/", "root-again"), false},
	} {
		if got := b.Add(tc.host, tc.rule); got != tc.want {
			t.Errorf("Add(%q, %s %s) = %v, want %v", tc.host, tc.rule.Kind, tc.rule.Path, got, tc.want)
		}
	}
	if !b.SetDefault(tgt("default-1")) {
		t.Error("first SetDefault = false, want true")
	}
	if b.SetDefault(tgt("default-2")) {
		t.Error("second SetDefault = true, want false")
	}
	tbl := b.Build()
	for _, tc := range []struct{ host, path, want string }{
		{"foo.com", "/a", "first-exact"},
		{"foo.com", "/a/b", "first-prefix"},
		{"foo.com", "/a/", "exact-slash"},
		{"x.foo.com", "/a", "wildcard"},
		{"elsewhere", "/a", "hostless"},
		{"elsewhere", "/zzz", "default-1"},
		{"foo.com", "/zzz", "root"},
	} {
		if got := name(tbl.Match(tc.host, tc.path)); got != tc.want {
			t.Errorf("Match(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

// dumpTable builds a small table with clusters, adding its rules in the
// order given.
func dumpTable(order []int) *route.Table {
	_, bs := backends(3)
	web := route.NewCluster("default/web:80", []*route.Backend{bs[0], bs[1]}, "")
	api := route.NewCluster("default/api:http", []*route.Backend{bs[2]}, "")
	none := route.NewCluster("default/gone:80", nil, "service default/gone not found")
	rules := []hostRule{
		{"b.example.com", route.Rule{Kind: route.PathPrefix, Path: "/", Target: &route.Target{Namespace: "default", Ingress: "b", Service: "web", Port: "80", Cluster: web}}},
		{"a.example.com", route.Rule{Kind: route.PathPrefix, Path: "/api/", Target: &route.Target{Namespace: "default", Ingress: "a", Service: "api", Port: "http", Cluster: api}}},
		{"a.example.com", route.Rule{Kind: route.PathExact, Path: "/healthz", Target: &route.Target{Namespace: "default", Ingress: "a", Service: "web", Port: "80", Cluster: web}}},
		{"a.example.com", route.Rule{Kind: route.PathPrefix, Path: "/", Target: &route.Target{Namespace: "default", Ingress: "a", Service: "web", Port: "80", Cluster: web}}},
		{"*.example.com", route.Rule{Kind: route.PathPrefix, Path: "/", Target: &route.Target{Namespace: "default", Ingress: "w", Service: "gone", Port: "80", Cluster: none}}},
		{"", route.Rule{Kind: route.PathExact, Path: "/x", Target: &route.Target{Namespace: "default", Ingress: "h", Service: "nil", Port: "80"}}},
	}
	b := route.NewBuilder(3)
	for _, i := range order {
		b.Add(rules[i].host, rules[i].rule)
	}
	b.SetDefault(&route.Target{Namespace: "default", Ingress: "d", Service: "web", Port: "80", Cluster: web})
	return b.Build()
}

func TestDumpIsDeterministic(t *testing.T) {
	const want = `default -> default/d cluster=default/web:80 [10.0.0.1:80 10.0.0.2:80]
host a.example.com
  Exact /healthz -> default/a cluster=default/web:80 [10.0.0.1:80 10.0.0.2:80]
  Prefix / -> default/a cluster=default/web:80 [10.0.0.1:80 10.0.0.2:80]
  Prefix /api -> default/a cluster=default/api:http [10.0.0.3:80]
host b.example.com
  Prefix / -> default/b cluster=default/web:80 [10.0.0.1:80 10.0.0.2:80]
host *.example.com
  Prefix / -> default/w cluster=default/gone:80 [] (service default/gone not found)
host *
  Exact /x -> default/h service=nil port=80 (no cluster)
`
	first := dumpTable([]int{0, 1, 2, 3, 4, 5})
	got := first.Dump()
	if got != want {
		t.Fatalf("Dump() =\n%s\nwant\n%s", got, want)
	}
	// Same table twice, and the same rules in other orders: same bytes,
	// whatever the map iteration order.
	for i := 0; i < 20; i++ {
		if again := first.Dump(); again != want {
			t.Fatalf("second Dump of the same table differs:\n%s", again)
		}
	}
	for _, order := range [][]int{{5, 4, 3, 2, 1, 0}, {3, 1, 5, 0, 2, 4}, {2, 0, 4, 1, 5, 3}} {
		if got := dumpTable(order).Dump(); got != want {
			t.Errorf("Dump with rules added in order %v =\n%s\nwant\n%s", order, got, want)
		}
	}
}

// benchTable returns a table with hosts exact hosts and as many wildcard
// hosts, each with Exact and Prefix rules down to a depth of 6, plus the
// host-less rules.
func benchTable(hosts int) *route.Table {
	b := route.NewBuilder(1)
	paths := []string{"/", "/api", "/api/v1", "/api/v1/namespaces", "/api/v1/namespaces/default", "/api/v1/namespaces/default/pods", "/static/css", "/static/js/vendor"}
	for h := 0; h < hosts; h++ {
		host := fmt.Sprintf("host-%d.example.com", h)
		for i, p := range paths {
			b.Add(host, prefix(p, fmt.Sprintf("%s %d", host, i)))
			b.Add(host, exact(p+"/healthz", fmt.Sprintf("%s exact %d", host, i)))
		}
		b.Add("*.wild-"+fmt.Sprint(h)+".example.com", prefix("/api", "wild"))
	}
	b.Add("", prefix("/hostless", "hostless"))
	b.SetDefault(tgt("default"))
	return b.Build()
}

var sink *route.Target

// benchRequests are Match inputs of several shapes; all hosts are lower
// case, so none of them may allocate.
var benchRequests = []struct{ name, host, path string }{
	{"ExactHostDeepPrefix", "host-537.example.com", "/api/v1/namespaces/default/pods/web-5d8f7/log/container/x"},
	{"ExactHostExactPath", "host-12.example.com:443", "/api/v1/healthz"},
	{"WildcardHost", "pod.wild-999.example.com", "/api/v2/things/and/more"},
	{"HostlessFallThrough", "unknown.example.org", "/hostless/a/b/c/d/e/f/g/h"},
	{"DefaultBackend", "host-1.example.com.", "/nowhere/at/all/deep/deeper/deepest"},
}

func TestMatchDoesNotAllocateForLowerCaseHost(t *testing.T) {
	tbl := benchTable(100)
	for _, r := range benchRequests {
		if tbl.Match(r.host, r.path) == nil {
			t.Fatalf("%s: no match", r.name)
		}
		if n := testing.AllocsPerRun(100, func() { sink = tbl.Match(r.host, r.path) }); n != 0 {
			t.Errorf("%s: Match(%q, %q) allocates %.1f times per call, want 0", r.name, r.host, r.path, n)
		}
	}
}

func BenchmarkTableMatch(b *testing.B) {
	tbl := benchTable(1000)
	for _, r := range benchRequests {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = tbl.Match(r.host, r.path)
			}
		})
	}
	b.Run("UpperCaseHost", func(b *testing.B) {
		host := strings.ToUpper("host-537.example.com")
		b.ReportAllocs()
		for b.Loop() {
			sink = tbl.Match(host, "/api/v1/namespaces/default/pods/web")
		}
	})
}

func TestKindAndTokenStrings(t *testing.T) {
	if got := route.PathExact.String(); got != "Exact" {
		t.Errorf("PathExact.String() = %q", got)
	}
	if got := route.PathPrefix.String(); got != "Prefix" {
		t.Errorf("PathPrefix.String() = %q", got)
	}
	if got := route.Token(42).String(); got != "42" {
		t.Errorf("Token(42).String() = %q", got)
	}
}
