package stream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// The fuzz machine drives fuzzStreams stream slots of one pool, which has
// room for only fuzzMaxStreams of them, against fuzzBackends backend slots.
// It keeps a model of what every transition must do, checks the pool
// against it after every operation, and checks the global invariants.
const (
	fuzzStreams    = 4
	fuzzBackends   = 3
	fuzzMaxStreams = 3
	fuzzMaxOps     = 512
)

// Fuzz operations. An input is a sequence of (op, arg) byte pairs: the low
// three bits of op choose the operation, the next bits the stream slot; arg
// chooses a backend.
const (
	fzGet     = iota // check a stream out into the slot
	fzOpen           // request head parsed
	fzLink           // link to one of every backend ever made, retired ones included
	fzRelink         // safe retry
	fzUnlink         // response done or error
	fzFinish         // end of request
	fzRelease        // connection closed; the slot is emptied
	fzRetire         // replace a live backend by a new one: the old one is retired and drained
)

var fzNames = [...]string{"Get", "Open", "Link", "Relink", "Unlink", "Finish", "Release", "Retire"}

// fzSlot is one stream and the model of what it must be.
type fzSlot struct {
	s        *stream.Stream
	state    stream.State
	backend  *route.Backend // linked backend, nil unless Linked
	attempts int
	counted  bool
	gone     int // OnGone calls seen
	wantGone int // OnGone calls the model expects
}

type fuzzMachine struct {
	e     *env
	slots [fuzzStreams]fzSlot
	all   []*route.Backend // every backend ever made, in creation order
	live  [fuzzBackends]*route.Backend
	made  int
}

func newFuzzMachine(t testing.TB) *fuzzMachine {
	m := &fuzzMachine{e: newEnv(t, fuzzBackends, stream.Options{MaxStreams: fuzzMaxStreams, BufSize: 8})}
	m.all = append(m.all, m.e.bs...)
	copy(m.live[:], m.e.bs)
	m.made = fuzzBackends
	return m
}

// step applies one operation and returns the error that the model expects
// and the one the stream returned.
func (m *fuzzMachine) step(op, i int, arg byte) (want, got error) {
	sl := &m.slots[i]
	if op == fzRetire {
		m.retire(int(arg) % fuzzBackends)
		return nil, nil
	}
	if sl.s == nil {
		if op != fzGet {
			return nil, nil // nothing to drive
		}
		if m.e.pool.InUse() >= fuzzMaxStreams {
			want = stream.ErrPoolExhausted
		}
		s, err := m.e.pool.Get()
		if err == nil {
			*sl = fzSlot{s: s, state: stream.Idle}
		}
		return want, err
	}
	s := sl.s
	if s.State() != stream.Linked {
		// OnGone must be set before Link; Finish clears it.
		s.OnGone = func() { sl.gone++ }
	}
	switch op {
	case fzGet:
		return nil, nil // the slot is taken
	case fzOpen:
		want = m.expect(sl.state == stream.Idle, func() { sl.state, sl.counted = stream.Link, true })
		got = s.Open(t0)
	case fzLink:
		b := m.all[int(arg)%len(m.all)]
		switch {
		case sl.state != stream.Link:
			want = stream.ErrBadTransition
		case sl.attempts >= m.e.pool.MaxAttempts():
			want = stream.ErrAttemptsExhausted
		case b.Retired():
			want = stream.ErrBackendGone
		default:
			sl.state, sl.backend = stream.Linked, b
			sl.attempts++
		}
		got = s.Link(b, t0)
	case fzRelink:
		want = m.expect(sl.state == stream.Linked, func() { sl.state, sl.backend = stream.Link, nil })
		got = s.Relink()
	case fzUnlink:
		ok := sl.state == stream.Idle || sl.state == stream.Link || sl.state == stream.Linked
		want = m.expect(ok, func() { sl.state, sl.backend, sl.counted = stream.Unlinked, nil, true })
		got = s.Unlink()
	case fzFinish:
		if sl.state.IsOpen() {
			*sl = fzSlot{s: s, state: stream.Idle, gone: sl.gone, wantGone: sl.wantGone}
		}
		s.Finish(t0)
	case fzRelease:
		s.Release(t0)
		if err := s.CheckInvariants(); err != nil || s.State() != stream.Recycle {
			return nil, fmt.Errorf("after Release: state %s, %v", s.State(), err)
		}
		*sl = fzSlot{}
	}
	return want, got
}

// expect applies the model's change when the transition is allowed, and
// returns the error expected otherwise.
func (m *fuzzMachine) expect(allowed bool, apply func()) error {
	if !allowed {
		return stream.ErrBadTransition
	}
	apply()
	return nil
}

// retire replaces live backend k with a new one at a new address, which
// retires and drains k.
func (m *fuzzMachine) retire(k int) {
	old := m.live[k]
	for i := range m.slots {
		if m.slots[i].s != nil && m.slots[i].backend == old {
			m.slots[i].wantGone++
		}
	}
	g := m.e.reg.Begin()
	m.made++
	m.live[k] = g.Backend(fmt.Sprintf("10.1.%d.%d:80", m.made/256, m.made%256), "")
	for j, b := range m.live {
		if j != k {
			g.Backend(b.Addr(), "")
		}
	}
	g.Commit()
	m.all = append(m.all, m.live[k])
}

// check compares the pool with the model and checks the global invariants.
func (m *fuzzMachine) check() error {
	linked := make(map[*route.Backend]int)
	var counted, inUse int64
	for i := range m.slots {
		sl := &m.slots[i]
		if sl.s == nil {
			continue
		}
		inUse++
		s := sl.s
		if err := s.CheckInvariants(); err != nil {
			return fmt.Errorf("stream %d: %v", i, err)
		}
		if s.State() != sl.state || s.Backend() != sl.backend || s.Attempts() != sl.attempts || s.Counted() != sl.counted {
			return fmt.Errorf("stream %d: state %s backend %v attempts %d counted %v; model %s %v %d %v",
				i, s.State(), s.Backend(), s.Attempts(), s.Counted(), sl.state, sl.backend, sl.attempts, sl.counted)
		}
		if sl.gone != sl.wantGone {
			return fmt.Errorf("stream %d: OnGone ran %d times, want %d", i, sl.gone, sl.wantGone)
		}
		if s.Counted() {
			counted++
		}
		if b := s.Backend(); b != nil {
			linked[b]++
		}
	}
	active, opened, closed, err := m.e.gauge.snapshot()
	switch {
	case err != nil:
		return err
	case active != counted || int64(opened-closed) != active:
		return fmt.Errorf("gauge %d (opened %d closed %d), counted streams %d", active, opened, closed, counted)
	case int64(m.e.pool.InUse()) != inUse:
		return fmt.Errorf("pool InUse %d, streams not released %d", m.e.pool.InUse(), inUse)
	case m.e.pool.Index().Tokens() != len(linked):
		return fmt.Errorf("index holds %d tokens, %d backends have linked streams", m.e.pool.Index().Tokens(), len(linked))
	}
	for _, b := range m.all {
		if n := m.e.pool.Index().Len(b.Token()); n != linked[b] {
			return fmt.Errorf("index Len(%s) = %d, linked streams %d", b.Token(), n, linked[b])
		}
		if b.Active() != int64(linked[b]) {
			return fmt.Errorf("backend %s Active %d, linked streams %d", b.Token(), b.Active(), linked[b])
		}
	}
	return nil
}

// run decodes data into operations, applying and checking each.
func runTransitions(t *testing.T, data []byte) {
	m := newFuzzMachine(t)
	for n := 0; n+1 < len(data) && n/2 < fuzzMaxOps; n += 2 {
		op, i, arg := int(data[n]&7), int(data[n]>>3)%fuzzStreams, data[n+1]
		want, got := m.step(op, i, arg)
		if (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
			t.Fatalf("op %d: %s on stream %d (arg %d): err = %v, want %v", n/2, fzNames[op], i, arg, got, want)
		}
		if err := m.check(); err != nil {
			t.Fatalf("op %d: after %s on stream %d (arg %d): %v", n/2, fzNames[op], i, arg, err)
		}
	}
	for i := range m.slots {
		if m.slots[i].s != nil {
			m.slots[i].s.Release(t0)
			m.slots[i] = fzSlot{}
		}
	}
	if err := m.check(); err != nil {
		t.Fatalf("after releasing every stream: %v", err)
	}
	m.e.bs = m.all
	m.e.settled(t, -1)
}

// fz encodes operations for seeds: each is op, stream, arg.
func fz(ops ...[3]int) []byte {
	b := make([]byte, 0, 2*len(ops))
	for _, o := range ops {
		b = append(b, byte(o[0]|o[1]<<3), byte(o[2]))
	}
	return b
}

func FuzzTransitions(f *testing.F) {
	// A served request; a retried one up to exhaustion; Idle→Unlinked.
	f.Add(fz([3]int{fzGet, 0, 0}, [3]int{fzOpen, 0, 0}, [3]int{fzLink, 0, 1}, [3]int{fzUnlink, 0, 0}, [3]int{fzFinish, 0, 0}, [3]int{fzRelease, 0, 0}))
	f.Add(fz([3]int{fzGet, 1, 0}, [3]int{fzOpen, 1, 0}, [3]int{fzLink, 1, 0}, [3]int{fzRelink, 1, 0}, [3]int{fzLink, 1, 1},
		[3]int{fzRelink, 1, 0}, [3]int{fzLink, 1, 2}, [3]int{fzRelink, 1, 0}, [3]int{fzLink, 1, 0}, [3]int{fzFinish, 1, 0}))
	f.Add(fz([3]int{fzGet, 2, 0}, [3]int{fzUnlink, 2, 0}, [3]int{fzUnlink, 2, 0}, [3]int{fzOpen, 2, 0}, [3]int{fzFinish, 2, 0}, [3]int{fzRelease, 2, 0}))
	f.Fuzz(runTransitions)
}

// TestTransitionSequences runs the fuzz machine over fixed sequences, so
// that a plain go test covers it even without the seed corpus.
func TestTransitionSequences(t *testing.T) {
	for name, data := range map[string][]byte{
		"pool exhausted": fz([3]int{fzGet, 0, 0}, [3]int{fzGet, 1, 0}, [3]int{fzGet, 2, 0}, [3]int{fzGet, 3, 0},
			[3]int{fzRelease, 1, 0}, [3]int{fzGet, 3, 0}, [3]int{fzGet, 1, 0}),
		"retire while linked": fz([3]int{fzGet, 0, 0}, [3]int{fzOpen, 0, 0}, [3]int{fzLink, 0, 0}, [3]int{fzGet, 1, 0},
			[3]int{fzOpen, 1, 0}, [3]int{fzLink, 1, 0}, [3]int{fzRetire, 0, 0}, [3]int{fzRelink, 0, 0}, [3]int{fzLink, 0, 0},
			[3]int{fzLink, 0, 3}, [3]int{fzRetire, 0, 3}, [3]int{fzFinish, 1, 0}),
	} {
		t.Run(name, func(t *testing.T) { runTransitions(t, data) })
	}
}
