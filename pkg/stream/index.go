package stream

import (
	"sync"

	"github.com/kakehi/kakehi/pkg/route"
)

// Index maps a backend token to the streams linked to it, as an intrusive
// doubly linked list per token, so that linking and unlinking are O(1) and a
// departing backend's streams are found without scanning every stream.
// Invariant: a stream is in the index under token t iff it is Linked to the
// backend with token t.
type Index struct {
	mu    sync.Mutex
	heads map[route.Token]*Stream
	count map[route.Token]int
}

func newIndex() *Index {
	return &Index{heads: make(map[route.Token]*Stream), count: make(map[route.Token]int)}
}

// add inserts s under b's token and reports true, or reports false and
// changes nothing when b is retired. Checking Retired under the lock that
// Drain takes makes the pair atomic with respect to Drain: Commit marks a
// backend retired before its Drain, so a stream either is refused here or
// is in the list when Drain walks it.
func (x *Index) add(s *Stream, b *route.Backend) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if b.Retired() {
		return false
	}
	t := b.Token()
	head := x.heads[t]
	s.idxPrev, s.idxNext, s.idxToken, s.inIndex = nil, head, t, true
	if head != nil {
		head.idxPrev = s
	}
	x.heads[t] = s
	x.count[t]++
	return true
}

func (x *Index) remove(s *Stream) {
	x.mu.Lock()
	if s.inIndex {
		t := s.idxToken
		if s.idxPrev != nil {
			s.idxPrev.idxNext = s.idxNext
		} else {
			x.heads[t] = s.idxNext
		}
		if s.idxNext != nil {
			s.idxNext.idxPrev = s.idxPrev
		}
		if x.count[t]--; x.count[t] == 0 {
			delete(x.heads, t)
			delete(x.count, t)
		}
		s.idxPrev, s.idxNext, s.inIndex = nil, nil, false
	}
	x.mu.Unlock()
}

// tokenOf returns the token s is indexed under, and whether it is indexed.
func (x *Index) tokenOf(s *Stream) (route.Token, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return s.idxToken, s.inIndex
}

// Len returns how many streams are linked to token t.
func (x *Index) Len(t route.Token) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.count[t]
}

// Tokens returns how many tokens have at least one linked stream.
func (x *Index) Tokens() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.heads)
}

// Drain calls the OnGone hook of every stream linked to token t, under the
// index lock, and returns how many streams it reached. The hooks must not
// block or touch the index.
func (x *Index) Drain(t route.Token) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for s := x.heads[t]; s != nil; s = s.idxNext {
		if s.OnGone != nil {
			s.OnGone()
		}
		n++
	}
	return n
}
