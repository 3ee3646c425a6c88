package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/test/harness"
)

const (
	exact  = networkingv1.PathTypeExact
	prefix = networkingv1.PathTypePrefix
	implSp = networkingv1.PathTypeImplementationSpecific
)

// routeCase is one request and who must answer it: a service, or the proxy
// itself with a status code when svc is "".
type routeCase struct {
	host, path string
	svc        string
	status     int
}

func checkRoutes(t *testing.T, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		f := answers(c.host, c.path, c.status)
		if c.svc != "" {
			f = routesTo(c.host, c.path, c.svc, "")
		}
		if err := f(); err != nil {
			t.Error(err)
		}
	}
}

func TestHostRulesExactWildcardAndNoMatch(t *testing.T) {
	newBackends(t, "hosts", 1, "exact-host", "wild-host")
	ing := harness.Ingress("hosts", "hosts", className,
		harness.Rule("exact.hosts.test", harness.Path(prefix, "/", "exact-host")),
		harness.Rule("*.wild.hosts.test", harness.Path(prefix, "/", "wild-host")),
	)
	if err := harness.CreateAll(context.Background(), env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("exact.hosts.test", "/", "exact-host", ""))
	eventually(t, 10*time.Second, eventOf("hosts", "hosts", "Normal", "Synced"))
	checkRoutes(t, []routeCase{
		{"exact.hosts.test", "/anything", "exact-host", 0},
		{"EXACT.Hosts.TEST", "/", "exact-host", 0},
		{"exact.hosts.test:8080", "/", "exact-host", 0},
		{"a.wild.hosts.test", "/", "wild-host", 0},
		{"B.Wild.Hosts.Test:80", "/x", "wild-host", 0},
		{"b.a.wild.hosts.test", "/", "", http.StatusNotFound},
		{"wild.hosts.test", "/", "", http.StatusNotFound},
		{"other.hosts.test", "/", "", http.StatusNotFound},
		{"xexact.hosts.test", "/", "", http.StatusNotFound},
	})
}

func TestPathRulesFollowIngressSemantics(t *testing.T) {
	newBackends(t, "paths", 1, "p-exact", "p-prefix", "p-longer", "p-trail", "p-impl")
	ing := harness.Ingress("paths", "paths", className, harness.Rule("paths.test",
		harness.Path(exact, "/foo", "p-exact"),
		harness.Path(prefix, "/foo", "p-prefix"),
		harness.Path(prefix, "/foo/bar", "p-longer"),
		harness.Path(prefix, "/trail/", "p-trail"),
		harness.Path(implSp, "/impl", "p-impl"),
	))
	if err := harness.CreateAll(context.Background(), env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("paths.test", "/foo", "p-exact", ""))
	checkRoutes(t, []routeCase{
		{"paths.test", "/foo", "p-exact", 0},            // Exact beats Prefix
		{"paths.test", "/foo?q=1", "p-exact", 0},        // the query is not part of the path
		{"paths.test", "/foo/", "p-prefix", 0},          // Exact /foo does not match /foo/
		{"paths.test", "/foo/baz", "p-prefix", 0},       // element-wise prefix
		{"paths.test", "/foo/bar", "p-longer", 0},       // longest prefix wins
		{"paths.test", "/foo/bar/baz", "p-longer", 0},   // longest prefix, deeper
		{"paths.test", "/foo/barbaz", "p-prefix", 0},    // not an element match of /foo/bar
		{"paths.test", "/foobar", "", 404},              // not an element match of /foo
		{"paths.test", "/FOO", "", 404},                 // case-sensitive
		{"paths.test", "/trail", "p-trail", 0},          // trailing slash in the rule ignored
		{"paths.test", "/trail/", "p-trail", 0},         //
		{"paths.test", "/trail/x", "p-trail", 0},        //
		{"paths.test", "/trailx", "", 404},              //
		{"paths.test", "/impl/x", "p-impl", 0},          // ImplementationSpecific = Prefix
		{"paths.test", "/", "", http.StatusNotFound},    // no rule for /
		{"paths.test", "/bar", "", http.StatusNotFound}, //
	})
}

func TestMissingServiceAnswers503AndOthersKeepWorking(t *testing.T) {
	newBackends(t, "missing", 1, "present")
	ing := harness.Ingress("missing", "mixed", className, harness.Rule("missing.test",
		harness.Path(prefix, "/ok", "present"),
		harness.Path(prefix, "/gone", "absent"),
	))
	if err := harness.CreateAll(context.Background(), env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("missing.test", "/ok", "present", ""))
	checkRoutes(t, []routeCase{{"missing.test", "/gone", "", http.StatusServiceUnavailable}})
	eventually(t, 10*time.Second, warningEvent("missing", "mixed", "ServiceNotFound"))
}

func TestSpreadReachesEveryEndpoint(t *testing.T) {
	bs := newBackends(t, "spread", 10, "spread")
	ing := harness.Ingress("spread", "spread", className, harness.Rule("spread.test", harness.Path(prefix, "/", "spread")))
	if err := harness.CreateAll(context.Background(), env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("spread.test", "/", "spread", ""))
	seen := map[string]int{}
	for i := 0; i < 100; i++ {
		r, err := get("spread.test", "/")
		if err != nil || r.Echo == nil {
			t.Fatalf("request %d: %v %+v", i, err, r)
		}
		seen[r.Echo.Pod]++
	}
	for _, p := range bs.pods["spread"] {
		if seen[p.Name] == 0 {
			t.Errorf("pod %s got none of 100 requests: %v", p.Name, seen)
		}
	}
}
