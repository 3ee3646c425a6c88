package proxy

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// pump streams the rest of a request body from the client to the backend
// on its own goroutine while the connection goroutine reads the response,
// so that a backend answering before it has read the whole body (or a
// client waiting for 100 Continue) cannot deadlock the exchange. It only
// runs for bodies that did not fit in the first reads; it uses the Front
// buffer, the client's read deadline and the backend's write deadline,
// which nobody else touches meanwhile.
type pump struct {
	running bool          // owned by the connection goroutine
	done    chan struct{} // the pump signals its end here
	stop    atomic.Bool   // the connection goroutine asked it to stop

	// results, written by the pump before it signals done:
	err          error
	stopped      bool   // it failed because it was asked to stop
	cause        string // why it failed
	status       int    // the answer if no response was sent yet; 0 to just close
	n            int64  // body bytes read from the client
	restS, restE int    // pipelined bytes left in Front after a chunked body

	lr io.LimitedReader // for splicing the body
}

// startPump starts streaming the rest of the request body to bc.
func (c *conn) startPump(bc *bconn) {
	p := &c.pump
	p.running = true
	p.stop.Store(false)
	p.err, p.stopped, p.cause, p.status, p.n, p.restS, p.restE = nil, false, "", 0, 0, 0, 0
	go c.runPump(bc)
}

func (c *conn) runPump(bc *bconn) {
	p := &c.pump
	var err error
	if c.ex.req.chunked {
		err = c.pumpChunked(bc)
	} else {
		err = c.pumpLength(bc)
	}
	if err != nil {
		p.err = err
		p.stopped = p.stop.Load()
		if !p.stopped {
			// Wake the connection goroutine if it waits for a response
			// that cannot come now.
			_ = bc.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	p.done <- struct{}{}
}

// waitPump waits for the pump to finish by itself.
func (c *conn) waitPump() {
	<-c.pump.done
	c.afterPump()
}

// stopPump stops the pump if it runs, interrupting its I/O, and waits.
func (c *conn) stopPump(bc *bconn) {
	p := &c.pump
	if !p.running {
		return
	}
	select {
	case <-p.done:
	default:
		p.stop.Store(true)
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		_ = bc.nc.SetWriteDeadline(aLongTimeAgo)
		<-p.done
		c.rdl.forget()
	}
	c.afterPump()
}

func (c *conn) afterPump() {
	p := &c.pump
	p.running = false
	c.st.Metrics.BytesIn += p.n
	if p.err != nil {
		c.closeConn = true
		return
	}
	c.fr, c.fw = p.restS, p.restE
}

// fail records why the pump stopped.
func (p *pump) fail(cause string, status int, err error) error {
	p.cause, p.status = cause, status
	return err
}

// clientReadFailed classifies a client read error during a body.
func (p *pump) clientReadFailed(err error) error {
	if isTimeout(err) {
		return p.fail(causeClientTimeout, 408, err)
	}
	return p.fail(causeClientAborted, 0, err)
}

// pumpLength copies the Content-Length bytes still due.
func (c *conn) pumpLength(bc *bconn) error {
	p, buf, idle := &c.pump, c.st.Front, c.bodyIdle()
	if left := c.ex.bodyLeft; canSplice(bc.tcp, c.tcp, left, len(buf)) {
		k, err := spliceN(bc.tcp, c.tcp, &p.lr, left, idle, &c.rdl, &bc.wdl)
		p.n += k
		if err == nil {
			return nil
		}
		if open, _ := peek(c.raw); !open || errors.Is(err, io.ErrUnexpectedEOF) {
			return p.fail(causeClientAborted, 0, err)
		}
		if isTimeout(err) {
			return p.fail(causeClientTimeout, 408, err)
		}
		return p.fail(causeBackendError, 502, err)
	}
	for left := c.ex.bodyLeft; left > 0; {
		setRead(c.nc, &c.rdl, time.Now(), idle)
		n, err := c.read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			p.n += int64(n)
			left -= int64(n)
			setWrite(bc.nc, &bc.wdl, time.Now(), idle)
			if _, werr := bc.nc.Write(buf[:n]); werr != nil {
				return p.fail(causeBackendError, 502, werr)
			}
		}
		if err != nil && left > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return p.clientReadFailed(err)
		}
	}
	return nil
}

// pumpChunked copies the rest of a chunked body, validating it; only
// well-framed bytes are sent, and an error stops the body short so the
// backend never sees bytes past it.
func (c *conn) pumpChunked(bc *bconn) error {
	p, buf, idle, k := &c.pump, c.st.Front, c.bodyIdle(), &c.ex.chunk
	for !k.done() {
		setRead(c.nc, &c.rdl, time.Now(), idle)
		m, err := c.read(buf)
		if m == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return p.clientReadFailed(err)
		}
		n, _, ferr := k.feed(buf[:m], false)
		p.n += int64(n)
		if n > 0 {
			setWrite(bc.nc, &bc.wdl, time.Now(), idle)
			if _, werr := bc.nc.Write(buf[:n]); werr != nil {
				return p.fail(causeBackendError, 502, werr)
			}
		}
		switch {
		case errors.Is(ferr, errChunkTooLarge):
			return p.fail(causeBodyTooLarge, 413, ferr)
		case ferr != nil:
			return p.fail(causeBadRequest, 400, ferr)
		case k.done():
			p.restS, p.restE = n, m
		}
	}
	return nil
}

// isEOF reports whether err is a clean end of stream.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
