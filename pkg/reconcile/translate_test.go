package reconcile

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/pkg/route"
)

// shuffleSnapshot returns a copy of snap with every slice shuffled by rng.
func shuffleSnapshot(snap *Snapshot, rng *rand.Rand) *Snapshot {
	out := &Snapshot{
		IngressClasses: append(snap.IngressClasses[:0:0], snap.IngressClasses...),
		Ingresses:      append(snap.Ingresses[:0:0], snap.Ingresses...),
		Services:       append(snap.Services[:0:0], snap.Services...),
		EndpointSlices: append(snap.EndpointSlices[:0:0], snap.EndpointSlices...),
		Secrets:        append(snap.Secrets[:0:0], snap.Secrets...),
		RoutePolicies:  append(snap.RoutePolicies[:0:0], snap.RoutePolicies...),
	}
	rng.Shuffle(len(out.RoutePolicies), func(i, j int) {
		out.RoutePolicies[i], out.RoutePolicies[j] = out.RoutePolicies[j], out.RoutePolicies[i]
	})
	rng.Shuffle(len(out.Secrets), func(i, j int) { out.Secrets[i], out.Secrets[j] = out.Secrets[j], out.Secrets[i] })
	rng.Shuffle(len(out.IngressClasses), func(i, j int) {
		out.IngressClasses[i], out.IngressClasses[j] = out.IngressClasses[j], out.IngressClasses[i]
	})
	rng.Shuffle(len(out.Ingresses), func(i, j int) { out.Ingresses[i], out.Ingresses[j] = out.Ingresses[j], out.Ingresses[i] })
	rng.Shuffle(len(out.Services), func(i, j int) { out.Services[i], out.Services[j] = out.Services[j], out.Services[i] })
	rng.Shuffle(len(out.EndpointSlices), func(i, j int) {
		out.EndpointSlices[i], out.EndpointSlices[j] = out.EndpointSlices[j], out.EndpointSlices[i]
	})
	return out
}

// TestBuildIsIndependentOfSliceOrder shuffles every slice of every golden
// snapshot, and of a merged snapshot of all of them, many times: the Dump
// and the Problems must not change.
func TestBuildIsIndependentOfSliceOrder(t *testing.T) {
	merged := &Snapshot{}
	cases := map[string]*Snapshot{}
	for _, name := range goldenCases(t) {
		s := loadCase(t, name)
		cases[name] = s
		mergeDistinct(merged, s, name)
	}
	cases["all-merged"] = merged
	rng := rand.New(rand.NewPCG(1, 2))
	for name, snap := range cases {
		want := buildOutput(snap)
		for i := range 50 {
			if got := buildOutput(shuffleSnapshot(snap, rng)); got != want {
				t.Fatalf("%s: shuffle %d changed the output\n--- got:\n%s--- want:\n%s", name, i, got, want)
			}
		}
	}
}

// mergeDistinct appends the objects of s to dst, moving every namespaced
// object to a namespace named after the case so that names stay unique;
// IngressClasses are kept once by name.
func mergeDistinct(dst, s *Snapshot, ns string) {
	seen := map[string]bool{}
	for _, c := range dst.IngressClasses {
		seen[c.Name] = true
	}
	for _, c := range s.IngressClasses {
		if !seen[c.Name] {
			dst.IngressClasses = append(dst.IngressClasses, c)
		}
	}
	for _, o := range s.Ingresses {
		o.Namespace = ns + "-" + o.Namespace
		dst.Ingresses = append(dst.Ingresses, o)
	}
	for _, o := range s.Services {
		o.Namespace = ns + "-" + o.Namespace
		dst.Services = append(dst.Services, o)
	}
	for _, o := range s.EndpointSlices {
		o.Namespace = ns + "-" + o.Namespace
		dst.EndpointSlices = append(dst.EndpointSlices, o)
	}
	for _, o := range s.Secrets {
		o.Namespace = ns + "-" + o.Namespace
		dst.Secrets = append(dst.Secrets, o)
	}
	for _, o := range s.RoutePolicies {
		o.Namespace = ns + "-" + o.Namespace
		dst.RoutePolicies = append(dst.RoutePolicies, o)
	}
}

// TestBuiltTableMatches checks how requests match tables built from golden
// cases: longest prefix, Exact before Prefix, host specificity, default.
func TestBuiltTableMatches(t *testing.T) {
	tests := []struct {
		name, host, path string
		wantCluster      string // "" for no match
	}{
		{"longest_prefix", "shop.example.com", "/", "default/web:80"},
		{"longest_prefix", "shop.example.com", "/apix", "default/web:80"},
		{"longest_prefix", "shop.example.com", "/api", "default/api:80"},
		{"longest_prefix", "shop.example.com", "/api/v2", "default/api:80"},
		{"longest_prefix", "shop.example.com", "/api/v1/users", "default/api-v1:80"},
		{"longest_prefix", "other.example.com", "/", ""},
		{"exact_and_prefix", "foo.example.com", "/foo", "default/api:80"},
		{"exact_and_prefix", "foo.example.com", "/foo/bar", "default/web:80"},
		{"hosts", "WWW.example.com:443", "/x", "default/web:80"},
		{"hosts", "a.example.com", "/x", "default/web:80"},
		{"hosts", "a.b.example.com", "/x", "default/api:80"},
		{"default_backend", "nothing.example.com", "/", "default/web:80"},
		{"path_types", "paths.example.com", "/exact/", "default/api:80"},
		{"path_types", "paths.example.com", "/impl/x", "default/web:80"},
	}
	for _, tc := range tests {
		table, _ := Build(loadCase(t, tc.name), testOptions, route.NewRegistry(nil).Begin(), 1)
		got := ""
		if tg := table.Match(tc.host, tc.path); tg != nil {
			got = tg.Cluster.Name()
		}
		if got != tc.wantCluster {
			t.Errorf("%s: Match(%q, %q) = cluster %q, want %q", tc.name, tc.host, tc.path, got, tc.wantCluster)
		}
	}
}

// TestRoutesToOneServicePortShareACluster: the round-robin state of a
// Service port is shared by every route to it, across Ingresses and hosts.
func TestRoutesToOneServicePortShareACluster(t *testing.T) {
	table, _ := Build(loadCase(t, "hosts"), testOptions, route.NewRegistry(nil).Begin(), 1)
	a := table.Match("www.example.com", "/")
	b := table.Match("x.example.com", "/")
	if a == nil || b == nil || a.Cluster != b.Cluster {
		t.Fatalf("routes to default/web:80 do not share one cluster: %+v %+v", a, b)
	}
	if a.Service != "web" || a.Port != "80" || a.Namespace != "default" || a.Ingress != "hosts" {
		t.Errorf("target = %+v, want default/hosts service web port 80", a)
	}
}

// TestBuildAsksOnlyForUsedBackends: the backends of a path that loses a
// conflict are never requested from the generation, so Commit retires
// them.
func TestBuildAsksOnlyForUsedBackends(t *testing.T) {
	winSvc, winSlice := testService("default", "winner", "10.0.0.1")
	loseSvc, loseSlice := testService("default", "loser", "10.0.0.2")
	snap := &Snapshot{
		IngressClasses: []networkingv1.IngressClass{testClass()},
		Ingresses: []networkingv1.Ingress{
			testIngress("default", "new", 200, "a.example.com", "loser", "/"),
			testIngress("default", "old", 100, "a.example.com", "winner", "/"),
		},
		Services:       []corev1.Service{winSvc, loseSvc},
		EndpointSlices: []discoveryv1.EndpointSlice{winSlice, loseSlice},
	}
	reg := route.NewRegistry(nil)
	gen := reg.Begin()
	_, problems := Build(snap, testOptions, gen, 1)
	gen.Commit()
	if len(problems) != 1 || problems[0].Reason != ReasonRuleConflict || problems[0].Name != "new" {
		t.Fatalf("problems = %+v, want one RuleConflict on default/new", problems)
	}
	if reg.Len() != 1 || reg.Lookup("10.0.0.1:8080") == nil {
		t.Errorf("registry holds %d backends, want only the winner's 10.0.0.1:8080", reg.Len())
	}
	if got := reg.Lookup("10.0.0.1:8080").Pod(); got != "default/winner-0" {
		t.Errorf("pod = %q, want default/winner-0", got)
	}
}

// TestBuildNilSnapshot returns an empty table stamped with the version.
func TestBuildNilSnapshot(t *testing.T) {
	table, problems := Build(nil, testOptions, route.NewRegistry(nil).Begin(), 7)
	if table.Version() != 7 || table.Dump() != "" || problems != nil {
		t.Errorf("Build(nil) = version %d, dump %q, problems %v", table.Version(), table.Dump(), problems)
	}
}
