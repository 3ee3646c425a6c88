package route

import "sync/atomic"

// Cluster is the set of endpoints behind one Service port, as one table sees
// it. Its identity and endpoint list are immutable; only the round-robin
// cursor moves.
type Cluster struct {
	// immutable after build:
	name     string     // "namespace/service:port"
	backends []*Backend // ready endpoints, sorted by address
	reason   string     // why there are no backends, when there are none
	protocol BackendProtocol

	// state:
	next atomic.Uint32
}

// NewCluster returns a cluster named name over backends. reason says why the
// cluster has no backends (for example "service default/web not found"); it is
// ignored when backends is not empty. The slice must not be modified after.
func NewCluster(name string, backends []*Backend, reason string) *Cluster {
	return &Cluster{name: name, backends: backends, reason: reason}
}

// WithProtocol sets the protocol the cluster's backends speak (from the
// Service port's appProtocol) and returns c. It must be called before the
// table holding c is published.
func (c *Cluster) WithProtocol(p BackendProtocol) *Cluster {
	c.protocol = p
	return c
}

// Protocol returns the protocol the backends speak; a Target's Policy may
// override it.
func (c *Cluster) Protocol() BackendProtocol { return c.protocol }

// Name returns "namespace/service:port".
func (c *Cluster) Name() string { return c.name }

// Backends returns the cluster's endpoints. The caller must not modify the
// slice.
func (c *Cluster) Backends() []*Backend { return c.backends }

// Reason returns why the cluster has no backends, or "".
func (c *Cluster) Reason() string { return c.reason }

// Pick returns the next live backend in round-robin order, skipping avoid
// (the backend of a failed previous attempt) when another one exists and
// skipping retired backends. It returns nil when the cluster has no live
// backend.
func (c *Cluster) Pick(avoid *Backend) *Backend {
	n := uint32(len(c.backends))
	if n == 0 {
		return nil
	}
	// Reduce the cursor before adding i, so that start+i cannot wrap
	// around uint32 and jump to an unrelated slot.
	start := (c.next.Add(1) - 1) % n
	var fallback *Backend
	for i := uint32(0); i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		b := c.backends[j]
		if b.Retired() {
			continue
		}
		if b == avoid {
			fallback = b
			continue
		}
		return b
	}
	return fallback
}
