package route

import "sync/atomic"

// Store publishes the current Table to the proxy. Readers call Load once per
// request and use that table for the whole request; a writer replaces the
// table with one atomic swap. The zero Store holds no table.
type Store struct {
	cur       atomic.Pointer[Table]
	published chan struct{}
	init      atomic.Bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{published: make(chan struct{})} }

// Load returns the current table, or nil before the first Publish.
func (s *Store) Load() *Table { return s.cur.Load() }

// Publish makes t the current table. The first Publish closes Published.
func (s *Store) Publish(t *Table) {
	s.cur.Store(t)
	if s.init.CompareAndSwap(false, true) {
		close(s.published)
	}
}

// Published returns a channel closed once the first table is published.
func (s *Store) Published() <-chan struct{} { return s.published }
