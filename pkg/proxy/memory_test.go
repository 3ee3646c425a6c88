package proxy

import (
	"io"
	"runtime"
	"testing"
	"time"
)

// TestIdleConnectionMemory opens keep-alive connections, serves one
// request on each, lets them idle, and measures the heap and stack memory
// they hold: an idle connection must hold no stream buffers (target ≤ 8 KiB
// per connection; the client ends of the sockets, in the same process, are
// counted too).
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement (not under -race or -short)")
	}
	h := newHarnessWith(t, io.Discard)
	be := startBackend(t, "bench", benchBackend)
	h.route(rule{host: "bench.example", path: "/", service: "bench", addrs: []string{be.addr}})
	newBenchClient(t, h.addr).do(t) // warm the backend pool and the first buffers
	before := memInUse()
	const n = 500
	conns := make([]*benchClient, n)
	for i := range conns {
		conns[i] = newBenchClient(t, h.addr)
		conns[i].buf = conns[0].buf // one read buffer for all clients
		conns[i].do(t)
	}
	waitFor(t, "streams back in the pool", 5*time.Second, func() bool { return h.srv.Pool().InUse() == 0 })
	after := memInUse()
	per := (int64(after) - int64(before)) / n
	t.Logf("memory per idle client connection: %d bytes (heap+stack, both socket ends)", per)
	if per > 8<<10 {
		t.Errorf("%d bytes per idle connection, want at most 8 KiB", per)
	}
	for _, c := range conns {
		c.nc.Close()
	}
}

func memInUse() uint64 {
	var m runtime.MemStats
	for i := 0; i < 4; i++ { // stacks shrink by half per GC
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
