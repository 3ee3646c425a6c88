package reconcile

import (
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/pkg/route"
)

// benchSnapshot returns n Ingresses of two paths each, over n Services of
// three ready endpoints each, spread over ten namespaces.
func benchSnapshot(n int) *Snapshot {
	snap := &Snapshot{IngressClasses: []networkingv1.IngressClass{testClass()}}
	for i := range n {
		ns := fmt.Sprintf("ns-%d", i%10)
		name := fmt.Sprintf("app-%d", i)
		snap.Ingresses = append(snap.Ingresses,
			testIngress(ns, name, int64(i), name+".example.com", name, "/", "/api"))
		svc, es := testService(ns, name,
			fmt.Sprintf("10.%d.%d.1", i/256, i%256),
			fmt.Sprintf("10.%d.%d.2", i/256, i%256),
			fmt.Sprintf("10.%d.%d.3", i/256, i%256))
		snap.Services = append(snap.Services, svc)
		snap.EndpointSlices = append(snap.EndpointSlices, es)
	}
	return snap
}

// BenchmarkBuild measures a full rebuild of 1000 Ingresses × 2 paths over
// 1000 Services × 3 endpoints, with a warm registry as in the controller.
func BenchmarkBuild(b *testing.B) {
	snap := benchSnapshot(1000)
	reg := route.NewRegistry(nil)
	b.ReportAllocs()
	for b.Loop() {
		gen := reg.Begin()
		table, problems := Build(snap, testOptions, gen, 1)
		gen.Commit()
		if len(problems) != 0 || table == nil {
			b.Fatalf("problems: %v", problems)
		}
	}
}

// TestBenchSnapshotBuildsEveryRoute checks that the benchmark measures a
// real build: every route present and every endpoint registered.
func TestBenchSnapshotBuildsEveryRoute(t *testing.T) {
	snap := benchSnapshot(1000)
	reg := route.NewRegistry(nil)
	gen := reg.Begin()
	table, problems := Build(snap, testOptions, gen, 1)
	gen.Commit()
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if reg.Len() != 3000 {
		t.Errorf("registry holds %d backends, want 3000", reg.Len())
	}
	if tg := table.Match("app-999.example.com", "/api/x"); tg == nil || tg.Cluster.Name() != "ns-9/app-999:80" {
		t.Errorf("Match = %+v", tg)
	}
}
