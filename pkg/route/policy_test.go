package route

import (
	"fmt"
	"testing"
)

func clusterOf(n int) (*Cluster, *Registry) {
	reg := NewRegistry(nil)
	gen := reg.Begin()
	var bs []*Backend
	for i := 0; i < n; i++ {
		bs = append(bs, gen.Backend(fmt.Sprintf("198.18.0.%d:80", i+1), ""))
	}
	gen.Commit()
	return NewCluster("ns/svc:80", bs, ""), reg
}

func TestPickHashedKeepsAKeyOnOneBackendAndSpreadsKeys(t *testing.T) {
	c, _ := clusterOf(5)
	seen := map[*Backend]int{}
	for k := 0; k < 500; k++ {
		key := fmt.Sprintf("user-%d", k)
		first := c.PickHashed(key, nil)
		for i := 0; i < 3; i++ {
			if c.PickHashed(key, nil) != first {
				t.Fatalf("key %s moved between backends", key)
			}
		}
		seen[first]++
	}
	if len(seen) != 5 {
		t.Errorf("500 keys reached %d of 5 backends", len(seen))
	}
	for b, n := range seen {
		if n < 50 {
			t.Errorf("backend %s got only %d of 500 keys", b.Addr(), n)
		}
	}
}

func TestPickHashedMovesOnlyTheKeysOfADepartedBackend(t *testing.T) {
	c, _ := clusterOf(5)
	before := map[string]*Backend{}
	for k := 0; k < 300; k++ {
		key := fmt.Sprint(k)
		before[key] = c.PickHashed(key, nil)
	}
	gone := c.backends[2]
	smaller := NewCluster(c.name, append(append([]*Backend{}, c.backends[:2]...), c.backends[3:]...), "")
	for key, b := range before {
		after := smaller.PickHashed(key, nil)
		if b != gone && after != b {
			t.Errorf("key %s moved from %s to %s although its backend stayed", key, b.Addr(), after.Addr())
		}
		if after == gone {
			t.Errorf("key %s still maps to the departed backend", key)
		}
	}
}

func TestPickHashedAvoidsTheFailedBackendWhenAnotherExists(t *testing.T) {
	c, _ := clusterOf(3)
	first := c.PickHashed("k", nil)
	if again := c.PickHashed("k", first); again == first || again == nil {
		t.Errorf("avoid not honoured: %v", again)
	}
	one, _ := clusterOf(1)
	only := one.PickHashed("k", nil)
	if one.PickHashed("k", only) != only {
		t.Error("the only backend must be returned even when avoided")
	}
}

func TestPickLeastRequestPrefersTheIdleBackend(t *testing.T) {
	c, _ := clusterOf(2)
	busy := c.backends[0]
	for i := 0; i < 10; i++ {
		busy.Acquire()
	}
	for i := 0; i < 100; i++ {
		if got := c.PickLeastRequest(nil); got == busy {
			t.Fatal("picked the busy backend although an idle one was drawn with it")
		}
	}
	single, _ := clusterOf(1)
	if single.PickLeastRequest(nil) == nil {
		t.Error("single backend not picked")
	}
	empty := NewCluster("x", nil, "")
	if empty.PickLeastRequest(nil) != nil {
		t.Error("empty cluster picked something")
	}
}

func TestStickyKeyIsStableAndFindsTheBackend(t *testing.T) {
	c, _ := clusterOf(3)
	c2, _ := clusterOf(3) // another registry: another replica
	for i, b := range c.backends {
		if b.StickyKey() != c2.backends[i].StickyKey() {
			t.Errorf("sticky key of %s differs between replicas", b.Addr())
		}
		if c.BySticky(b.StickyKey()) != b {
			t.Errorf("BySticky(%s) did not find %s", b.StickyKey(), b.Addr())
		}
	}
	if c.BySticky("nope") != nil {
		t.Error("unknown sticky key found a backend")
	}
}

func TestPolicyRetriesDefault(t *testing.T) {
	var p *Policy
	if p.Retries() != RetryDefault {
		t.Error("nil policy must retry on the default conditions")
	}
	p = &Policy{RetryOn: RetryStatus503}
	if !p.Retries().Has(RetryStatus503) || p.Retries().Has(RetryConnectFailure) {
		t.Errorf("retries = %b", p.Retries())
	}
}
