//go:build !race

// The race detector allocates on its own, so allocation budgets are checked
// in the non-race run (make unit runs both).

package proxy

import (
	"io"
	"testing"
)

// TestForwardPathDoesNotAllocate holds the issue-3 budget (≤ 2 allocations
// per request; we are at 0) over the whole keep-alive forward path on
// loopback sockets: parse, route, rewrite, pooled backend connection,
// response, metrics and access log. The client and backend allocate
// nothing per request, so every allocation counted is the proxy's; the
// average over many requests absorbs the runtime's occasional own.
func TestForwardPathDoesNotAllocate(t *testing.T) {
	h := newHarnessWith(t, io.Discard)
	be := startBackend(t, "bench", benchBackend)
	h.route(rule{host: "bench.example", path: "/", service: "bench", addrs: []string{be.addr}})
	c := newBenchClient(t, h.addr)
	defer c.nc.Close()
	for i := 0; i < 100; i++ {
		c.do(t) // warm: pooled backend connection, buffers, timers
	}
	if got := testing.AllocsPerRun(2000, func() { c.do(t) }); got > 0.5 {
		t.Errorf("%.2f allocations per proxied request, want 0 (budget 2)", got)
	}
}
