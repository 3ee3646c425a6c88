package proxy

import (
	"time"

	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// bodyIdle is the body idle timeout of the current request: its route's,
// else the default.
func (c *conn) bodyIdle() time.Duration { return c.ex.pol.idleTimeout(&c.srv.opt) }

// respRoom returns the space kept free before the response head: more when
// the route may add an affinity cookie.
func (c *conn) respRoom() int {
	if p := c.ex.pol.p; p != nil && p.AffinityCookie != "" {
		return respRoom + affinityRoom
	}
	return respRoom
}

// capturePolicy copies what the route's policy needs from the request head
// before it is rewritten.
func (c *conn) capturePolicy() {
	ex := c.ex
	if ex.pol.p == nil {
		return
	}
	ex.pol.capture(c.st.Front[ex.req.start:ex.req.end], c.xff, c.srv.opt.TrustForwardedHeaders)
}

// appendAffinity appends the Set-Cookie line of the route's affinity
// cookie to add when the response needs one.
func (c *conn) appendAffinity(add []byte) []byte {
	ps := &c.ex.pol
	if ps.p == nil || ps.p.AffinityCookie == "" {
		return add
	}
	if v := ps.cookieValue(c.st.LastBackend(), c.proto == "https"); v != nil {
		add = appendLine(add, "Set-Cookie", v)
	}
	return add
}

// retryIf returns outRetry when the route allows another attempt after
// cond, else answers 502 for a failure that reached no backend.
func (c *conn) retryIf(cond route.RetryOn) outcome {
	if c.ex.pol.retryOn(cond) {
		return outRetry
	}
	return c.failBeforeResponse(causeBackendError, 502)
}

// retryResponse reports whether the final response just parsed (rw bytes
// read) is one the route retries on another backend: a 502, 503 or 504
// named by its retries, for an idempotent request without a body, while an
// attempt remains. The response is then discarded: its connection is
// pooled when it is complete in the buffer, else closed.
func (c *conn) retryResponse(bc *bconn, rw int) bool {
	ex := c.ex
	r := &ex.req
	if !ex.pol.retryStatus(ex.resp.status) || r.hasBody() || r.isUpgrade() ||
		!idempotent(c.st.Ctx.Method) || c.st.Attempts() >= ex.pol.maxAttempts(&c.srv.opt) {
		return false
	}
	c.cur.Store(nil)
	if wholeResponse(&ex.resp, r.isHead, rw) && ex.resp.reusable() && !c.gone.Load() {
		c.srv.backends.put(bc, c.tick())
	} else {
		c.srv.backends.close(bc)
	}
	return true
}

// h2BodyIdle is the body idle timeout of the stream's route.
func (s *h2Stream) h2BodyIdle() time.Duration { return s.pol.idleTimeout(&s.h.srv.opt) }

// applyPolicy starts the stream's policy state for target t and copies
// what it needs from the translated request head. It reports false when
// the request was answered (413).
func (s *h2Stream) applyPolicy(t *route.Target) bool {
	s.pol.reset(t.Policy)
	o := &s.h.srv.opt
	if !s.limitBody(s.pol.maxBody(o)) {
		s.answerLocal(answer{status: 413, cause: causeBodyTooLarge})
		return false
	}
	if t.Policy == nil {
		return true
	}
	s.pol.capture(s.st.Back[:s.head], s.h.c.xff, o.TrustForwardedHeaders)
	return true
}

// h2RetryIf reports whether the route allows another attempt after cond;
// when not, the stream is answered 502.
func (s *h2Stream) h2RetryIf(cond route.RetryOn) outcome {
	if s.pol.retryOn(cond) {
		return outRetry
	}
	s.answerLocal(answer{status: 502, cause: causeBackendError})
	return outDone
}

// respBase returns where the response is read into Back: after the
// request head when the route may retry on a response status, so that the
// head can be sent again; else at 0.
func (s *h2Stream) respBase() int {
	if s.pol.p != nil && s.pol.p.RetryOn&(route.RetryStatus502|route.RetryStatus503|route.RetryStatus504) != 0 {
		return s.head
	}
	return 0
}

// retryResponse is conn.retryResponse for an HTTP/2 stream.
func (s *h2Stream) retryResponse(bc *bconn, rw int) bool {
	if !s.pol.retryStatus(s.resp.status) || !s.endStream || !idempotent(s.method) ||
		s.st.Attempts() >= s.pol.maxAttempts(&s.h.srv.opt) {
		return false
	}
	s.h.mu.Lock()
	reusable := !s.reset && !s.drained
	s.bc = nil
	s.h.mu.Unlock()
	if reusable && wholeResponse(&s.resp, s.method == "HEAD", rw) && s.resp.reusable() {
		s.h.srv.backends.put(bc, time.Now())
	} else {
		s.h.srv.backends.close(bc)
	}
	return true
}

// affinityValue returns the set-cookie value the response needs, or nil.
func (s *h2Stream) affinityValue() []byte {
	if s.pol.p == nil || s.st.State() != stream.Linked {
		return nil
	}
	return s.pol.cookieValue(s.st.LastBackend(), s.h.c.proto == "https")
}
