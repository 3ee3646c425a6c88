package stream

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
)

// ErrPoolExhausted is returned by Pool.Get when every stream is in use. The
// proxy answers 503 with Retry-After (or, on HTTP/2, refuses the stream).
var ErrPoolExhausted = errors.New("stream: pool exhausted")

// Observer is told when a stream is counted and when it ends. Opened and
// Closed are called exactly once each per request that left Idle; Closed
// receives the stream with its final Context and Metrics, which it must copy
// if it keeps them.
type Observer interface {
	Opened(s *Stream)
	Closed(s *Stream)
}

// ObserverFuncs adapts two functions to Observer; nil functions are skipped.
type ObserverFuncs struct {
	OnOpened func(*Stream)
	OnClosed func(*Stream)
}

// Opened calls OnOpened when set.
func (o ObserverFuncs) Opened(s *Stream) {
	if o.OnOpened != nil {
		o.OnOpened(s)
	}
}

// Closed calls OnClosed when set.
func (o ObserverFuncs) Closed(s *Stream) {
	if o.OnClosed != nil {
		o.OnClosed(s)
	}
}

// Options configure a Pool.
type Options struct {
	// MaxStreams bounds the streams in use at once (default 10000).
	MaxStreams int
	// BufSize is the size of each of a stream's two buffers (default 16 KiB).
	BufSize int
	// MaxAttempts bounds Link calls per request (default 3, at most 255).
	MaxAttempts int
	// Observer receives Opened and Closed (default: none).
	Observer Observer
}

// Pool is a bounded pool of streams and their buffers. Get never allocates
// beyond MaxStreams streams in use.
type Pool struct {
	max         int64
	bufSize     int
	maxAttempts int
	obs         Observer
	index       *Index

	inUse atomic.Int64
	free  sync.Pool
}

// NewPool returns a pool configured by o.
func NewPool(o Options) *Pool {
	if o.MaxStreams <= 0 {
		o.MaxStreams = 10000
	}
	if o.BufSize <= 0 {
		o.BufSize = 16 << 10
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.MaxAttempts > math.MaxUint8 {
		o.MaxAttempts = math.MaxUint8 // Stream.attempts is a uint8
	}
	if o.Observer == nil {
		o.Observer = ObserverFuncs{}
	}
	p := &Pool{max: int64(o.MaxStreams), bufSize: o.BufSize, maxAttempts: o.MaxAttempts, obs: o.Observer, index: newIndex()}
	p.free.New = func() any {
		return &Stream{pool: p, Front: make([]byte, p.bufSize), Back: make([]byte, p.bufSize)}
	}
	return p
}

// Get checks a stream out of the pool, in state Idle with both buffers
// BufSize bytes long. It returns ErrPoolExhausted, changing nothing, when
// MaxStreams are in use.
func (p *Pool) Get() (*Stream, error) {
	// A compare-and-swap loop, not Add then undo: a refused Get must not
	// move InUse even for a moment, or a concurrent Get could be refused
	// while capacity is free.
	for {
		n := p.inUse.Load()
		if n >= p.max {
			return nil, ErrPoolExhausted
		}
		if p.inUse.CompareAndSwap(n, n+1) {
			break
		}
	}
	s := p.free.Get().(*Stream)
	s.state = Idle
	s.Front = p.restore(s.Front)
	s.Back = p.restore(s.Back)
	return s, nil
}

// restore gives back a full-length buffer after the previous owner may have
// resliced it.
func (p *Pool) restore(b []byte) []byte {
	if cap(b) < p.bufSize {
		return make([]byte, p.bufSize)
	}
	return b[:p.bufSize]
}

func (p *Pool) put(s *Stream) {
	p.free.Put(s)
	p.inUse.Add(-1)
}

// InUse returns the number of streams checked out.
func (p *Pool) InUse() int { return int(p.inUse.Load()) }

// Cap returns MaxStreams.
func (p *Pool) Cap() int { return int(p.max) }

// BufSize returns the size of each stream buffer.
func (p *Pool) BufSize() int { return p.bufSize }

// MaxAttempts returns the bound on links per request.
func (p *Pool) MaxAttempts() int { return p.maxAttempts }

// Index returns the pool's reverse index from backend token to the streams
// linked to it.
func (p *Pool) Index() *Index { return p.index }
