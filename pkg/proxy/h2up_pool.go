package proxy

//lint:file-ignore SA1019 x/net/http2's ClientConn is deprecated for net/http's, which dials by itself and hides the reset codes (StreamError) that retries and RST relay need; see H2.md.

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/kakehi/kakehi/pkg/route"
)

// h2cMaxConnsPerEndpoint bounds the HTTP/2 connections to one h2c backend
// endpoint. Each carries up to the backend's MAX_CONCURRENT_STREAMS
// exchanges; past that, exchanges wait for a stream slot on the least
// loaded connection.
const h2cMaxConnsPerEndpoint = 4

// errH2CGone is returned for an endpoint retired, or a server stopped,
// while a connection was being picked.
var errH2CGone = errors.New("proxy: h2c backend gone")

// h2cConn is one HTTP/2 connection (prior knowledge) to a backend
// endpoint, shared by the exchanges that use it.
type h2cConn struct {
	cc    *http2.ClientConn
	ep    *h2cEndpoint
	busy  int       // exchanges using cc (ep.mu)
	since time.Time // when busy last dropped to 0 (ep.mu)
}

// h2cEndpoint holds the connections to one endpoint.
type h2cEndpoint struct {
	mu      sync.Mutex
	dialed  sync.Cond // a dial ended
	conns   []*h2cConn
	dialing int
	retired bool
}

// h2cPools holds a bounded set of HTTP/2 connections per h2c backend token.
type h2cPools struct {
	m           sync.Map // route.Token → *h2cEndpoint
	t           *http2.Transport
	max         int
	idleTimeout time.Duration
	open        atomic.Int64 // connections open
	closed      atomic.Bool  // the server stopped
}

// init prepares the pools for the options o.
func (p *h2cPools) init(o *Options) {
	p.max = h2cMaxConnsPerEndpoint
	p.idleTimeout = o.BackendIdleTimeout
	p.t = &http2.Transport{
		AllowHTTP:          true,
		DisableCompression: true, // bodies pass through as they are
		// Wait for a stream slot rather than fail when a connection is
		// at the backend's MAX_CONCURRENT_STREAMS; acquire prefers a
		// connection with room.
		StrictMaxConcurrentStreams: true,
		MaxHeaderListSize:          uint32(o.H2MaxHeaderListSize),
	}
}

func (p *h2cPools) endpoint(b *route.Backend) *h2cEndpoint {
	if v, ok := p.m.Load(b.Token()); ok {
		return v.(*h2cEndpoint)
	}
	ep := &h2cEndpoint{}
	ep.dialed.L = &ep.mu
	v, _ := p.m.LoadOrStore(b.Token(), ep)
	return v.(*h2cEndpoint)
}

// acquire returns a connection to b for one exchange: the usable one with
// the most free stream slots, a new one while the endpoint has fewer than
// max, or else the least loaded (waiting for the dials in progress when
// there is none yet). fresh reports a new connection.
func (p *h2cPools) acquire(b *route.Backend, timeout time.Duration) (hc *h2cConn, fresh bool, err error) {
	ep := p.endpoint(b)
	ep.mu.Lock()
	for {
		if ep.retired || p.closed.Load() {
			ep.mu.Unlock()
			return nil, false, errH2CGone
		}
		p.closeIdleLocked(ep, time.Now(), false)
		best, bestRoom := ep.leastLoadedLocked()
		full := len(ep.conns)+ep.dialing >= p.max
		if best != nil && (bestRoom > 0 || full && ep.dialing == 0) {
			best.busy++
			ep.mu.Unlock()
			return best, false, nil
		}
		if !full {
			break
		}
		if ep.dialing == 0 {
			ep.mu.Unlock()
			return nil, false, errH2CGone // every connection is going away
		}
		ep.dialed.Wait() // bounded by the dial timeout
	}
	ep.dialing++
	ep.mu.Unlock()
	hc, err = p.dial(ep, b, timeout)
	ep.mu.Lock()
	ep.dialing--
	ep.dialed.Broadcast()
	if err == nil && (ep.retired || p.closed.Load()) {
		p.closeConn(hc)
		hc, err = nil, errH2CGone
	}
	if err == nil {
		hc.busy = 1
		ep.conns = append(ep.conns, hc)
	}
	ep.mu.Unlock()
	return hc, err == nil, err
}

// leastLoadedLocked returns the usable connection with the most free
// stream slots, and how many it has.
func (ep *h2cEndpoint) leastLoadedLocked() (*h2cConn, int) {
	var best *h2cConn
	bestRoom := 0
	for _, c := range ep.conns {
		if !c.cc.CanTakeNewRequest() {
			continue
		}
		room := int(c.cc.State().MaxConcurrentStreams) - c.busy
		if best == nil || room > bestRoom {
			best, bestRoom = c, room
		}
	}
	return best, bestRoom
}

// dial opens an HTTP/2 connection with prior knowledge to b.
func (p *h2cPools) dial(ep *h2cEndpoint, b *route.Backend, timeout time.Duration) (*h2cConn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	nc, err := d.Dial("tcp", b.Addr())
	if err != nil {
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Now().Add(timeout)) // the preface
	cc, err := p.t.NewClientConn(nc)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	// A PING round trip: the backend's SETTINGS (MAX_CONCURRENT_STREAMS)
	// are known before acquire counts this connection's room, and a
	// backend that does not speak HTTP/2 fails here, not on a request.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err = cc.Ping(ctx)
	cancel()
	if err != nil {
		_ = cc.Close()
		return nil, err
	}
	_ = nc.SetWriteDeadline(time.Time{})
	p.open.Add(1)
	return &h2cConn{cc: cc, ep: ep}, nil
}

// release ends one exchange on hc; a connection that can take no more
// requests, or whose endpoint or server is gone, closes once idle.
func (p *h2cPools) release(hc *h2cConn, now time.Time) {
	ep := hc.ep
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if hc.busy--; hc.busy > 0 {
		return
	}
	hc.since = now
	if ep.retired || p.closed.Load() || !hc.cc.CanTakeNewRequest() {
		ep.removeLocked(hc)
		p.closeConn(hc)
	}
}

func (ep *h2cEndpoint) removeLocked(hc *h2cConn) {
	for i, c := range ep.conns {
		if c == hc {
			last := len(ep.conns) - 1
			ep.conns[i] = ep.conns[last]
			ep.conns[last] = nil
			ep.conns = ep.conns[:last]
			return
		}
	}
}

func (p *h2cPools) closeConn(hc *h2cConn) {
	_ = hc.cc.Close()
	p.open.Add(-1)
}

// retire closes b's idle connections and forgets its endpoint; busy ones
// close when their last exchange ends (or is cut off by the drain).
func (p *h2cPools) retire(b *route.Backend) {
	v, ok := p.m.LoadAndDelete(b.Token())
	if !ok {
		return
	}
	ep := v.(*h2cEndpoint)
	ep.mu.Lock()
	ep.retired = true
	ep.dialed.Broadcast()
	p.closeIdleLocked(ep, time.Time{}, true)
	ep.mu.Unlock()
}

// reap closes connections idle past the idle timeout or unusable, or every
// idle one when all is set.
func (p *h2cPools) reap(now time.Time, all bool) {
	p.m.Range(func(_, v any) bool {
		ep := v.(*h2cEndpoint)
		ep.mu.Lock()
		p.closeIdleLocked(ep, now, all)
		ep.mu.Unlock()
		return true
	})
}

func (p *h2cPools) closeIdleLocked(ep *h2cEndpoint, now time.Time, all bool) {
	for i := 0; i < len(ep.conns); {
		c := ep.conns[i]
		if c.busy == 0 && (all || !c.cc.CanTakeNewRequest() || now.Sub(c.since) > p.idleTimeout) {
			ep.removeLocked(c)
			p.closeConn(c)
			continue
		}
		i++
	}
}

// stop closes every idle connection; busy ones close when released.
func (p *h2cPools) stop() {
	p.closed.Store(true)
	p.reap(time.Now(), true)
}
