package stream_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kakehi/kakehi/pkg/stream"
)

func TestPoolDefaults(t *testing.T) {
	p := stream.NewPool(stream.Options{})
	if p.Cap() != 10000 || p.BufSize() != 16<<10 || p.MaxAttempts() != 3 || p.InUse() != 0 || p.Index() == nil {
		t.Errorf("defaults: Cap %d BufSize %d MaxAttempts %d InUse %d", p.Cap(), p.BufSize(), p.MaxAttempts(), p.InUse())
	}
	s, err := p.Get() // no Observer: Open and Finish must not panic
	must(t, s, err)
	must(t, s, s.Open(t0))
	s.Release(t0)
}

func TestGetBeyondMaxStreamsIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t, 1, stream.Options{MaxStreams: 3, BufSize: 64})
	var held []*stream.Stream
	for i := 0; i < 3; i++ {
		held = append(held, e.get(t))
		if e.pool.InUse() != i+1 {
			t.Fatalf("InUse = %d after %d Gets", e.pool.InUse(), i+1)
		}
	}
	for i := 0; i < 3; i++ {
		s, err := e.pool.Get()
		if !errors.Is(err, stream.ErrPoolExhausted) || s != nil {
			t.Fatalf("Get beyond MaxStreams = %v, %v; want nil, ErrPoolExhausted", s, err)
		}
		if e.pool.InUse() != 3 {
			t.Fatalf("refused Get moved InUse to %d", e.pool.InUse())
		}
	}
	// Release returns capacity: one more Get now succeeds, then fails again.
	held[1].Release(t0)
	if e.pool.InUse() != 2 {
		t.Fatalf("InUse after Release = %d, want 2", e.pool.InUse())
	}
	held[1] = e.get(t)
	if _, err := e.pool.Get(); !errors.Is(err, stream.ErrPoolExhausted) {
		t.Fatalf("Get at capacity: err = %v", err)
	}
	for _, s := range held {
		s.Release(t0)
	}
	e.settled(t, 0)
}

func TestBuffersHaveBufSizeLength(t *testing.T) {
	for _, size := range []int{0, 1, 512, 16 << 10, 64 << 10} {
		e := newEnv(t, 1, stream.Options{MaxStreams: 4, BufSize: size})
		want := size
		if want == 0 {
			want = 16 << 10
		}
		for round := 0; round < 3; round++ {
			s := e.get(t)
			if len(s.Front) != want || len(s.Back) != want {
				t.Fatalf("size %d round %d: len(Front) %d len(Back) %d, want %d", size, round, len(s.Front), len(s.Back), want)
			}
			// Front and Back must not share memory.
			s.Front[len(s.Front)-1], s.Back[len(s.Back)-1] = 'f', 'b'
			s.Back[0], s.Front[0] = 'b', 'f'
			if s.Front[0] != 'f' || s.Front[len(s.Front)-1] != 'f' {
				t.Fatal("Front and Back overlap")
			}
			// The previous owner reslices; the next one still gets BufSize.
			s.Front, s.Back = s.Front[:0], s.Back[:1]
			s.Release(t0)
		}
		e.settled(t, 0)
	}
}

// TestRefusedGetNeverMovesInUse is a regression test: Get used to add one
// to InUse and undo it when over capacity, so concurrent readers saw InUse
// above Cap, and a Get racing with a refused one could be refused while a
// slot was free.
func TestRefusedGetNeverMovesInUse(t *testing.T) {
	p := stream.NewPool(stream.Options{MaxStreams: 1, BufSize: 16})
	held, err := p.Get()
	must(t, held, err)
	const workers, rounds = 4, 20000
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				if s, err := p.Get(); !errors.Is(err, stream.ErrPoolExhausted) || s != nil {
					errs <- "Get on a full pool did not report ErrPoolExhausted"
					return
				}
				if n := p.InUse(); n != 1 {
					errs <- fmt.Sprintf("InUse = %d while one stream is held by a full pool of 1", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	held.Release(t0)
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after every stream was released", p.InUse())
	}
}

// TestGetAndReleaseRaceWithinCapacity checks that many goroutines sharing
// a small pool never hold more than Cap streams, and that InUse is never
// seen above Cap.
func TestGetAndReleaseRaceWithinCapacity(t *testing.T) {
	p := stream.NewPool(stream.Options{MaxStreams: 2, BufSize: 16})
	const workers, rounds = 6, 3000
	var held atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				s, err := p.Get()
				if err != nil {
					continue
				}
				if n := held.Add(1); n > int64(p.Cap()) {
					errs <- fmt.Sprintf("%d streams held at once, Cap %d", n, p.Cap())
					return
				}
				if n := p.InUse(); n > p.Cap() {
					errs <- fmt.Sprintf("InUse %d above Cap %d", n, p.Cap())
					return
				}
				held.Add(-1)
				s.Release(t0)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if p.InUse() != 0 {
		t.Fatalf("InUse = %d after every stream was released", p.InUse())
	}
}

func TestInUseReturnsToZeroAfterConcurrentRequests(t *testing.T) {
	e := newEnv(t, 4, stream.Options{MaxStreams: 64, BufSize: 32})
	const workers, rounds = 8, 500
	var wg sync.WaitGroup
	fail := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := e.pool.Get()
			if err != nil {
				fail <- err
				return
			}
			for i := 0; i < rounds; i++ {
				b := e.bs[(w+i)%len(e.bs)]
				steps := []error{s.Open(t0), s.Link(b, t0)}
				if i%3 == 0 {
					steps = append(steps, s.Relink(), s.Link(e.bs[(w+i+1)%len(e.bs)], t0))
				}
				if i%2 == 0 {
					steps = append(steps, s.Unlink())
				}
				for _, err := range steps {
					if err != nil {
						fail <- err
						return
					}
				}
				if err := s.CheckInvariants(); err != nil {
					fail <- err
					return
				}
				s.Finish(t0)
			}
			s.Release(t0)
		}(w)
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	e.settled(t, workers*rounds)
}
