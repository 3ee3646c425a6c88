package stream_test

import (
	"testing"

	"github.com/kakehi/kakehi/pkg/stream"
)

// hotPath is one request on a fresh connection: Get, Open, Link, Finish,
// Release. It must not allocate.
func hotPath(tb testing.TB, e *env, i int) {
	s, err := e.pool.Get()
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Open(t0); err != nil {
		tb.Fatal(err)
	}
	if err := s.Link(e.bs[i%len(e.bs)], t0); err != nil {
		tb.Fatal(err)
	}
	s.Finish(t0)
	s.Release(t0)
}

// countingObserver is the cheapest useful Observer: an active gauge.
type countingObserver struct{ active int64 }

func (c *countingObserver) Opened(*stream.Stream) { c.active++ }
func (c *countingObserver) Closed(*stream.Stream) { c.active-- }

func newBenchEnv(tb testing.TB, obs stream.Observer) *env {
	return newEnv(tb, 4, stream.Options{MaxStreams: 1024, Observer: obs})
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	e := newBenchEnv(t, &countingObserver{})
	hotPath(t, e, 0) // warm the pool
	i := 0
	if n := testing.AllocsPerRun(1000, func() { hotPath(t, e, i); i++ }); n != 0 {
		t.Errorf("Get→Open→Link→Finish→Release allocates %.2f times per request, want 0", n)
	}
}

func BenchmarkHotPath(b *testing.B) {
	e := newBenchEnv(b, &countingObserver{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hotPath(b, e, i)
		i++
	}
}

func BenchmarkHotPathParallel(b *testing.B) {
	e := newBenchEnv(b, stream.ObserverFuncs{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			hotPath(b, e, i)
			i++
		}
	})
}

// BenchmarkKeepAliveRequest is one request on a kept-alive connection: the
// stream stays checked out, so only Open, Link, Unlink and Finish run.
func BenchmarkKeepAliveRequest(b *testing.B) {
	e := newBenchEnv(b, &countingObserver{})
	s, err := e.pool.Get()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Open(t0)
		_ = s.Link(e.bs[0], t0)
		_ = s.Unlink()
		s.Finish(t0)
	}
	s.Release(t0)
}
