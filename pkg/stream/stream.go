package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// Errors returned by transitions.
var (
	// ErrAttemptsExhausted is returned by Link when the stream has already
	// been linked MaxAttempts times; the proxy answers 503.
	ErrAttemptsExhausted = errors.New("stream: backend attempts exhausted")
	// ErrBadTransition is returned when a transition is not allowed from the
	// stream's current state. It is a bug in the caller.
	ErrBadTransition = errors.New("stream: transition not allowed")
	// ErrBackendGone is returned by Link when the backend was retired from
	// the registry before the link was made: the Index may already have
	// drained it, so nobody would tell this stream that the pod left. The
	// stream stays in Link with its attempts unchanged; the proxy picks
	// another backend.
	ErrBackendGone = errors.New("stream: backend retired")
)

// Context is what the access log reports about one request. The proxy
// fills it while it owns the stream.
type Context struct {
	Method     string
	Authority  string
	Path       string
	Proto      string
	UserAgent  string
	RequestID  string
	ClientAddr string
	Namespace  string
	Ingress    string
	Service    string
	Status     int
	// Cause names why the proxy answered by itself or aborted ("" when the
	// backend answered), e.g. "no_route", "connect_failed".
	Cause string
}

// Metrics are the stream's byte counts and times.
type Metrics struct {
	Start        time.Time // Open
	BackendStart time.Time // first Link of the current request
	BackendEnd   time.Time // response head received from the backend
	End          time.Time // Finish
	BytesIn      int64     // request body bytes read from the client
	BytesOut     int64     // response body bytes written to the client
}

// Stream is one request's state. It is owned by a single goroutine at a
// time (the connection's), except that Index may call the OnGone hook from
// another goroutine.
type Stream struct {
	// owned by the pool:
	pool *Pool

	// owned by the request goroutine:
	state    State
	backend  *route.Backend // set iff state == Linked
	last     *route.Backend // backend of the previous attempt, for Pick's avoid
	attempts uint8
	counted  bool // the active gauge holds +1 for this stream

	// Front and Back are the stream's pooled buffers (request side and
	// response side), each Pool.BufSize bytes. They stay valid until the
	// stream is returned with Release.
	Front, Back []byte

	Ctx     Context
	Metrics Metrics

	// OnGone, when set, is called by Index.Drain when the linked backend
	// leaves the table. It runs on another goroutine, under the index lock,
	// and must be safe for that: it must not block and must not call the
	// stream's transitions (typically it cancels a context or sets a
	// deadline on the backend connection). Set it before Link and do not
	// change it while the stream is Linked; Finish clears it.
	OnGone func()

	// index bookkeeping (guarded by Index.mu):
	idxPrev, idxNext *Stream
	idxToken         route.Token
	inIndex          bool
}

// State returns the stream's state.
func (s *Stream) State() State { return s.state }

// Backend returns the linked backend, or nil when the stream is not Linked.
func (s *Stream) Backend() *route.Backend { return s.backend }

// LastBackend returns the backend of the most recent link of this request,
// linked or not; nil before the first link.
func (s *Stream) LastBackend() *route.Backend { return s.last }

// Attempts returns how many times the current request was linked.
func (s *Stream) Attempts() int { return int(s.attempts) }

// Counted reports whether the stream is counted in the active gauge.
func (s *Stream) Counted() bool { return s.counted }

// Open moves Idle → Link: the request head was parsed. It counts the stream
// in the active gauge exactly once.
func (s *Stream) Open(now time.Time) error {
	if s.state != Idle {
		return s.bad("Open")
	}
	s.state = Link
	s.Metrics.Start = now
	s.counted = true
	s.pool.obs.Opened(s)
	return nil
}

// Link moves Link → Linked(b): the request is attached to backend b. It
// fails with ErrAttemptsExhausted, leaving the stream in Link, once the
// request has been linked MaxAttempts times, and with ErrBackendGone,
// leaving the stream in Link without counting an attempt, when b has been
// retired (see ErrBackendGone). A nil b is an ErrBadTransition.
func (s *Stream) Link(b *route.Backend, now time.Time) error {
	if s.state != Link {
		return s.bad("Link")
	}
	if b == nil {
		return fmt.Errorf("%w: Link to a nil backend", ErrBadTransition)
	}
	if int(s.attempts) >= s.pool.maxAttempts {
		return ErrAttemptsExhausted
	}
	// The retired check and the insertion are one step under the index
	// lock, so a backend is either refused here or seen by Drain.
	if !s.pool.index.add(s, b) {
		return ErrBackendGone
	}
	s.attempts++
	if s.attempts == 1 {
		s.Metrics.BackendStart = now
	}
	s.state = Linked
	s.backend = b
	s.last = b
	b.Acquire()
	return nil
}

// Relink moves Linked → Link after a failure that is safe to retry: no
// request byte reached the backend and no response came. The caller decides
// that; Relink only records it.
func (s *Stream) Relink() error {
	if s.state != Linked {
		return s.bad("Relink")
	}
	s.detach()
	s.state = Link
	return nil
}

// Unlink moves Link, Linked or Idle → Unlinked: the request is done with
// its backend (or never had one) and the final response may still be
// flushing. From Idle (a request answered before its head was parsed: 400,
// 408) Unlink counts the stream as Open does, so that Finish reports it to
// the Observer once like any other request; the caller may set
// Metrics.Start before calling it.
func (s *Stream) Unlink() error {
	switch s.state {
	case Linked:
		s.detach()
	case Link:
	case Idle:
		s.state = Unlinked
		s.counted = true
		s.pool.obs.Opened(s)
		return nil
	default:
		return s.bad("Unlink")
	}
	s.state = Unlinked
	return nil
}

func (s *Stream) detach() {
	s.pool.index.remove(s)
	s.backend.Release()
	s.backend = nil
}

// Finish ends the request: an open stream is unlinked if needed, the access
// log record is emitted and the gauge decremented exactly once, and the
// stream returns to Idle for the next request on a keep-alive connection
// (attempts reset, context cleared, buffers kept). Finish on an Idle stream
// that was never opened, or on a released (Recycle) stream, does nothing.
func (s *Stream) Finish(now time.Time) {
	if !s.state.IsOpen() {
		return
	}
	if s.state == Linked || s.state == Link {
		_ = s.Unlink()
	}
	if s.counted {
		s.Metrics.End = now
		s.counted = false
		s.pool.obs.Closed(s)
	}
	s.reset()
}

func (s *Stream) reset() {
	s.state = Idle
	s.attempts = 0
	s.last = nil
	s.OnGone = nil
	s.Ctx = Context{}
	s.Metrics = Metrics{}
}

// Release finishes the stream if it is still open and returns it, with its
// buffers, to the pool (→ Recycle). The stream must not be used after: the
// pool may hand it to another request at once. A second Release before any
// Get is ignored, so that capacity is never returned twice.
func (s *Stream) Release(now time.Time) {
	if s.state == Recycle {
		return
	}
	s.Finish(now)
	s.reset() // also clears what was set on a never-opened Idle stream
	s.state = Recycle
	s.pool.put(s)
}

func (s *Stream) bad(op string) error {
	return fmt.Errorf("%w: %s from %s", ErrBadTransition, op, s.state)
}

// CheckInvariants returns an error describing the first broken invariant:
// the state is a known one; backend set iff Linked; in the index iff
// Linked, under the linked backend's token; counted iff the state is open
// (Link, Linked, Unlinked), so Idle and Recycle are never counted;
// attempts within [0, MaxAttempts], at least 1 when Linked and 0 when Idle
// or Recycle; the last backend is the linked one when Linked and nil when
// Idle or Recycle. It is meant for tests and must be called by the
// stream's owner.
func (s *Stream) CheckInvariants() error {
	linked := s.state == Linked
	tok, inIndex := s.pool.index.tokenOf(s)
	switch {
	case s.state > Recycle:
		return fmt.Errorf("unknown state %s", s.state)
	case linked != (s.backend != nil):
		return fmt.Errorf("state %s but backend set=%v", s.state, s.backend != nil)
	case linked != inIndex:
		return fmt.Errorf("state %s but in index=%v", s.state, inIndex)
	case linked && tok != s.backend.Token():
		return fmt.Errorf("linked to token %s but indexed under %s", s.backend.Token(), tok)
	case s.state.IsOpen() != s.counted:
		return fmt.Errorf("state %s but counted=%v", s.state, s.counted)
	case int(s.attempts) > s.pool.maxAttempts:
		return fmt.Errorf("attempts %d > max %d", s.attempts, s.pool.maxAttempts)
	case linked && (s.attempts == 0 || s.last != s.backend):
		return fmt.Errorf("linked with attempts %d, last backend is linked one=%v", s.attempts, s.last == s.backend)
	case !s.state.IsOpen() && (s.attempts != 0 || s.last != nil):
		return fmt.Errorf("state %s but attempts %d, last backend set=%v", s.state, s.attempts, s.last != nil)
	}
	return nil
}
