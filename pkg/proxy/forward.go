package proxy

import (
	"errors"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// respRoom is the space kept free at the front of the response buffer so
// that the forwarded response head can grow (Date, Server, Connection) in
// place.
const respRoom = 128

// outcome is the result of one backend attempt.
type outcome uint8

const (
	outDone  outcome = iota // answered (by the backend or the proxy)
	outRetry                // nothing reached the backend: safe to try again
)

// forward links the request to a backend of cl and relays the exchange,
// retrying while that is safe (see HTTP1.md). It reports whether the
// client connection may be kept.
func (c *conn) forward(cl *route.Cluster) bool {
	s := c.st
	for races := 0; ; {
		b := c.ex.pol.pick(cl, s.LastBackend())
		if b == nil {
			return c.answerNoBackend(cl)
		}
		now := c.tick()
		switch err := s.Link(b, now); {
		case err == nil:
		case errors.Is(err, stream.ErrBackendGone):
			// Retired between Pick and Link; Pick skips it next time.
			if races++; races < 4 {
				continue
			}
			return c.answerNoBackend(cl)
		default: // ErrAttemptsExhausted cannot happen: checked below

			return c.answerLocal(answer{status: 502, cause: causeBackendError, close: true})
		}
		if c.attempt(b, now) == outRetry {
			if s.Attempts() >= c.ex.pol.maxAttempts(&c.srv.opt) {
				return c.answerLocal(answer{status: 503, cause: causeRetriesExhausted,
					detail: "no backend could be reached", retryAfter: c.srv.opt.RetryAfter})
			}
			_ = s.Relink()
			c.srv.m.Retry()
			continue
		}
		return !c.closeConn
	}
}

func (c *conn) answerNoBackend(cl *route.Cluster) bool {
	detail := "no backend: " + cl.Reason()
	if cl.Reason() == "" {
		detail = "no backend: no ready endpoint for " + cl.Name()
	}
	return c.answerBeforeBody(answer{status: 503, cause: causeNoBackend, detail: detail})
}

// attempt runs one try against b: a pooled or new connection, the request,
// the response.
func (c *conn) attempt(b *route.Backend, now time.Time) outcome {
	if c.ex.up != nil {
		return c.attemptH2C(b)
	}
	o := &c.srv.opt
	replayable := !c.ex.req.hasBody() && idempotent(c.st.Ctx.Method)
	bc := c.srv.backends.get(b, now, !replayable)
	if bc == nil {
		var err error
		bc, err = c.srv.backends.dial(b, c.ex.pol.connectTimeout(o))
		if err != nil {
			b.RecordFailure()
			if isTimeout(err) && !c.ex.pol.retryConnectTimeout() {
				c.srv.m.Connect(metrics.ConnectTimeout)
				c.answerBeforeBody(answer{status: 504, cause: causeConnectTimeout, detail: "backend connect timed out"})
				return outDone
			}
			c.srv.m.Connect(metrics.ConnectError)
			return c.retryIf(route.RetryConnectFailure)
		}
		c.srv.m.Connect(metrics.ConnectOK)
	}
	c.cur.Store(bc)
	if c.gone.Load() { // drained between Link and now
		c.cur.Store(nil)
		c.srv.backends.close(bc)
		return c.failBeforeResponse(causeBackendGone, 502)
	}
	out := c.exchangeWith(bc, now)
	c.cur.Store(nil)
	return out
}

// exchangeWith sends the request on bc and relays the response.
func (c *conn) exchangeWith(bc *bconn, now time.Time) outcome {
	ex, o := c.ex, &c.srv.opt
	setWrite(bc.nc, &bc.wdl, now, ex.pol.responseTimeout(o))
	setRead(bc.nc, &bc.rdl, now, ex.pol.responseTimeout(o))
	n, err := bc.nc.Write(c.st.Front[ex.outStart:ex.bodyEnd])
	if err != nil {
		c.srv.backends.close(bc)
		if n == 0 && !c.gone.Load() { // nothing reached the backend
			return c.retryIf(route.RetryConnectFailure | route.RetryResetBeforeResponse)
		}
		bc.b.RecordFailure()
		return c.failBeforeResponse(causeBackendError, 502)
	}
	if ex.bodyMore {
		c.startPump(bc)
	} else {
		c.fr = ex.bodyEnd
	}
	return c.readResponse(bc)
}

// readResponse reads the backend's response head into the Back buffer,
// forwarding interim (1xx) responses, then relays the final one.
func (c *conn) readResponse(bc *bconn) outcome {
	ex, o, back := c.ex, &c.srv.opt, c.st.Back
	room := c.respRoom()
	rw := room
	got := false // any response byte came
	ex.scan.reset(room)
	for {
		switch ex.scan.scan(back, rw, o.MaxHeaderCount+1) {
		case scanDone:
			if !parseResponse(back, &ex.scan, &ex.resp) {
				return c.badResponse(bc)
			}
			if ex.resp.status >= 200 || ex.resp.status == 101 {
				if c.retryResponse(bc, rw) {
					return outRetry
				}
				return c.relayResponse(bc, rw)
			}
			if !c.forwardInterim() {
				c.srv.backends.close(bc)
				c.stopPump(bc)
				c.st.Ctx.Cause = causeClientAborted
				c.closeConn = true
				return outDone
			}
			end := ex.resp.end
			rw = room + copy(back[room:], back[end:rw])
			ex.scan.reset(room)
			continue
		case scanBareLF, scanTooMany:
			return c.badResponse(bc)
		}
		if rw == len(back) {
			return c.badResponse(bc) // head larger than the buffer
		}
		n, err := bc.read(back[rw:])
		if n > 0 {
			rw += n
			got = true
			continue
		}
		return c.backendFailed(bc, err, got)
	}
}

// badResponse answers 502 for a response head the proxy will not forward.
func (c *conn) badResponse(bc *bconn) outcome {
	c.srv.backends.close(bc)
	bc.b.RecordFailure()
	return c.failBeforeResponse(causeBackendError, 502)
}

// backendFailed handles a read error before the final response head: a
// retry when it is safe, else 502 or 504. got says whether any response
// byte came.
func (c *conn) backendFailed(bc *bconn, err error, got bool) outcome {
	c.srv.backends.close(bc)
	r := &c.ex.req
	if c.pump.running {
		c.stopPump(bc)
		if p := &c.pump; p.err != nil && !p.stopped {
			return c.failBeforeResponse(p.cause, p.status)
		}
	}
	switch {
	case c.gone.Load():
		return c.failBeforeResponse(causeBackendGone, 502)
	case isTimeout(err):
		return c.failBeforeResponse(causeBackendTimeout, 504)
	case !got && bc.reused && !r.hasBody() && idempotent(c.st.Ctx.Method):
		// A pooled connection the backend closed as it was reused: the
		// request was not processed, and replaying an idempotent
		// request without a body is safe (RFC 9110 §9.2.2).
		return c.retryIf(route.RetryResetBeforeResponse)
	}
	bc.b.RecordFailure()
	return c.failBeforeResponse(causeBackendError, 502)
}

// failBeforeResponse answers status (or just closes, when status is 0) for
// a request whose response never started, and ends the connection.
func (c *conn) failBeforeResponse(cause string, status int) outcome {
	c.closeConn = true
	if status == 0 { // nobody to answer; logged as 499 like nginx
		_ = c.st.Unlink()
		c.st.Ctx.Status, c.st.Ctx.Cause = 499, cause
		return outDone
	}
	c.answerLocal(answer{status: status, cause: cause, close: true})
	return outDone
}

// idempotent reports whether a method is idempotent (RFC 9110 §9.2.2).
func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
