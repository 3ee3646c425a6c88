package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// h2cTarget reports whether t's backends speak h2c: the Service port's
// appProtocol (Cluster.Protocol) is h2c, or the route's policy says
// backendProtocol H2C. A policy's HTTP1 (the zero value, also "unset")
// does not override an h2c appProtocol: the cluster's protocol stands.
func h2cTarget(t *route.Target) bool {
	return t.Cluster != nil && t.Cluster.Protocol() == route.ProtocolH2C ||
		t.Policy != nil && t.Policy.BackendProtocol == route.ProtocolH2C
}

// h2Up is the state of an HTTP/2 stream forwarded to an h2c backend as an
// HTTP/2 stream (H2.md, "h2c backends"). It is not pooled: the backend
// client's goroutines may touch the request after an exchange fails.
type h2Up struct {
	s    *h2Stream
	head string // the translated head, copied: header values alias it
	hdr  http.Header
	url  url.URL
	req  http.Request
	resp *http.Response

	cancel   context.CancelFunc // the attempt's; guarded by s.h.mu
	timedOut atomic.Bool        // the response head did not come in time
	pw       *io.PipeWriter     // request body to the backend client
	taken    int64              // body bytes handed to the backend client
	lower    []byte
}

// useH2C switches the stream to an h2c exchange: the HTTP/1.1 head the
// reader loop translated becomes the backend request's fields.
func (s *h2Stream) useH2C() {
	u := &h2Up{s: s, head: string(s.st.Back[:s.head]), hdr: make(http.Header, 16)}
	u.parseHead()
	u.url = url.URL{Scheme: "http", Host: s.authority, Opaque: s.path}
	u.req = http.Request{Method: s.method, URL: &u.url, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: u.hdr, Host: s.authority}
	s.h.mu.Lock()
	s.up = u
	s.h.mu.Unlock()
}

// parseHead fills hdr from the translated HTTP/1.1 head, without Host
// (it is :authority) and the framing fields (HTTP/2 frames the body).
func (u *h2Up) parseHead() {
	h := u.head
	if i := strings.Index(h, "\r\n"); i >= 0 {
		h = h[i+2:] // the request line
	}
	for {
		i := strings.Index(h, "\r\n")
		if i <= 0 {
			break
		}
		line := h[:i]
		h = h[i+2:]
		c := strings.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		name, value := line[:c], strings.TrimLeft(line[c+1:], " ")
		switch classify(sbytes(name)) {
		case kindHost, kindTransferEncoding, kindContentLength:
			continue
		}
		u.hdr[name] = append(u.hdr[name], value)
	}
	if u.s.ua == "" {
		u.hdr["User-Agent"] = nil // no default User-Agent from the client
	}
}

// interruptLocked cancels the attempt in progress (s.h.mu held).
func (u *h2Up) interruptLocked() {
	if u.cancel != nil {
		u.cancel()
	}
}

// attemptH2C runs one try against b over a pooled HTTP/2 connection.
func (s *h2Stream) attemptH2C(b *route.Backend) outcome {
	srv, u, h := s.h.srv, s.up, s.h
	hc, fresh, err := srv.h2c.acquire(b, s.pol.connectTimeout(&srv.opt))
	if err != nil {
		return s.h2cDialFailed(b, err)
	}
	if fresh {
		srv.m.Connect(metrics.ConnectOK)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.mu.Lock()
	gone := s.reset || s.drained
	u.cancel = cancel
	h.mu.Unlock()
	var out outcome
	if gone {
		out = s.h2cFailed(b, context.Canceled)
	} else {
		out = s.exchangeH2C(ctx, cancel, b, hc)
	}
	h.mu.Lock()
	u.cancel = nil
	h.mu.Unlock()
	cancel()
	srv.h2c.release(hc, time.Now())
	return out
}

// exchangeH2C sends the request on hc, streaming its body from the ring,
// and relays the response.
func (s *h2Stream) exchangeH2C(ctx context.Context, cancel context.CancelFunc, b *route.Backend, hc *h2cConn) outcome {
	u := s.up
	req := u.req.WithContext(ctx)
	if !s.endStream && s.cl != 0 {
		pr, pw := io.Pipe()
		req.Body, req.ContentLength = pr, max(s.cl, 0) // 0: unknown
		req.Trailer = make(http.Header)
		u.startPump(pw, req.Trailer)
	}
	u.timedOut.Store(false)
	timer := time.AfterFunc(s.pol.responseTimeout(&s.h.srv.opt), func() {
		u.timedOut.Store(true)
		cancel()
	})
	resp, err := hc.cc.RoundTrip(req)
	timer.Stop()
	if err != nil {
		u.stopPump()
		return s.h2cFailed(b, err)
	}
	if s.h2cRetryStatus(resp) {
		_ = resp.Body.Close()
		u.stopPump()
		return outRetry
	}
	out := s.relayH2C(resp)
	_ = resp.Body.Close() // resets the backend stream if it did not end
	u.stopPump()
	return out
}

// h2cDialFailed handles a failure to get a connection to b.
func (s *h2Stream) h2cDialFailed(b *route.Backend, err error) outcome {
	srv := s.h.srv
	if errors.Is(err, errH2CGone) {
		return outRetry // Pick skips a retired endpoint
	}
	b.RecordFailure()
	if isTimeout(err) && !s.pol.retryConnectTimeout() {
		srv.m.Connect(metrics.ConnectTimeout)
		s.answerLocal(answer{status: 504, cause: causeConnectTimeout, detail: "backend connect timed out"})
		return outDone
	}
	srv.m.Connect(metrics.ConnectError)
	return s.h2RetryIf(route.RetryConnectFailure)
}

// h2cFailed handles an exchange that failed before the response head: a
// retry when the backend did not process the stream and no body byte was
// taken, else 502 or 504, or nothing when the client is gone.
func (s *h2Stream) h2cFailed(b *route.Backend, err error) outcome {
	s.h.mu.Lock()
	reset, drained, tooLarge := s.reset, s.drained, s.tooLarge
	s.h.mu.Unlock()
	switch {
	case reset:
		s.clientGone()
		return outDone
	case tooLarge:
		return s.answerTooLarge()
	case drained:
		s.answerLocal(answer{status: 502, cause: causeBackendGone})
		return outDone
	case s.up.timedOut.Load():
		s.answerLocal(answer{status: 504, cause: causeBackendTimeout})
		return outDone
	case h2cUnprocessed(err) && s.up.taken == 0:
		return s.h2RetryIf(route.RetryRefusedStream)
	}
	b.RecordFailure()
	s.answerLocal(answer{status: 502, cause: causeBackendError})
	return outDone
}

// h2cUnprocessed reports whether err proves that the backend did not
// process the stream (RFC 9113 §8.7): REFUSED_STREAM, or a GOAWAY whose
// last stream id is below it, or a connection that could take no stream.
// The GOAWAY errors are unexported sentinels of x/net/http2 (the same that
// its Transport retries), matched by text; TestH2CGoAwayRetry pins them.
func h2cUnprocessed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		return se.Code == http2.ErrCodeRefusedStream
	}
	switch msg := err.Error(); {
	case msg == "http2: Transport received Server's graceful shutdown GOAWAY",
		msg == "http2: client conn not usable",
		msg == "http2: client conn could not be established",
		strings.HasPrefix(msg, "http2: Transport received GOAWAY from server ErrCode:"):
		return true
	}
	return false
}

// relayH2C relays the response: HEADERS, DATA as it comes, then the
// trailers or an empty DATA frame with END_STREAM. A response without a
// body keeps END_STREAM on its HEADERS, so that a gRPC trailers-only
// response (an error status) stays one HEADERS frame.
func (s *h2Stream) relayH2C(resp *http.Response) outcome {
	st, u, buf := s.st, s.up, s.st.Back
	st.Metrics.BackendEnd = time.Now()
	st.Ctx.Status = resp.StatusCode
	u.resp = resp
	if resp.ContentLength == 0 || s.method == "HEAD" {
		for {
			_, err := resp.Body.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return s.h2cBodyFailed(err, false)
			}
		}
		if len(resp.Trailer) == 0 {
			if _, err := s.h.sendHead(s, u.encodeHead, nil, true); err != nil {
				return s.h2cBodyFailed(err, true)
			}
			return outDone
		}
	}
	if _, err := s.h.sendHead(s, u.encodeHead, nil, false); err != nil {
		return s.h2cBodyFailed(err, true)
	}
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if werr := s.h.sendData(s, buf[:n], false); werr != nil {
				return s.h2cBodyFailed(werr, true)
			}
			st.Metrics.BytesOut += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.h2cBodyFailed(err, false)
		}
	}
	var err error
	if len(resp.Trailer) > 0 {
		_, err = s.h.sendHead(s, u.encodeTrailers, nil, true)
	} else {
		err = s.h.sendData(s, nil, true)
	}
	if err != nil {
		return s.h2cBodyFailed(err, true)
	}
	return outDone
}

// h2cBodyFailed ends a stream whose response failed after its head came:
// a backend RST_STREAM is relayed with its code; other failures leave
// finish to send RST_STREAM(INTERNAL_ERROR).
func (s *h2Stream) h2cBodyFailed(err error, client bool) outcome {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	var se http2.StreamError
	switch {
	case s.tooLarge:
		s.st.Ctx.Cause = causeBodyTooLarge
	case s.reset || client:
		s.st.Ctx.Cause = causeClientAborted
	case s.drained:
		s.st.Ctx.Cause = causeBackendGone
	case errors.As(err, &se):
		s.st.Ctx.Cause = causeBackendError
		s.reset = true
		s.interruptLocked()
		_ = h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: s.id, val: uint32(se.Code)})
	default:
		s.st.Ctx.Cause = causeBackendError
	}
	return outDone
}

// encodeHead writes the response head: :status, then the backend's fields
// with lower-case names, without connection-specific ones.
func (u *h2Up) encodeHead(enc *hpack.Encoder) {
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusStrings[u.resp.StatusCode%600]})
	u.encodeFields(enc, u.resp.Header)
	if v := u.s.affinityValue(); v != nil {
		_ = enc.WriteField(hpack.HeaderField{Name: "set-cookie", Value: bstr(v)})
	}
}

// encodeTrailers writes the response trailers.
func (u *h2Up) encodeTrailers(enc *hpack.Encoder) { u.encodeFields(enc, u.resp.Trailer) }

func (u *h2Up) encodeFields(enc *hpack.Encoder, h http.Header) {
	for k, vv := range h {
		switch classify(sbytes(k)) {
		case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding, kindUpgrade:
			continue
		}
		u.lower = append(u.lower[:0], k...)
		for i, c := range u.lower {
			if 'A' <= c && c <= 'Z' {
				u.lower[i] = c + 'a' - 'A'
			}
		}
		for _, v := range vv {
			_ = enc.WriteField(hpack.HeaderField{Name: bstr(u.lower), Value: v})
		}
	}
}

// startPump streams the request body from the ring into pw on a goroutine
// of the stream; trailers, if any, go into tr before the body ends.
func (u *h2Up) startPump(pw *io.PipeWriter, tr http.Header) {
	u.pw = pw
	go u.pump(pw, tr)
}

func (u *h2Up) pump(pw *io.PipeWriter, tr http.Header) {
	s := u.s
	for {
		p, end, err := s.ringNext()
		if err != nil {
			_ = pw.CloseWithError(err)
			break
		}
		if end {
			s.h.mu.Lock()
			trailerLines(s.trailers, func(name, value string) {
				k := strings.Clone(name)
				tr[k] = append(tr[k], strings.Clone(value))
			})
			s.h.mu.Unlock()
			_ = pw.Close()
			break
		}
		n, werr := pw.Write(p)
		if n > 0 {
			u.taken += int64(n)
			s.st.Metrics.BytesIn += int64(n)
			s.consume(n)
		}
		if werr != nil {
			break
		}
	}
	s.pumpDone <- struct{}{}
}

// stopPump stops the body pump, if it runs, and waits for it.
func (u *h2Up) stopPump() {
	if u.pw == nil {
		return
	}
	s := u.s
	s.h.mu.Lock()
	s.stopBody = true
	s.h.cond.Broadcast()
	s.h.mu.Unlock()
	_ = u.pw.CloseWithError(errH2StreamGone)
	<-s.pumpDone
	s.h.mu.Lock()
	s.stopBody = false
	s.h.mu.Unlock()
	u.pw = nil
}

// trailerLines calls f for each "name: value" line of an HTTP/1.1
// trailer section; the strings alias b.
func trailerLines(b []byte, f func(name, value string)) {
	for len(b) > 0 {
		i := strings.Index(bstr(b), "\r\n")
		if i < 0 {
			i = len(b)
		}
		line := bstr(b[:i])
		b = b[min(i+2, len(b)):]
		c := strings.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		f(line[:c], strings.Trim(line[c+1:], " \t"))
	}
}
