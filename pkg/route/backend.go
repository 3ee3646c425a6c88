package route

import (
	"hash/fnv"
	"strconv"
	"sync/atomic"
)

// Token identifies one backend endpoint (a pod address and port) for the
// life of the process. A Token is assigned once by a Registry and never
// reused, so a stream linked to a token can always be traced to exactly one
// endpoint, even after that endpoint has left the route table.
type Token uint64

// String formats the token as a decimal number.
func (t Token) String() string { return strconv.FormatUint(uint64(t), 10) }

// Backend is one pod endpoint. Its identity (Token, Addr) is immutable; its
// state is a set of atomics shared by every table that references it, so
// counters survive table swaps. A Backend is created and retired only by a
// Registry.
type Backend struct {
	// immutable after creation:
	token  Token
	addr   string // "ip:port", IPv6 in brackets
	pod    string // "namespace/pod" when known, else ""
	sticky string // see StickyKey

	// state, shared across tables:
	active   atomic.Int64  // requests currently linked
	requests atomic.Uint64 // links ever made
	failures atomic.Uint64 // connect or transport failures
	retired  atomic.Bool   // left the registry; never pick it again
	gone     chan struct{} // closed when retired
}

// Token returns the backend's process-unique token.
func (b *Backend) Token() Token { return b.token }

// Addr returns the dialable "ip:port" address of the endpoint.
func (b *Backend) Addr() string { return b.addr }

// Pod returns "namespace/name" of the pod behind the endpoint, or "" when
// the EndpointSlice did not name one.
func (b *Backend) Pod() string { return b.pod }

// Active returns the number of streams currently linked to the backend.
func (b *Backend) Active() int64 { return b.active.Load() }

// Requests returns how many times a stream was linked to the backend.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures returns how many failures were recorded against the backend.
func (b *Backend) Failures() uint64 { return b.failures.Load() }

// Retired reports whether the backend has left the registry. A retired
// backend is never picked for a new request.
func (b *Backend) Retired() bool { return b.retired.Load() }

// Gone returns a channel that is closed when the backend is retired. Streams
// linked to the backend watch it to drain and end.
func (b *Backend) Gone() <-chan struct{} { return b.gone }

// Acquire records that a stream linked to the backend. Every Acquire must be
// matched by exactly one Release.
func (b *Backend) Acquire() {
	b.active.Add(1)
	b.requests.Add(1)
}

// Release records that a stream unlinked from the backend.
func (b *Backend) Release() { b.active.Add(-1) }

// RecordFailure counts a connect or transport failure against the backend.
func (b *Backend) RecordFailure() { b.failures.Add(1) }

// stickyKey hashes addr into the sticky-session cookie value.
func stickyKey(addr string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(addr))
	return strconv.FormatUint(h.Sum64(), 36)
}
