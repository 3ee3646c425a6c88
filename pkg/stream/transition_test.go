package stream_test

import (
	"errors"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// into returns a stream of e's pool driven into state st through the
// public transitions, checking invariants on the way.
func into(t *testing.T, e *env, st stream.State) *stream.Stream {
	t.Helper()
	s := e.get(t)
	steps := map[stream.State][]func() error{
		stream.Idle:     nil,
		stream.Link:     {func() error { return s.Open(t0) }},
		stream.Linked:   {func() error { return s.Open(t0) }, func() error { return s.Link(e.bs[0], t0) }},
		stream.Unlinked: {func() error { return s.Open(t0) }, func() error { return s.Link(e.bs[0], t0) }, s.Unlink},
		stream.Recycle:  {func() error { s.Release(t0); return nil }},
	}[st]
	for _, step := range steps {
		must(t, s, step())
	}
	if s.State() != st {
		t.Fatalf("into(%s) reached %s", st, s.State())
	}
	return s
}

// snap is everything a transition may change, inside and around a stream.
type snap struct {
	state             stream.State
	backend, last     *route.Backend
	attempts          int
	counted           bool
	ctx               stream.Context
	metrics           stream.Metrics
	gauge             int64
	opened, closed    int
	indexLen, tokens  int
	active            int64
	requests          uint64
	inUse             int
	hasOnGone         bool
	frontLen, backLen int
}

func take(e *env, s *stream.Stream) snap {
	active, opened, closed, _ := e.gauge.snapshot()
	return snap{
		state: s.State(), backend: s.Backend(), last: s.LastBackend(), attempts: s.Attempts(),
		counted: s.Counted(), ctx: s.Ctx, metrics: s.Metrics,
		gauge: active, opened: opened, closed: closed,
		indexLen: e.pool.Index().Len(e.bs[0].Token()), tokens: e.pool.Index().Tokens(),
		active: e.bs[0].Active(), requests: e.bs[0].Requests(), inUse: e.pool.InUse(),
		hasOnGone: s.OnGone != nil, frontLen: len(s.Front), backLen: len(s.Back),
	}
}

// Outcomes in the transition table besides a target state.
const (
	bad  = "bad"  // ErrBadTransition, nothing changed
	noop = "noop" // no error, nothing changed
)

func TestEveryTransitionFromEveryState(t *testing.T) {
	ops := []struct {
		name string
		do   func(e *env, s *stream.Stream) error
	}{
		{"Open", func(e *env, s *stream.Stream) error { return s.Open(t0.Add(1)) }},
		{"Link", func(e *env, s *stream.Stream) error { return s.Link(e.bs[0], t0.Add(2)) }},
		{"Relink", func(e *env, s *stream.Stream) error { return s.Relink() }},
		{"Unlink", func(e *env, s *stream.Stream) error { return s.Unlink() }},
		{"Finish", func(e *env, s *stream.Stream) error { s.Finish(t0.Add(3)); return nil }},
		{"Release", func(e *env, s *stream.Stream) error { s.Release(t0.Add(4)); return nil }},
	}
	// want[from][op] is the state reached, or bad, or noop.
	want := map[stream.State]map[string]string{
		stream.Idle:     {"Open": "Link", "Link": bad, "Relink": bad, "Unlink": "Unlinked", "Finish": noop, "Release": "Recycle"},
		stream.Link:     {"Open": bad, "Link": "Linked", "Relink": bad, "Unlink": "Unlinked", "Finish": "Idle", "Release": "Recycle"},
		stream.Linked:   {"Open": bad, "Link": bad, "Relink": "Link", "Unlink": "Unlinked", "Finish": "Idle", "Release": "Recycle"},
		stream.Unlinked: {"Open": bad, "Link": bad, "Relink": bad, "Unlink": bad, "Finish": "Idle", "Release": "Recycle"},
		stream.Recycle:  {"Open": bad, "Link": bad, "Relink": bad, "Unlink": bad, "Finish": noop, "Release": noop},
	}
	for _, from := range []stream.State{stream.Idle, stream.Link, stream.Linked, stream.Unlinked, stream.Recycle} {
		for _, op := range ops {
			outcome := want[from][op.name]
			t.Run(from.String()+"/"+op.name, func(t *testing.T) {
				e := newEnv(t, 1, stream.Options{})
				s := into(t, e, from)
				s.Ctx.Path = "/kept" // must survive a refused or no-op transition
				s.OnGone = func() {}
				before := take(e, s)
				err := op.do(e, s)
				after := take(e, s)
				switch outcome {
				case bad:
					if !errors.Is(err, stream.ErrBadTransition) {
						t.Fatalf("%s from %s: err = %v, want ErrBadTransition", op.name, from, err)
					}
					if after != before {
						t.Fatalf("refused %s from %s changed the stream:\nbefore %+v\nafter  %+v", op.name, from, before, after)
					}
				case noop:
					if err != nil || after != before {
						t.Fatalf("%s from %s: err %v, changed=%v, want a no-op", op.name, from, err, after != before)
					}
				default:
					if err != nil {
						t.Fatalf("%s from %s: %v", op.name, from, err)
					}
					if got := s.State().String(); got != outcome {
						t.Fatalf("%s from %s reached %s, want %s", op.name, from, got, outcome)
					}
				}
				if err := s.CheckInvariants(); err != nil {
					t.Fatalf("%s from %s broke an invariant: %v", op.name, from, err)
				}
				if _, _, _, err := e.gauge.snapshot(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestRefusedLinksChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(e *env, s *stream.Stream) *route.Backend
		want    error
	}{
		{"nil backend", func(e *env, s *stream.Stream) *route.Backend { return nil }, stream.ErrBadTransition},
		{"attempts exhausted", func(e *env, s *stream.Stream) *route.Backend {
			for i := 0; i < e.pool.MaxAttempts(); i++ {
				_ = s.Link(e.bs[0], t0)
				_ = s.Relink()
			}
			return e.bs[0]
		}, stream.ErrAttemptsExhausted},
		{"retired backend", func(e *env, s *stream.Stream) *route.Backend {
			_ = s.Link(e.bs[1], t0)
			_ = s.Relink()
			e.retire(0)
			return e.bs[0]
		}, stream.ErrBackendGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2, stream.Options{})
			s := into(t, e, stream.Link)
			b := tc.prepare(e, s)
			check(t, s)
			before := take(e, s)
			if err := s.Link(b, t0.Add(9)); !errors.Is(err, tc.want) {
				t.Fatalf("Link: err = %v, want %v", err, tc.want)
			}
			if after := take(e, s); after != before {
				t.Fatalf("refused Link changed the stream:\nbefore %+v\nafter  %+v", before, after)
			}
			check(t, s)
			s.Release(t0)
			e.settled(t, 1)
		})
	}
}

func TestStateNames(t *testing.T) {
	for st, want := range map[stream.State]string{
		stream.Idle: "Idle", stream.Link: "Link", stream.Linked: "Linked",
		stream.Unlinked: "Unlinked", stream.Recycle: "Recycle", stream.State(9): "State(9)",
	} {
		if got := st.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(st), got, want)
		}
		wantOpen := st == stream.Link || st == stream.Linked || st == stream.Unlinked
		if st.IsOpen() != wantOpen {
			t.Errorf("%s.IsOpen() = %v, want %v", st, st.IsOpen(), wantOpen)
		}
	}
}
