package stream_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// indexed checks that the index holds exactly the streams linked to each
// backend of e.
func indexed(t *testing.T, e *env, streams []*stream.Stream) {
	t.Helper()
	linked := make(map[route.Token]int)
	for _, s := range streams {
		check(t, s)
		if b := s.Backend(); b != nil {
			linked[b.Token()]++
		}
	}
	for i, b := range e.bs {
		if got := e.pool.Index().Len(b.Token()); got != linked[b.Token()] {
			t.Fatalf("index Len(backend %d) = %d, want %d", i, got, linked[b.Token()])
		}
		if got := b.Active(); got != int64(linked[b.Token()]) {
			t.Fatalf("backend %d Active = %d, want %d", i, got, linked[b.Token()])
		}
	}
	if got := e.pool.Index().Tokens(); got != len(linked) {
		t.Fatalf("index Tokens = %d, want %d", got, len(linked))
	}
}

func TestStreamIsIndexedUnderTokenIffLinkedToIt(t *testing.T) {
	e := newEnv(t, 3, stream.Options{})
	var ss []*stream.Stream
	for i := 0; i < 6; i++ {
		s := e.get(t)
		must(t, s, s.Open(t0))
		ss = append(ss, s)
	}
	indexed(t, e, ss)
	steps := []func() error{
		func() error { return ss[0].Link(e.bs[0], t0) },
		func() error { return ss[1].Link(e.bs[0], t0) },
		func() error { return ss[2].Link(e.bs[0], t0) },
		func() error { return ss[3].Link(e.bs[1], t0) },
		func() error { return ss[1].Relink() },          // middle of backend 0's list
		func() error { return ss[1].Link(e.bs[2], t0) }, // moves to backend 2
		func() error { return ss[2].Unlink() },          // head of backend 0's list
		func() error { ss[0].Finish(t0); return nil },   // last of backend 0
		func() error { return ss[4].Link(e.bs[0], t0) }, // backend 0 again
		func() error { ss[3].Release(t0); ss[3] = nil; return nil },
		func() error { return ss[5].Link(e.bs[2], t0) },
		func() error { return ss[5].Relink() },
		func() error { return ss[5].Link(e.bs[2], t0) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		live := ss[:0:0]
		for _, s := range ss {
			if s != nil {
				live = append(live, s)
			}
		}
		indexed(t, e, live)
	}
	for _, s := range ss {
		if s != nil {
			s.Release(t0)
		}
	}
	e.settled(t, 6)
}

func TestDrainCallsOnGoneForExactlyTheStreamsLinkedToToken(t *testing.T) {
	e := newEnv(t, 2, stream.Options{})
	calls := make([]int, 6)
	var ss []*stream.Stream
	for i := range calls {
		s := e.get(t)
		s.OnGone = func() { calls[i]++ }
		must(t, s, s.Open(t0))
		ss = append(ss, s)
	}
	b0, b1 := e.bs[0], e.bs[1]
	must(t, ss[0], ss[0].Link(b0, t0)) // linked to b0: called
	must(t, ss[1], ss[1].Link(b0, t0)) // linked to b0: called
	must(t, ss[2], ss[2].Link(b1, t0)) // other backend
	must(t, ss[3], ss[3].Link(b0, t0))
	must(t, ss[3], ss[3].Relink()) // was linked to b0, now waiting
	must(t, ss[4], ss[4].Link(b0, t0))
	must(t, ss[4], ss[4].Unlink()) // was linked to b0, now flushing
	ss[5].OnGone = nil             // linked to b0 without a hook: counted, not called
	must(t, ss[5], ss[5].Link(b0, t0))

	if n := e.pool.Index().Drain(b0.Token()); n != 3 {
		t.Errorf("Drain(b0) reached %d streams, want 3", n)
	}
	want := []int{1, 1, 0, 0, 0, 0}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("stream %d: OnGone called %d times, want %d", i, calls[i], want[i])
		}
	}
	// Drain leaves the index alone: the streams unlink themselves.
	if n := e.pool.Index().Len(b0.Token()); n != 3 {
		t.Errorf("Len(b0) after Drain = %d, want 3", n)
	}
	if n := e.pool.Index().Drain(route.Token(999)); n != 0 {
		t.Errorf("Drain(unknown token) = %d, want 0", n)
	}
	for _, s := range ss {
		s.Release(t0)
	}
	e.settled(t, 6)
}

func TestRetiringABackendDrainsItsStreams(t *testing.T) {
	e := newEnv(t, 2, stream.Options{})
	var gone [2]int
	s0, s1 := e.get(t), e.get(t)
	s0.OnGone = func() { gone[0]++ }
	s1.OnGone = func() { gone[1]++ }
	for i, s := range []*stream.Stream{s0, s1} {
		must(t, s, s.Open(t0))
		must(t, s, s.Link(e.bs[i], t0))
	}
	e.retire(0)
	if gone != [2]int{1, 0} {
		t.Fatalf("OnGone calls = %v, want [1 0]", gone)
	}
	// A retired backend is never linked again: Drain would not see it.
	must(t, s0, s0.Relink())
	if err := s0.Link(e.bs[0], t0); !errors.Is(err, stream.ErrBackendGone) {
		t.Fatalf("Link to a retired backend: err = %v, want ErrBackendGone", err)
	}
	must(t, s0, s0.Link(e.bs[1], t0))
	s0.Release(t0)
	s1.Release(t0)
	e.settled(t, 2)
}

// TestLinkRacingRetirementIsAlwaysDrained pins the OnGone contract under a
// race between Link and the registry's Commit: a stream that is Linked to
// a backend once its retirement (and Drain) is done must have been told.
func TestLinkRacingRetirementIsAlwaysDrained(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := newEnv(t, 1, stream.Options{})
		b := e.bs[0]
		committed := make(chan struct{})
		const workers = 4
		var wg sync.WaitGroup
		fail := make(chan error, workers)
		var ready sync.WaitGroup
		ready.Add(workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var told atomic.Bool
				s, err := e.pool.Get()
				if err != nil {
					fail <- err
					ready.Done()
					return
				}
				s.OnGone = func() { told.Store(true) }
				_ = s.Open(t0)
				ready.Done()
				for {
					if err := s.Link(b, t0); errors.Is(err, stream.ErrBackendGone) {
						break
					} else if errors.Is(err, stream.ErrAttemptsExhausted) {
						s.Finish(t0) // clears OnGone, as for any new request
						s.OnGone = func() { told.Store(true) }
						_ = s.Open(t0)
						continue
					} else if err != nil {
						fail <- err
						break
					}
					select {
					case <-committed:
						if !told.Load() {
							fail <- errors.New("stream linked across the retirement was never told")
						}
					default:
						_ = s.Relink()
						continue
					}
					break
				}
				s.Release(t0)
			}()
		}
		ready.Wait()
		e.retire(0)
		close(committed)
		wg.Wait()
		close(fail)
		for err := range fail {
			t.Fatal(err)
		}
		e.settled(t, -1) // the number of requests depends on the race
	}
}

func TestIndexUnderConcurrentStreamsAndDrains(t *testing.T) {
	e := newEnv(t, 5, stream.Options{MaxStreams: 32, BufSize: 32})
	const workers, rounds = 8, 400
	var told atomic.Int64
	var wg sync.WaitGroup
	fail := make(chan error, workers+1)
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() { // drains every token while the streams churn
		defer close(drained)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, b := range e.bs {
				if n := e.pool.Index().Drain(b.Token()); n < 0 || n > workers {
					fail <- errors.New("Drain reached an impossible number of streams")
					return
				}
				_ = e.pool.Index().Len(b.Token())
				_ = e.pool.Index().Tokens()
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				s, err := e.pool.Get()
				if err != nil {
					fail <- err
					return
				}
				s.OnGone = func() { told.Add(1) }
				for _, err := range []error{
					s.Open(t0),
					s.Link(e.bs[(w+i)%5], t0),
					s.Relink(),
					s.Link(e.bs[(w*i)%5], t0),
				} {
					if err != nil {
						fail <- err
						return
					}
				}
				if err := s.CheckInvariants(); err != nil {
					fail <- err
					return
				}
				if i%2 == 0 {
					s.Finish(t0)
				}
				s.Release(t0)
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	<-drained
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	e.settled(t, workers*rounds)
	t.Logf("OnGone ran %d times", told.Load())
}
