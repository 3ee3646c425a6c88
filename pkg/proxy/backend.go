package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// staleCheckAfter is how long a pooled backend connection may sit idle
// before it is probed (a non-blocking peek) for a close by the backend
// before reuse. Younger connections are reused without a system call.
const staleCheckAfter = time.Second

// bconn is one connection to a backend endpoint. It is owned by one request
// at a time, or by its endpoint's pool while idle.
type bconn struct {
	nc     net.Conn
	raw    syscall.RawConn // nil when nc is not a *net.TCPConn
	tcp    *net.TCPConn    // nc, when it is one (for splice)
	b      *route.Backend
	since  time.Time // when it went idle
	reused bool      // taken from the pool for the current request
	rdl    deadline
	wdl    deadline
}

// read reads from the backend.
func (bc *bconn) read(p []byte) (int, error) { return bc.nc.Read(p) }

// endpointPool holds the idle connections of one endpoint, newest last.
type endpointPool struct {
	mu      sync.Mutex
	idle    []*bconn
	retired bool
}

// backendPools holds a bounded keep-alive pool per backend token.
type backendPools struct {
	m           sync.Map // route.Token → *endpointPool
	max         int
	idleTimeout time.Duration
	open        atomic.Int64 // connections open, busy or idle
	idle        atomic.Int64 // connections idle in pools
	closed      atomic.Bool  // the server stopped: nothing is pooled any more
}

func (p *backendPools) pool(b *route.Backend) *endpointPool {
	if v, ok := p.m.Load(b.Token()); ok {
		return v.(*endpointPool)
	}
	v, _ := p.m.LoadOrStore(b.Token(), &endpointPool{})
	return v.(*endpointPool)
}

// get returns an idle connection to b that still looks open, or nil. A
// connection idle for over staleCheckAfter, or any connection when probe
// is set (the request could not be replayed if the backend had closed
// it), is first probed for a close by the backend.
func (p *backendPools) get(b *route.Backend, now time.Time, probe bool) *bconn {
	ep := p.pool(b)
	for {
		ep.mu.Lock()
		n := len(ep.idle)
		if n == 0 {
			ep.mu.Unlock()
			return nil
		}
		bc := ep.idle[n-1]
		ep.idle[n-1] = nil
		ep.idle = ep.idle[:n-1]
		ep.mu.Unlock()
		p.idle.Add(-1)
		age := now.Sub(bc.since)
		if age > p.idleTimeout || ((probe || age > staleCheckAfter) && !peekOpen(bc.raw)) {
			p.close(bc)
			continue
		}
		bc.reused = true
		return bc
	}
}

// put returns bc to its endpoint's pool, or closes it when the pool is full
// or the endpoint has been retired.
func (p *backendPools) put(bc *bconn, now time.Time) {
	if bc.b.Retired() || p.closed.Load() {
		p.close(bc)
		return
	}
	ep := p.pool(bc.b)
	ep.mu.Lock()
	if ep.retired || len(ep.idle) >= p.max {
		ep.mu.Unlock()
		p.close(bc)
		return
	}
	bc.since = now
	bc.reused = false
	ep.idle = append(ep.idle, bc)
	ep.mu.Unlock()
	p.idle.Add(1)
	if p.closed.Load() { // the server stopped meanwhile: its reap may have missed bc
		p.reap(now, true)
	}
}

// close closes a connection that is not in a pool.
func (p *backendPools) close(bc *bconn) {
	_ = bc.nc.Close()
	p.open.Add(-1)
}

// retire closes b's idle connections and forgets its pool; connections
// still in use are closed when they come back.
func (p *backendPools) retire(b *route.Backend) {
	v, ok := p.m.LoadAndDelete(b.Token())
	if !ok {
		return
	}
	ep := v.(*endpointPool)
	ep.mu.Lock()
	idle := ep.idle
	ep.idle, ep.retired = nil, true
	ep.mu.Unlock()
	for _, bc := range idle {
		p.idle.Add(-1)
		p.close(bc)
	}
}

// reap closes connections idle for longer than the idle timeout, or all of
// them when all is set.
func (p *backendPools) reap(now time.Time, all bool) {
	p.m.Range(func(_, v any) bool {
		ep := v.(*endpointPool)
		var expired []*bconn
		ep.mu.Lock()
		keep := ep.idle[:0]
		for _, bc := range ep.idle {
			if all || now.Sub(bc.since) > p.idleTimeout {
				expired = append(expired, bc)
			} else {
				keep = append(keep, bc)
			}
		}
		for i := len(keep); i < len(ep.idle); i++ {
			ep.idle[i] = nil
		}
		ep.idle = keep
		ep.mu.Unlock()
		for _, bc := range expired {
			p.idle.Add(-1)
			p.close(bc)
		}
		return true
	})
}

// dial opens a connection to b within timeout.
func (p *backendPools) dial(b *route.Backend, timeout time.Duration) (*bconn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.Dial("tcp", b.Addr())
	if err != nil {
		return nil, err
	}
	p.open.Add(1)
	bc := &bconn{nc: nc, b: b}
	if tc, ok := nc.(*net.TCPConn); ok {
		bc.raw, _ = tc.SyscallConn()
		bc.tcp = tc
	}
	return bc, nil
}
