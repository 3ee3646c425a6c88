package route_test

import (
	"sync"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestPickRoundRobinReachesEveryBackendEvenly(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		_, bs := backends(n)
		c := route.NewCluster("ns/svc:80", bs, "")
		counts := make(map[*route.Backend]int)
		const rounds = 50
		for i := 0; i < rounds*n; i++ {
			counts[c.Pick(nil)]++
		}
		for i, b := range bs {
			if counts[b] != rounds {
				t.Errorf("n=%d: backend %d picked %d times, want %d", n, i, counts[b], rounds)
			}
		}
		if len(counts) != n {
			t.Errorf("n=%d: picked %d distinct values (nil included), want %d", n, len(counts), n)
		}
	}
}

func TestPickRoundRobinIsEvenAcrossGoroutines(t *testing.T) {
	_, bs := backends(4)
	c := route.NewCluster("ns/svc:80", bs, "")
	const workers, each = 8, 1000
	counts := make([]map[*route.Backend]int, workers)
	var wg sync.WaitGroup
	for w := range counts {
		counts[w] = make(map[*route.Backend]int)
		wg.Add(1)
		go func(m map[*route.Backend]int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				m[c.Pick(nil)]++
			}
		}(counts[w])
	}
	wg.Wait()
	total := make(map[*route.Backend]int)
	for _, m := range counts {
		for b, n := range m {
			total[b] += n
		}
	}
	for i, b := range bs {
		if want := workers * each / len(bs); total[b] != want {
			t.Errorf("backend %d picked %d times, want %d", i, total[b], want)
		}
	}
}

func TestPickSkipsAvoidWhenAnotherExists(t *testing.T) {
	_, bs := backends(3)
	c := route.NewCluster("ns/svc:80", bs, "")
	seen := make(map[*route.Backend]int)
	for i := 0; i < 30; i++ {
		b := c.Pick(bs[1])
		if b == bs[1] {
			t.Fatalf("Pick(avoid=backend 1) returned backend 1 on call %d", i)
		}
		seen[b]++
	}
	if seen[bs[0]] == 0 || seen[bs[2]] == 0 {
		t.Errorf("Pick with avoid did not reach both other backends: %v", seen)
	}
}

func TestPickReturnsAvoidWhenItIsTheOnlyLiveBackend(t *testing.T) {
	_, bs := backends(1)
	c := route.NewCluster("ns/svc:80", bs, "")
	for i := 0; i < 3; i++ {
		if got := c.Pick(bs[0]); got != bs[0] {
			t.Fatalf("Pick(avoid=only) = %v, want the only backend", got)
		}
	}

	// The only other backend is retired: avoid is still the best choice.
	reg := route.NewRegistry(nil)
	g := reg.Begin()
	a, b := g.Backend("10.0.0.1:80", ""), g.Backend("10.0.0.2:80", "")
	g.Commit()
	c = route.NewCluster("ns/svc:80", []*route.Backend{a, b}, "")
	g = reg.Begin()
	g.Backend(a.Addr(), "")
	g.Commit() // retires b
	for i := 0; i < 3; i++ {
		if got := c.Pick(a); got != a {
			t.Fatalf("Pick(avoid=a) with b retired = %v, want a", got)
		}
	}
}

func TestPickNeverReturnsARetiredBackend(t *testing.T) {
	reg := route.NewRegistry(nil)
	g := reg.Begin()
	var bs []*route.Backend
	for i := 0; i < 5; i++ {
		bs = append(bs, g.Backend(addr(i), ""))
	}
	g.Commit()
	c := route.NewCluster("ns/svc:80", bs, "")

	g = reg.Begin()
	g.Backend(bs[1].Addr(), "")
	g.Backend(bs[3].Addr(), "")
	g.Commit() // retires 0, 2 and 4
	counts := make(map[*route.Backend]int)
	for i := 0; i < 100; i++ {
		b := c.Pick(nil)
		if b.Retired() {
			t.Fatalf("Pick returned retired backend %s", b.Addr())
		}
		counts[b]++
		if b2 := c.Pick(bs[1]); b2 != bs[3] {
			t.Fatalf("Pick(avoid=1) = %v, want backend 3", b2)
		}
	}
	if counts[bs[1]] == 0 || counts[bs[3]] == 0 {
		t.Errorf("live backends not both reached: %v", counts)
	}

	reg.Begin().Commit() // retires everything
	if got := c.Pick(nil); got != nil {
		t.Errorf("Pick with every backend retired = %s, want nil", got.Addr())
	}
	if got := c.Pick(bs[1]); got != nil {
		t.Errorf("Pick(avoid) with every backend retired = %s, want nil", got.Addr())
	}
}

func TestPickOnEmptyClusterReturnsNil(t *testing.T) {
	c := route.NewCluster("ns/svc:80", nil, "no endpoints")
	if got := c.Pick(nil); got != nil {
		t.Errorf("Pick on an empty cluster = %v, want nil", got)
	}
	if c.Reason() != "no endpoints" || c.Name() != "ns/svc:80" || len(c.Backends()) != 0 {
		t.Errorf("accessors = %q %q %d", c.Reason(), c.Name(), len(c.Backends()))
	}
}
