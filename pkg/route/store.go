package route

import (
	"sync"
	"sync/atomic"
)

// Store publishes the current Table to the proxy. Readers call Load once per
// request and use that table for the whole request; a writer replaces the
// table with one atomic swap. The zero Store is ready to use and holds no
// table. A Store must not be copied after first use.
type Store struct {
	cur       atomic.Pointer[Table]
	once      sync.Once // makes published, so that the zero Store works
	published chan struct{}
	init      atomic.Bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{} }

// Load returns the current table, or nil before the first Publish.
func (s *Store) Load() *Table { return s.cur.Load() }

// Publish makes t the current table. The first Publish closes Published;
// later ones only swap the pointer.
func (s *Store) Publish(t *Table) {
	s.cur.Store(t)
	if s.init.CompareAndSwap(false, true) {
		close(s.ch())
	}
}

// Published returns a channel closed once the first table is published.
func (s *Store) Published() <-chan struct{} { return s.ch() }

func (s *Store) ch() chan struct{} {
	s.once.Do(func() { s.published = make(chan struct{}) })
	return s.published
}
