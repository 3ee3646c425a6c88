package proxy

import (
	"net"
	"sync/atomic"
	"time"
)

// tunnelSide is one direction of an Upgrade tunnel.
type tunnelSide struct {
	dst, src net.Conn
	buf      []byte
	n        int64 // bytes copied
	err      error // nil after a clean EOF
}

// tunnel relays bytes both ways after a 101 response was forwarded, until
// both directions end or the tunnel idles for TunnelIdleTimeout. The
// stream stays Linked to the backend for the tunnel's whole life, so a
// backend that leaves the table drains it (onGone makes the backend's I/O
// fail). The client connection closes afterwards.
func (c *conn) tunnel(bc *bconn) {
	s, ex := c.st, c.ex
	c.closeConn = true
	// Bytes the client sent after its upgrade request go first.
	if extra := s.Front[ex.bodyEnd:c.fw]; len(extra) > 0 {
		_ = bc.nc.SetWriteDeadline(time.Now().Add(c.srv.opt.TunnelIdleTimeout))
		if _, err := bc.nc.Write(extra); err != nil {
			c.abort(bc, causeBackendAborted)
			return
		}
		s.Metrics.BytesIn += int64(len(extra))
	}
	c.fr, c.fw = 0, 0
	var last atomic.Int64
	var closing atomic.Bool
	last.Store(time.Now().UnixNano())
	up := tunnelSide{dst: bc.nc, src: c.nc, buf: s.Front}
	down := tunnelSide{dst: c.nc, src: bc.nc, buf: s.Back}
	done := make(chan struct{})
	go func() {
		c.copyTunnel(&up, &last, &closing)
		close(done)
	}()
	c.copyTunnel(&down, &last, &closing)
	<-done
	s.Metrics.BytesIn += up.n
	s.Metrics.BytesOut += down.n
	c.cur.Store(nil)
	c.srv.backends.close(bc)
	switch {
	case c.gone.Load():
		s.Ctx.Cause = causeBackendGone
	case down.err != nil && !isTimeout(down.err):
		s.Ctx.Cause = causeBackendAborted
	case up.err != nil && !isTimeout(up.err):
		s.Ctx.Cause = causeClientAborted
	}
}

// copyTunnel copies one direction until EOF (then half-closes the
// destination) or an error (then interrupts both directions).
func (c *conn) copyTunnel(t *tunnelSide, last *atomic.Int64, closing *atomic.Bool) {
	idle := c.srv.opt.TunnelIdleTimeout
	for {
		_ = t.src.SetReadDeadline(time.Now().Add(idle))
		n, err := t.src.Read(t.buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			_ = t.dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := t.dst.Write(t.buf[:n]); werr != nil {
				err = werr
			}
			t.n += int64(n)
		}
		if err == nil {
			continue
		}
		if isTimeout(err) && !closing.Load() && !c.gone.Load() && time.Since(time.Unix(0, last.Load())) < idle {
			continue // the other direction is busy: the tunnel is not idle
		}
		if isEOF(err) {
			if cw, ok := t.dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
				return
			}
		} else {
			t.err = err
		}
		closing.Store(true)
		_ = t.src.SetDeadline(aLongTimeAgo)
		_ = t.dst.SetDeadline(aLongTimeAgo)
		return
	}
}
