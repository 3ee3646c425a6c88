package proxy

import (
	"errors"
	"unsafe"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// serveRequest reads, checks, routes and answers one request. It reports
// whether the connection may carry another request.
func (c *conn) serveRequest() bool {
	s, ex := c.st, c.ex
	c.closeConn = false
	ex.pol.reset(nil)
	pe, ok := c.readHead()
	if !ok {
		return false // the client went away mid-head: nobody to answer
	}
	if pe.status == 0 && c.h2Preface() {
		c.handOffH2()
		return false
	}
	c.h1Served = true
	c.served.Store(true)
	if pe.status == 0 {
		pe = parseRequest(s.Front, &ex.scan, &ex.req)
	}
	if pe.status != 0 {
		s.Metrics.Start = c.firstByte
		_ = s.Unlink() // counted and logged like any request
		s.Ctx.ClientAddr = c.remote
		c.answerLocal(answer{status: pe.status, cause: pe.cause, close: true})
		s.Finish(c.tick())
		return false
	}
	_ = s.Open(c.firstByte)
	c.fillContext()
	c.gone.Store(false) // the previous request is unlinked: no hook can run
	s.OnGone = c.goneFn
	keep := c.handle()
	s.Finish(c.tick())
	return keep && !c.closeConn && !c.srv.shutting.Load()
}

// readHead reads until buf holds a complete request head. ok is false when
// the client closed or failed mid-head; otherwise pe says whether the head
// is acceptable so far (431, 414, 408, 400).
func (c *conn) readHead() (pe parseError, ok bool) {
	ex, buf, o := c.ex, c.st.Front, &c.srv.opt
	ex.scan.reset(c.fr)
	limit := min(c.fr+o.MaxHeaderBytes, len(buf))
	waited := false
	for {
		switch ex.scan.scan(buf, c.fw, o.MaxHeaderCount+1) {
		case scanDone:
			if ex.scan.firstEnd-c.fr > o.MaxHeaderBytes {
				return parseError{414, causeHeaderTooLarge}, true
			}
			if ex.scan.pos-c.fr > o.MaxHeaderBytes {
				return errFieldsTooLarge, true
			}
			return parseError{}, true
		case scanBareLF:
			return errBadRequest, true
		case scanTooMany:
			return errFieldsTooLarge, true
		}
		if c.fw >= limit {
			if ex.scan.firstEnd == 0 {
				return parseError{414, causeHeaderTooLarge}, true
			}
			return errFieldsTooLarge, true
		}
		if !waited {
			// Only a head that did not come in one read needs the
			// header deadline: most requests never pay for the timer.
			waited = true
			c.rdl.forget()
			setRead(c.nc, &c.rdl, c.firstByte, o.ReadHeaderTimeout)
		}
		n, err := c.read(buf[c.fw:])
		c.fw += n
		if err != nil && n == 0 {
			if isTimeout(err) {
				return parseError{408, causeClientTimeout}, true
			}
			return parseError{}, false
		}
	}
}

// fillContext copies the request facts the access log reports into the
// exchange and points the stream's Context at the copies.
func (c *conn) fillContext() {
	s, ex, buf := c.st, c.ex, c.st.Front
	r := &ex.req
	ex.meta = ex.meta[:0]
	ctx := &s.Ctx
	ctx.ClientAddr = c.remote
	ctx.Method = ex.keep(r.method.in(buf), maxLogMethod)
	ctx.Authority = ex.keep(r.authority.in(buf), maxLogAuthorty)
	ctx.Path = ex.keep(r.target.in(buf), maxLogTarget)
	ctx.Proto = "HTTP/1.1"
	if r.minor == 0 {
		ctx.Proto = "HTTP/1.0"
	}
	ctx.UserAgent = ex.keep(r.userAgent.in(buf), maxLogAgent)
	if r.requestID.len() > 0 {
		ctx.RequestID = ex.keep(r.requestID.in(buf), maxLogID)
	} else {
		i := len(ex.meta)
		ex.meta = c.srv.ids.appendID(ex.meta)
		ctx.RequestID = unsafe.String(&ex.meta[i], len(ex.meta)-i)
	}
}

// handle decides what to do with a parsed request: refuse it, answer it
// locally, or forward it. It reports whether the connection may be kept.
func (c *conn) handle() bool {
	s, ex, o := c.st, c.ex, &c.srv.opt
	r := &ex.req
	if r.connClose || (r.minor == 0 && !r.connKeepAlive) {
		c.closeConn = true
	}
	var t *route.Target
	if tbl := c.srv.store.Load(); tbl != nil {
		t = tbl.Match(bstr(r.authority.in(s.Front)), bstr(r.path.in(s.Front)))
	}
	if t != nil {
		ex.pol.reset(t.Policy)
	}
	if lim := ex.pol.maxBody(o); lim > 0 && r.contentLength > lim {
		return c.answerLocal(answer{status: 413, cause: causeBodyTooLarge, close: true})
	}
	if pe := c.prepareBody(); pe.status != 0 {
		return c.answerLocal(answer{status: pe.status, cause: pe.cause, close: true})
	}
	if a, ok := c.hostAnswer(bstr(r.authority.in(s.Front)), bstr(s.Front[r.path.s:r.target.e])); ok {
		return c.answerBeforeBody(a)
	}
	if t == nil {
		return c.answerBeforeBody(answer{status: 404, cause: causeNoRoute, detail: "no route for this host and path"})
	}
	s.Ctx.Namespace, s.Ctx.Ingress, s.Ctx.Service = t.Namespace, t.Ingress, t.Service
	if t.Cluster == nil {
		return c.answerBeforeBody(answer{status: 503, cause: causeNoBackend, detail: "no backend: service " + t.Namespace + "/" + t.Service + " is not resolved"})
	}
	c.capturePolicy()
	if h2cTarget(t) {
		return c.forwardH2C(t.Cluster)
	}
	if !c.rewriteRequest() {
		return c.answerLocal(answer{status: 431, cause: causeHeaderTooLarge, close: true})
	}
	return c.forward(t.Cluster)
}

// prepareBody finds how much of the request body is already in the
// buffer, validating chunked framing there before anything is sent.
func (c *conn) prepareBody() parseError {
	ex, o := c.ex, &c.srv.opt
	r := &ex.req
	ex.bodyEnd, ex.bodyLeft, ex.bodyMore, ex.bodyIn, ex.continued = r.end, 0, false, 0, false
	switch {
	case r.chunked:
		ex.chunk.reset(ex.pol.maxBody(o), o.MaxHeaderCount, o.MaxHeaderBytes)
		n, _, err := ex.chunk.feed(c.st.Front[r.end:c.fw], false)
		if errors.Is(err, errChunkTooLarge) {
			return parseError{413, causeBodyTooLarge}
		}
		if err != nil {
			return errBadRequest
		}
		ex.bodyEnd, ex.bodyMore, ex.bodyIn = r.end+n, !ex.chunk.done(), int64(n)
	case r.contentLength > 0:
		in := min(r.contentLength, int64(c.fw-r.end))
		ex.bodyEnd, ex.bodyLeft, ex.bodyIn = r.end+int(in), r.contentLength-in, in
		ex.bodyMore = ex.bodyLeft > 0
	}
	c.st.Metrics.BytesIn = ex.bodyIn
	return parseError{}
}

// answerBeforeBody answers locally a request whose body was not forwarded:
// the connection stays usable only if the whole body is in the buffer, so
// that it can be skipped.
func (c *conn) answerBeforeBody(a answer) bool {
	if c.ex.bodyMore || c.ex.req.isUpgrade() {
		a.close = true
	} else {
		c.fr = c.ex.bodyEnd
	}
	return c.answerLocal(a)
}

// answerLocal sends a response generated by the proxy (the stream must not
// be Linked), records it on the stream and reports whether the connection
// may be kept.
func (c *conn) answerLocal(a answer) bool {
	s := c.st
	if s.State() == stream.Linked {
		_ = s.Unlink()
	}
	if c.closeConn || c.srv.shutting.Load() {
		a.close = true
	}
	a.head = c.ex.req.isHead
	s.Ctx.Status, s.Ctx.Cause = a.status, a.cause
	now := c.tick()
	b := appendAnswer(s.Back[:0], a, now)
	setWrite(c.nc, &c.wdl, now, c.bodyIdle())
	if _, err := c.nc.Write(b); err != nil {
		a.close = true
	}
	if a.close {
		c.closeConn = true
		c.linger = a.status >= 400
	}
	return !a.close
}
