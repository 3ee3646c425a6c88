package route_test

import (
	"sync"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

// closed reports whether ch is closed, without blocking.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestTokensAreUniqueAndNeverReusedAcrossGenerations(t *testing.T) {
	reg := route.NewRegistry(nil)
	seen := make(map[route.Token]string)
	record := func(b *route.Backend) {
		t.Helper()
		if prev, ok := seen[b.Token()]; ok && prev != b.Addr() {
			t.Fatalf("token %s given to %s and to %s", b.Token(), prev, b.Addr())
		}
		seen[b.Token()] = b.Addr()
	}

	g := reg.Begin()
	a1 := g.Backend("10.0.0.1:80", "ns/a")
	b1 := g.Backend("10.0.0.2:80", "ns/b")
	c1 := g.Backend("[fd00::1]:80", "ns/c")
	record(a1)
	record(b1)
	record(c1)
	if a1.Token() == 0 || b1.Token() == 0 || c1.Token() == 0 {
		t.Fatal("token 0 handed out; 0 is reserved for the zero value")
	}
	g.Commit()

	g = reg.Begin()
	g.Backend(b1.Addr(), "")
	g.Commit() // a and c leave

	// a comes back with the same address: it is a new backend with a new
	// token, and the retired one stays retired.
	g = reg.Begin()
	a2 := g.Backend("10.0.0.1:80", "ns/a-2")
	g.Backend(b1.Addr(), "")
	g.Commit()
	record(a2)
	if a2 == a1 {
		t.Fatal("a returning after it left got the retired Backend back")
	}
	if a2.Token() == a1.Token() {
		t.Fatalf("a returning after it left reused token %s", a1.Token())
	}
	if !a1.Retired() || a2.Retired() {
		t.Errorf("Retired: old a=%v new a=%v, want true false", a1.Retired(), a2.Retired())
	}
	if a2.Pod() != "ns/a-2" {
		t.Errorf("new a Pod() = %q, want ns/a-2", a2.Pod())
	}

	// Many more generations of churn: every token stays unique.
	for gen := 0; gen < 20; gen++ {
		g = reg.Begin()
		for i := 0; i < 5; i++ {
			if (i+gen)%2 == 0 {
				record(g.Backend(addr(i), ""))
			}
		}
		g.Commit()
	}
}

func TestBackendKeptAcrossGenerationsKeepsTokenAndCounters(t *testing.T) {
	reg := route.NewRegistry(nil)
	g := reg.Begin()
	a := g.Backend("10.0.0.1:80", "ns/pod-a")
	if again := g.Backend("10.0.0.1:80", "ns/other"); again != a {
		t.Fatal("the same address twice in one generation gave two backends")
	}
	g.Commit()
	a.Acquire()
	a.Acquire()
	a.Release()
	a.RecordFailure()

	g = reg.Begin()
	a2 := g.Backend("10.0.0.1:80", "ns/renamed")
	retired := g.Commit()
	if a2 != a {
		t.Fatal("a backend kept across generations was replaced")
	}
	if len(retired) != 0 {
		t.Errorf("Commit retired %d backends, want 0", len(retired))
	}
	if a2.Token() != a.Token() || a2.Pod() != "ns/pod-a" {
		t.Errorf("token %s pod %q, want token %s pod ns/pod-a", a2.Token(), a2.Pod(), a.Token())
	}
	if a2.Active() != 1 || a2.Requests() != 2 || a2.Failures() != 1 {
		t.Errorf("counters active=%d requests=%d failures=%d, want 1 2 1", a2.Active(), a2.Requests(), a2.Failures())
	}
	if a2.Retired() || closed(a2.Gone()) {
		t.Error("a kept backend is retired")
	}
	if reg.Lookup("10.0.0.1:80") != a || reg.Len() != 1 {
		t.Errorf("Lookup/Len = %v/%d", reg.Lookup("10.0.0.1:80"), reg.Len())
	}
}

func TestCommitRetiresTheRestOnce(t *testing.T) {
	calls := make(map[*route.Backend]int)
	reg := route.NewRegistry(func(b *route.Backend) {
		if !b.Retired() || !closed(b.Gone()) {
			t.Errorf("onRetire(%s) before the backend was marked retired", b.Addr())
		}
		calls[b]++
	})
	g := reg.Begin()
	var bs []*route.Backend
	for i := 0; i < 4; i++ {
		bs = append(bs, g.Backend(addr(i), ""))
	}
	if r := g.Commit(); len(r) != 0 {
		t.Fatalf("first Commit retired %d", len(r))
	}

	g = reg.Begin()
	g.Backend(bs[2].Addr(), "")
	retired := g.Commit()
	want := []*route.Backend{bs[0], bs[1], bs[3]}
	if len(retired) != len(want) {
		t.Fatalf("Commit retired %d backends, want %d", len(retired), len(want))
	}
	for i := range want {
		if retired[i] != want[i] {
			t.Errorf("retired[%d] = %s, want %s (sorted by token)", i, retired[i].Addr(), want[i].Addr())
		}
	}
	for i, b := range bs {
		gone := i != 2
		if b.Retired() != gone || closed(b.Gone()) != gone {
			t.Errorf("backend %d: Retired=%v Gone closed=%v, want %v", i, b.Retired(), closed(b.Gone()), gone)
		}
		if want := map[bool]int{true: 1, false: 0}[gone]; calls[b] != want {
			t.Errorf("backend %d: onRetire called %d times, want %d", i, calls[b], want)
		}
		if got := reg.Lookup(b.Addr()); (got == nil) != gone {
			t.Errorf("backend %d: Lookup = %v after Commit", i, got)
		}
	}
	if reg.Len() != 1 {
		t.Errorf("Len = %d, want 1", reg.Len())
	}

	// Empty generations retire backend 2 and never retire (or close Gone
	// of) a backend twice.
	for i := 0; i < 3; i++ {
		reg.Begin().Commit()
	}
	for i, b := range bs {
		if calls[b] != 1 {
			t.Errorf("backend %d: onRetire called %d times, want 1", i, calls[b])
		}
	}
}

func TestRegistryNilOnRetireIsAllowed(t *testing.T) {
	reg := route.NewRegistry(nil)
	g := reg.Begin()
	b := g.Backend("10.0.0.1:80", "")
	g.Commit()
	if r := reg.Begin().Commit(); len(r) != 1 || r[0] != b || !b.Retired() {
		t.Fatalf("Commit = %v", r)
	}
}

func TestBackendStateIsSafeToReadDuringCommits(t *testing.T) {
	reg := route.NewRegistry(func(*route.Backend) {})
	g := reg.Begin()
	var bs []*route.Backend
	for i := 0; i < 16; i++ {
		bs = append(bs, g.Backend(addr(i), ""))
	}
	g.Commit()
	c := route.NewCluster("ns/svc:80", bs, "")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b := c.Pick(nil); b != nil {
					b.Acquire()
					_ = b.Retired()
					b.Release()
				}
				_ = reg.Lookup(addr(3))
				_ = reg.Len()
			}
		}()
	}
	for gen := 0; gen < 16; gen++ {
		g := reg.Begin()
		for i := gen + 1; i < 16; i++ {
			g.Backend(addr(i), "")
		}
		g.Commit()
	}
	close(stop)
	wg.Wait()
	for i, b := range bs {
		if !b.Retired() || b.Active() != 0 {
			t.Errorf("backend %d: Retired=%v Active=%d, want true 0", i, b.Retired(), b.Active())
		}
	}
}
