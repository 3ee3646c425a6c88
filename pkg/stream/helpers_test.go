package stream_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// t0 is the fixed clock of the tests; nothing in them depends on real time.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// gauge is an Observer that plays the active-requests gauge and the access
// log: it checks that Opened and Closed alternate for each stream and that
// the gauge never goes negative. It is safe for concurrent use.
type gauge struct {
	mu      sync.Mutex
	active  int64
	opened  int
	closed  int
	open    map[*stream.Stream]bool
	errs    []string
	onClose func(*stream.Stream) // optional extra check, under mu
}

func newGauge() *gauge { return &gauge{open: make(map[*stream.Stream]bool)} }

func (g *gauge) Opened(s *stream.Stream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open[s] {
		g.errs = append(g.errs, fmt.Sprintf("Opened twice without Closed (state %s)", s.State()))
	}
	if !s.Counted() || !s.State().IsOpen() {
		g.errs = append(g.errs, fmt.Sprintf("Opened with counted=%v state %s", s.Counted(), s.State()))
	}
	g.open[s] = true
	g.active++
	g.opened++
}

func (g *gauge) Closed(s *stream.Stream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open[s] {
		g.errs = append(g.errs, fmt.Sprintf("Closed without Opened (state %s)", s.State()))
	}
	if s.Backend() != nil || s.State() != stream.Unlinked {
		g.errs = append(g.errs, fmt.Sprintf("Closed while %s with backend set=%v", s.State(), s.Backend() != nil))
	}
	delete(g.open, s)
	g.active--
	g.closed++
	if g.active < 0 {
		g.errs = append(g.errs, fmt.Sprintf("gauge went negative: %d", g.active))
	}
	if g.onClose != nil {
		g.onClose(s)
	}
}

// snapshot returns the gauge, the Opened and Closed counts and any error.
func (g *gauge) snapshot() (active int64, opened, closed int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		err = fmt.Errorf("observer: %v", g.errs)
	}
	return g.active, g.opened, g.closed, err
}

// env is a pool watched by a gauge, with a registry whose retired backends
// are drained from the pool's index.
type env struct {
	pool  *stream.Pool
	gauge *gauge
	reg   *route.Registry
	bs    []*route.Backend
}

// newEnv returns an env with n live backends. The gauge observes the pool
// unless o names another Observer.
func newEnv(t testing.TB, n int, o stream.Options) *env {
	t.Helper()
	e := &env{gauge: newGauge()}
	if o.Observer == nil {
		o.Observer = e.gauge
	}
	e.pool = stream.NewPool(o)
	e.reg = route.NewRegistry(func(b *route.Backend) { e.pool.Index().Drain(b.Token()) })
	g := e.reg.Begin()
	for i := 0; i < n; i++ {
		e.bs = append(e.bs, g.Backend(fmt.Sprintf("10.0.0.%d:80", i+1), ""))
	}
	g.Commit()
	return e
}

// retire commits a generation without backend i, which drains it.
func (e *env) retire(i int) {
	g := e.reg.Begin()
	for j, b := range e.bs {
		if j != i && !b.Retired() {
			g.Backend(b.Addr(), "")
		}
	}
	g.Commit()
}

// get checks a stream out or fails the test.
func (e *env) get(t testing.TB) *stream.Stream {
	t.Helper()
	s, err := e.pool.Get()
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	check(t, s)
	return s
}

// check fails the test when s breaks an invariant.
func check(t testing.TB, s *stream.Stream) {
	t.Helper()
	if err := s.CheckInvariants(); err != nil {
		t.Fatalf("invariant broken: %v", err)
	}
}

// must fails the test when err is not nil, then checks s's invariants.
func must(t testing.TB, s *stream.Stream, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	check(t, s)
}

// settled checks that nothing is left: gauge 0, Opened == Closed == want
// (any number when want is negative), index empty, backends idle, pool
// empty.
func (e *env) settled(t testing.TB, want int) {
	t.Helper()
	active, opened, closed, err := e.gauge.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if want < 0 {
		want = opened
	}
	if active != 0 || opened != want || closed != want {
		t.Errorf("gauge %d, Opened %d, Closed %d; want 0, %d, %d", active, opened, closed, want, want)
	}
	if n := e.pool.Index().Tokens(); n != 0 {
		t.Errorf("index holds %d tokens, want 0", n)
	}
	for i, b := range e.bs {
		if b.Active() != 0 {
			t.Errorf("backend %d Active = %d, want 0", i, b.Active())
		}
	}
	if n := e.pool.InUse(); n != 0 {
		t.Errorf("pool InUse = %d, want 0", n)
	}
}
