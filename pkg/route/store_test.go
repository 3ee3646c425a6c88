package route_test

import (
	"sync"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestStoreLoadIsNilBeforePublish(t *testing.T) {
	for name, s := range map[string]*route.Store{"NewStore": route.NewStore(), "zero": new(route.Store)} {
		if got := s.Load(); got != nil {
			t.Errorf("%s: Load before Publish = %v, want nil", name, got)
		}
		if closed(s.Published()) {
			t.Errorf("%s: Published closed before Publish", name)
		}
	}
}

// TestPublishedClosesOnFirstPublishOnly also pins that the zero Store is
// usable: Publish on it used to close a nil channel and panic.
func TestPublishedClosesOnFirstPublishOnly(t *testing.T) {
	for name, s := range map[string]*route.Store{"NewStore": route.NewStore(), "zero": new(route.Store)} {
		before := s.Published()
		t1, t2 := route.NewBuilder(1).Build(), route.NewBuilder(2).Build()
		s.Publish(t1)
		if !closed(before) || !closed(s.Published()) {
			t.Errorf("%s: Published not closed after the first Publish", name)
		}
		if s.Load() != t1 {
			t.Errorf("%s: Load = %v, want table 1", name, s.Load())
		}
		s.Publish(t2) // must not close Published again (that would panic)
		if s.Load() != t2 {
			t.Errorf("%s: Load = %v, want table 2", name, s.Load())
		}
	}
}

func TestStoreConcurrentLoadAndPublish(t *testing.T) {
	s := route.NewStore()
	const versions = 2000
	tables := make([]*route.Table, versions+1)
	for v := range tables {
		tables[v] = route.NewBuilder(uint64(v)).Build()
	}

	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-s.Published()
			last := uint64(0)
			for last < versions {
				tbl := s.Load()
				if tbl == nil {
					errs <- "Load returned nil after Published closed"
					return
				}
				if tbl.Version() < last {
					errs <- "a reader saw the table version go backwards"
					return
				}
				last = tbl.Version()
			}
		}()
	}
	// Two publishers race for the first Publish; only one may close
	// Published. Then one writer publishes increasing versions.
	var first sync.WaitGroup
	for i := 0; i < 2; i++ {
		first.Add(1)
		go func() { defer first.Done(); s.Publish(tables[0]) }()
	}
	first.Wait()
	for v := 1; v <= versions; v++ {
		s.Publish(tables[v])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
