package proxy

//lint:file-ignore SA1019 x/net/http2's ClientConn, as in h2up_pool.go.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// h1Up is an HTTP/1.1 request forwarded to an h2c backend as an HTTP/2
// stream (H2.md, "HTTP/1.1 clients to h2c backends"). It is made per
// request: the backend client's goroutines may touch it after a failure.
type h1Up struct {
	c          *conn
	hdr        http.Header
	url        url.URL
	req        http.Request
	teTrailers bool // the client sent TE: trailers

	cancel   atomic.Pointer[context.CancelFunc] // the attempt's
	timedOut atomic.Bool
	pump     *h1Pump // the body pump, once started (one per request)
}

// forwardH2C forwards the request to the h2c cluster cl.
func (c *conn) forwardH2C(cl *route.Cluster) bool {
	if !c.rewriteRequest() {
		return c.answerLocal(answer{status: 431, cause: causeHeaderTooLarge, close: true})
	}
	ex := c.ex
	u := &h1Up{c: c, hdr: make(http.Header, 16)}
	u.parseHead(bstr(c.st.Front[ex.outStart:ex.req.end]))
	ex.up = u
	keep := c.forward(cl)
	ex.up = nil
	if p := u.pump; p != nil {
		if !p.finish() {
			c.closeConn = true // the body was not read to its end
		}
		c.st.Metrics.BytesIn = ex.bodyIn + p.n
	}
	c.fr = ex.bodyEnd // the rest of the body, if any, was read by the pump
	return keep && !c.closeConn
}

// parseHead fills the request from the rewritten HTTP/1.1 head h (so the
// X-Forwarded-* and X-Request-Id fields are the HTTP/1.1 backends'),
// without Host (:authority), the framing and hop-by-hop fields; TE is kept
// when it is "trailers".
func (u *h1Up) parseHead(h string) {
	line, rest, _ := strings.Cut(h, "\r\n")
	method, line, _ := strings.Cut(line, " ")
	target, _, _ := strings.Cut(line, " ")
	host := ""
	for {
		l, r, ok := strings.Cut(rest, "\r\n")
		if !ok || l == "" {
			break
		}
		rest = r
		i := strings.IndexByte(l, ':')
		if i <= 0 {
			continue
		}
		name, value := l[:i], strings.Trim(l[i+1:], " \t")
		switch classify(sbytes(name)) {
		case kindHost:
			host = value
			continue
		case kindTE:
			u.teTrailers = true
			u.hdr["Te"] = []string{"trailers"}
			continue
		case kindTransferEncoding, kindContentLength, kindConnection, kindKeepAlive,
			kindProxyConnection, kindUpgrade:
			continue
		}
		if eqFold(sbytes(name), "expect") {
			continue // the proxy answers 100 Continue itself
		}
		k := http.CanonicalHeaderKey(name)
		u.hdr[k] = append(u.hdr[k], value)
	}
	if _, ok := u.hdr["User-Agent"]; !ok {
		u.hdr["User-Agent"] = nil // no default User-Agent from the client
	}
	u.url = url.URL{Scheme: "http", Host: host, Opaque: target}
	u.req = http.Request{Method: method, URL: &u.url, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: u.hdr, Host: host}
}

// attemptH2C runs one try against the h2c backend b.
func (c *conn) attemptH2C(b *route.Backend) outcome {
	srv, u := c.srv, c.ex.up
	hc, fresh, err := srv.h2c.acquire(b, c.ex.pol.connectTimeout(&srv.opt))
	if err != nil {
		return c.h1h2cDialFailed(err)
	}
	if fresh {
		srv.m.Connect(metrics.ConnectOK)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel.Store(&cancel)
	c.upH2C.Store(u)
	var out outcome
	if c.gone.Load() {
		out = c.failBeforeResponse(causeBackendGone, 502)
	} else {
		out = c.exchangeH2C(ctx, cancel, b, hc)
	}
	c.upH2C.Store(nil)
	u.cancel.Store(nil)
	cancel()
	srv.h2c.release(hc, time.Now())
	return out
}

// interrupt cancels the attempt in progress, if any (OnGone).
func (u *h1Up) interrupt() {
	if f := u.cancel.Load(); f != nil {
		(*f)()
	}
}

// h1h2cDialFailed handles a failure to get a connection to an h2c backend.
func (c *conn) h1h2cDialFailed(err error) outcome {
	srv := c.srv
	if errors.Is(err, errH2CGone) {
		return outRetry // Pick skips a retired endpoint
	}
	if isTimeout(err) && !c.ex.pol.retryConnectTimeout() {
		srv.m.Connect(metrics.ConnectTimeout)
		c.answerBeforeBody(answer{status: 504, cause: causeConnectTimeout, detail: "backend connect timed out"})
		return outDone
	}
	srv.m.Connect(metrics.ConnectError)
	return c.retryIf(route.RetryConnectFailure)
}

// exchangeH2C sends the request on hc, streaming its body from the client,
// and relays the response.
func (c *conn) exchangeH2C(ctx context.Context, cancel context.CancelFunc, b *route.Backend, hc *h2cConn) outcome {
	u, ex := c.ex.up, c.ex
	req := u.req.WithContext(ctx)
	if ex.req.hasBody() {
		if u.pump != nil {
			// A previous attempt started the body: it cannot be replayed.
			return c.failBeforeResponse(causeBackendError, 502)
		}
		if ex.req.expect && ex.bodyMore && !ex.continued {
			ex.continued = true
			setWrite(c.nc, &c.wdl, c.tick(), c.bodyIdle())
			if _, err := io.WriteString(c.nc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return c.failBeforeResponse(causeClientAborted, 0)
			}
		}
		req.Body, req.ContentLength = u.startPump()
		if ex.req.chunked {
			req.Trailer = u.pump.tr
		}
	}
	u.timedOut.Store(false)
	timer := time.AfterFunc(c.ex.pol.responseTimeout(&c.srv.opt), func() {
		u.timedOut.Store(true)
		cancel()
	})
	resp, err := hc.cc.RoundTrip(req)
	timer.Stop()
	if err != nil {
		return c.h1h2cFailed(b, err)
	}
	if u.pump == nil && idempotent(req.Method) && c.ex.pol.retryStatus(resp.StatusCode) &&
		c.st.Attempts() < c.ex.pol.maxAttempts(&c.srv.opt) {
		_ = resp.Body.Close()
		return outRetry
	}
	out := c.relayFromH2C(resp)
	_ = resp.Body.Close()
	return out
}

// h1h2cFailed handles an exchange that failed before the response head.
func (c *conn) h1h2cFailed(b *route.Backend, err error) outcome {
	u := c.ex.up
	if p := u.pump; p != nil {
		p.stop()
		if p.status != 0 || p.clientGone {
			c.closeConn = true
			return c.failBeforeResponse(p.cause, p.status)
		}
	}
	switch {
	case c.gone.Load():
		return c.failBeforeResponse(causeBackendGone, 502)
	case u.timedOut.Load():
		return c.failBeforeResponse(causeBackendTimeout, 504)
	case h2cUnprocessed(err) && u.pump == nil:
		// Not processed, and no body to replay.
		return c.retryIf(route.RetryRefusedStream)
	}
	b.RecordFailure()
	return c.failBeforeResponse(causeBackendError, 502)
}
