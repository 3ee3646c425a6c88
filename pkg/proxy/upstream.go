package proxy

import (
	"errors"
	"time"
)

// bodyMode is how a response body is framed (RFC 9112 §6.3).
type bodyMode uint8

const (
	bodyNone    bodyMode = iota // HEAD, 1xx, 204, 304
	bodyLength                  // Content-Length
	bodyChunked                 // Transfer-Encoding ending in chunked
	bodyClose                   // delimited by the backend closing
	bodyTunnel                  // 101 Switching Protocols to an upgrade request
	bodyInvalid                 // 101 that the client did not ask for
)

// responseMode decides the framing of the parsed response.
func (c *conn) responseMode() bodyMode {
	r, req := &c.ex.resp, &c.ex.req
	switch {
	case r.status == 101:
		if req.isUpgrade() {
			return bodyTunnel
		}
		return bodyInvalid
	case r.bodyless(req.isHead):
		return bodyNone
	case r.chunked:
		return bodyChunked
	case r.hasTE || r.contentLength < 0:
		return bodyClose
	}
	return bodyLength
}

// relayResponse forwards the final response whose head is parsed in Back
// (rw bytes read so far), and then its body, and returns the backend
// connection to its pool when the exchange ended cleanly.
func (c *conn) relayResponse(bc *bconn, rw int) outcome {
	s, ex := c.st, c.ex
	r, req, back := &ex.resp, &ex.req, s.Back
	now := c.tick()
	s.Metrics.BackendEnd = now
	mode := c.responseMode()
	if mode == bodyInvalid {
		return c.badResponse(bc)
	}
	decode := mode == bodyChunked && req.minor == 0
	c.decideClose(mode, decode)

	// Body bytes that came with the head are checked before anything is
	// sent, so a malformed start of body still gets a clean 502.
	bodyEnd, left, clean := r.end, int64(0), true
	switch mode {
	case bodyNone:
		clean = rw == r.end
	case bodyLength:
		in := min(r.contentLength, int64(rw-r.end))
		bodyEnd, left = r.end+int(in), r.contentLength-in
		clean = bodyEnd == rw
	case bodyChunked:
		ex.rchunk.reset(0, c.srv.opt.MaxHeaderCount, c.srv.opt.MaxHeaderBytes)
		n, out, err := ex.rchunk.feed(back[r.end:rw], decode)
		if err != nil {
			return c.badResponse(bc)
		}
		bodyEnd, clean = r.end+out, r.end+n == rw
	case bodyClose, bodyTunnel:
		bodyEnd = rw
	}
	back[r.start+7] = '1' // the proxy speaks HTTP/1.1 (RFC 9110 §6.2)
	start := c.rewriteResponse(mode, decode, now)
	s.Ctx.Status = r.status
	headLen := r.end - start
	if err := c.writeClient(back[start:bodyEnd]); err != nil {
		return c.abort(bc, causeClientAborted)
	}
	s.Metrics.BytesOut = int64(bodyEnd - start - headLen)

	var err error
	switch {
	case mode == bodyTunnel:
		c.tunnel(bc)
		return outDone
	case mode == bodyLength && left > 0:
		err = c.relayLength(bc, left)
	case mode == bodyChunked && !ex.rchunk.done():
		clean, err = c.relayChunked(bc, decode)
	case mode == bodyClose:
		err = c.relayUntilClose(bc)
	}
	if err != nil {
		return c.abort(bc, causeOf(err))
	}
	return c.endExchange(bc, clean && mode != bodyClose && r.reusable())
}

// decideClose settles, before the response head is written, whether the
// client connection ends after this response.
func (c *conn) decideClose(mode bodyMode, decode bool) {
	req := &c.ex.req
	switch {
	case mode == bodyClose, mode == bodyTunnel, decode:
		c.closeConn = true
	case req.minor == 0 && mode != bodyLength && mode != bodyNone:
		c.closeConn = true
	case c.pump.running && req.expect && !c.ex.continued:
		// The client may still be waiting for 100 Continue and will
		// never send the body: the body cannot be skipped.
		c.closeConn = true
	case c.srv.shutting.Load():
		c.closeConn = true
	}
}

// endExchange finishes a relayed exchange: it waits for the request body
// to be sent (or stops it when the client was refused its 100 Continue)
// and pools or closes the backend connection.
func (c *conn) endExchange(bc *bconn, reusable bool) outcome {
	if c.pump.running {
		if c.ex.req.expect && !c.ex.continued {
			c.stopPump(bc)
		} else {
			c.waitPump()
		}
		if c.pump.err != nil {
			reusable = false
		}
	}
	c.cur.Store(nil)
	if reusable && !c.gone.Load() {
		c.srv.backends.put(bc, c.clock)
	} else {
		c.srv.backends.close(bc)
	}
	return outDone
}

// abort ends an exchange whose response already started: the client
// connection is closed so that the client sees the response cut short.
func (c *conn) abort(bc *bconn, cause string) outcome {
	c.closeConn = true
	if c.gone.Load() {
		cause = causeBackendGone
	}
	c.st.Ctx.Cause = cause
	c.cur.Store(nil)
	c.srv.backends.close(bc)
	c.stopPump(bc)
	return outDone
}

// forwardInterim forwards a 1xx response (not 101) to an HTTP/1.1 client.
// It reports false when the client could not be written to.
func (c *conn) forwardInterim() bool {
	ex := c.ex
	r := &ex.resp
	if r.status == 100 {
		ex.continued = true
	}
	if ex.req.minor == 0 {
		return true // HTTP/1.0 clients get no 1xx (RFC 9110 §15.2)
	}
	c.st.Back[r.start+7] = '1'
	c.tick()
	start := c.rewriteResponse(bodyNone, false, time.Time{})
	return c.writeClient(c.st.Back[start:r.end]) == nil
}

// Errors of body relays, mapped to causes by causeOf.
var (
	errBackendBody    = errors.New("proxy: backend failed mid-body")
	errBackendStalled = errors.New("proxy: backend body stalled")
	errClientGone     = errors.New("proxy: client failed mid-response")
)

func causeOf(err error) string {
	switch err {
	case errBackendStalled:
		return causeBackendBodyTimeout
	case errClientGone:
		return causeClientAborted
	}
	return causeBackendAborted
}

// readBackend reads response body bytes with the body idle timeout.
func (c *conn) readBackend(bc *bconn, p []byte) (int, error) {
	setRead(bc.nc, &bc.rdl, c.tick(), c.bodyIdle())
	n, err := bc.read(p)
	if err != nil && n == 0 {
		if isTimeout(err) && !c.gone.Load() {
			return 0, errBackendStalled
		}
		return 0, errBackendBody
	}
	return n, nil
}

// writeClient writes p to the client with the body idle timeout, counted
// from c.clock (the caller ticked just before).
func (c *conn) writeClient(p []byte) error {
	setWrite(c.nc, &c.wdl, c.clock, c.bodyIdle())
	if _, err := c.nc.Write(p); err != nil {
		return errClientGone
	}
	return nil
}

// relayLength copies the n body bytes still to come.
func (c *conn) relayLength(bc *bconn, n int64) error {
	buf := c.st.Back
	if canSplice(c.tcp, bc.tcp, n, len(buf)) {
		k, err := spliceN(c.tcp, bc.tcp, &c.lr, n, c.bodyIdle(), &bc.rdl, &c.wdl)
		c.st.Metrics.BytesOut += k
		if err != nil {
			return c.spliceResponseFailed(err)
		}
		return nil
	}
	for n > 0 {
		k, err := c.readBackend(bc, buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		if err := c.writeClient(buf[:k]); err != nil {
			return err
		}
		n -= int64(k)
		c.st.Metrics.BytesOut += int64(k)
	}
	return nil
}

// relayChunked copies the rest of a chunked body, validating it; decode
// strips the framing for an HTTP/1.0 client. clean is false when the
// backend sent bytes past the end of the body.
func (c *conn) relayChunked(bc *bconn, decode bool) (clean bool, err error) {
	buf, k := c.st.Back, &c.ex.rchunk
	for !k.done() {
		m, err := c.readBackend(bc, buf)
		if err != nil {
			return false, err
		}
		n, out, ferr := k.feed(buf[:m], decode)
		if err := c.writeClient(buf[:out]); err != nil {
			return false, err
		}
		c.st.Metrics.BytesOut += int64(out)
		if ferr != nil {
			return false, errBackendBody
		}
		clean = n == m
	}
	return clean, nil
}

// relayUntilClose copies a body delimited by the backend closing.
func (c *conn) relayUntilClose(bc *bconn) error {
	buf := c.st.Back
	for {
		setRead(bc.nc, &bc.rdl, c.tick(), c.bodyIdle())
		k, err := bc.read(buf)
		if k > 0 {
			if werr := c.writeClient(buf[:k]); werr != nil {
				return werr
			}
			c.st.Metrics.BytesOut += int64(k)
		}
		if err != nil {
			if isEOF(err) {
				return nil
			}
			if isTimeout(err) && !c.gone.Load() {
				return errBackendStalled
			}
			return errBackendBody
		}
	}
}
