package route

import (
	"hash/maphash"
	"math/rand/v2"
	"time"
)

// Balance is how a Cluster picks a backend for a request.
type Balance uint8

const (
	// RoundRobin cycles through the live backends.
	RoundRobin Balance = iota
	// LeastRequest picks the less loaded of two backends chosen at random
	// (power of two choices), by Backend.Active.
	LeastRequest
	// ConsistentHash maps a request key (a header, a cookie or the client
	// address, see HashOn) to a backend by rendezvous hashing, so a key
	// stays on one backend while that backend lives and only the keys of a
	// departed backend move.
	ConsistentHash
)

// HashOn says which part of a request is the ConsistentHash key.
type HashOn uint8

const (
	HashNone       HashOn = iota
	HashHeader            // Policy.HashName is a header name
	HashCookie            // Policy.HashName is a cookie name
	HashClientAddr        // the client's IP address
)

// BackendProtocol is the protocol spoken to backends.
type BackendProtocol uint8

const (
	ProtocolHTTP1 BackendProtocol = iota
	ProtocolH2C
)

// RetryOn is a set of conditions under which a request may be retried on
// another backend; the proxy never retries once request bytes that cannot
// be replayed reached a backend.
type RetryOn uint8

const (
	RetryConnectFailure RetryOn = 1 << iota
	RetryRefusedStream
	RetryResetBeforeResponse
	RetryStatus502
	RetryStatus503
	RetryStatus504
	// RetryDefault is what applies without a policy: failures that prove
	// the backend never saw the request.
	RetryDefault = RetryConnectFailure | RetryRefusedStream | RetryResetBeforeResponse
)

// Has reports whether c is in the set.
func (r RetryOn) Has(c RetryOn) bool { return r&c != 0 }

// Policy is the per-route behaviour a RoutePolicy sets. Zero fields mean
// the proxy's defaults (its flags). A Policy is immutable once in a table.
type Policy struct {
	Source string // "namespace/name" of the RoutePolicy, for logs

	ConnectTimeout  time.Duration // 0: default
	RequestTimeout  time.Duration // backend response-head timeout; 0: default
	IdleTimeout     time.Duration // body idle timeout; 0: default
	MaxAttempts     int           // 0: default
	RetryOn         RetryOn       // 0: RetryDefault
	Balance         Balance
	HashOn          HashOn
	HashName        string        // header or cookie name for HashOn
	AffinityCookie  string        // sticky-session cookie name; "" off
	AffinityTTL     time.Duration // 0: a session cookie
	MaxRequestBody  int64         // -1: default; 0: no limit
	BackendProtocol BackendProtocol
}

// Retries returns the retry conditions, defaulted.
func (p *Policy) Retries() RetryOn {
	if p == nil || p.RetryOn == 0 {
		return RetryDefault
	}
	return p.RetryOn
}

var hashSeed = maphash.MakeSeed()

// PickHashed returns the live backend with the highest rendezvous score
// for key, never avoid when another live one exists; nil when none is live.
// The same key picks the same backend in every table of the process.
func (c *Cluster) PickHashed(key string, avoid *Backend) *Backend {
	var best, fallback *Backend
	var bestScore uint64
	for _, b := range c.backends {
		if b.Retired() {
			continue
		}
		if b == avoid {
			fallback = b
			continue
		}
		var h maphash.Hash
		h.SetSeed(hashSeed)
		h.WriteString(key)
		h.WriteByte(0)
		h.WriteString(b.addr)
		if s := h.Sum64(); best == nil || s > bestScore {
			best, bestScore = b, s
		}
	}
	if best == nil {
		return fallback
	}
	return best
}

// PickLeastRequest returns the less loaded (Backend.Active) of two
// distinct backends drawn at random (power of two choices). A drawn backend
// that is retired, or is avoid, is replaced by a round-robin pick.
func (c *Cluster) PickLeastRequest(avoid *Backend) *Backend {
	n := len(c.backends)
	if n < 2 {
		return c.Pick(avoid)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := c.usable(c.backends[i], avoid), c.usable(c.backends[j], avoid)
	if a == nil || b == nil {
		return nil
	}
	if b.Active() < a.Active() {
		return b
	}
	return a
}

// usable returns b when it is live and not avoid, else a round-robin pick.
func (c *Cluster) usable(b, avoid *Backend) *Backend {
	if b.Retired() || b == avoid {
		return c.Pick(avoid)
	}
	return b
}

// StickyKey returns the value a sticky-session cookie carries for b: a
// hash of its address, the same in every replica and every table, that does
// not reveal the pod address.
func (b *Backend) StickyKey() string { return b.sticky }

// BySticky returns the live backend whose StickyKey is key, or nil.
func (c *Cluster) BySticky(key string) *Backend {
	for _, b := range c.backends {
		if b.sticky == key && !b.Retired() {
			return b
		}
	}
	return nil
}
