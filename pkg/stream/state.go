// Package stream holds the per-request Stream: its state machine, its pooled
// front and back buffers, its per-request context and metrics, and the
// reverse index from backend token to linked streams. LIFECYCLE.md beside
// this file says who moves each transition.
package stream

import "strconv"

// State is where a Stream is in its life. The payload that Sozu carries in
// Linked(token) is the Stream's backend field: it is set iff the state is
// Linked.
type State uint8

const (
	// Idle is a stream checked out of the pool with no request yet.
	Idle State = iota
	// Link is a stream whose request head was parsed and that waits for a
	// backend (first try, or again after a safe retry).
	Link
	// Linked is a stream attached to one backend endpoint by token.
	Linked
	// Unlinked is a stream detached from its backend; its final or error
	// response may still be flushing to the client.
	Unlinked
	// Recycle is a stream returned to the pool.
	Recycle
)

var stateNames = [...]string{"Idle", "Link", "Linked", "Unlinked", "Recycle"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// IsOpen reports whether the state is between Idle and Recycle, i.e. a
// request is in progress.
func (s State) IsOpen() bool { return s == Link || s == Linked || s == Unlinked }
