package proxy

import (
	"errors"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// run is the stream's goroutine: it routes the request with the current
// table (loaded once), forwards it over an HTTP/1.1 keep-alive connection
// of the backend pools, and relays the response as HEADERS and DATA.
func (s *h2Stream) run() {
	defer s.finish()
	if s.answer != 0 {
		s.answerLocal(answer{status: s.answer, cause: s.cause})
		return
	}
	if a, ok := s.h.c.hostAnswer(s.authority, s.path); ok {
		s.answerLocal(a)
		return
	}
	var t *route.Target
	if tbl := s.h.srv.store.Load(); tbl != nil {
		t = tbl.Match(s.authority, s.routePath)
	}
	if t == nil {
		s.answerLocal(answer{status: 404, cause: causeNoRoute, detail: "no route for this host and path"})
		return
	}
	ctx := &s.st.Ctx
	ctx.Namespace, ctx.Ingress, ctx.Service = t.Namespace, t.Ingress, t.Service
	if t.Cluster == nil {
		s.answerLocal(answer{status: 503, cause: causeNoBackend, detail: "no backend: service " + t.Namespace + "/" + t.Service + " is not resolved"})
		return
	}
	if !s.applyPolicy(t) {
		return
	}
	if h2cTarget(t) {
		s.useH2C()
	}
	s.forward(t.Cluster)
}

// forward links the stream to a backend of cl and runs attempts while a
// retry is safe (see HTTP1.md and pkg/stream/LIFECYCLE.md).
func (s *h2Stream) forward(cl *route.Cluster) {
	st := s.st
	for races := 0; ; {
		b := s.pol.pick(cl, st.LastBackend())
		if b == nil {
			s.answerNoBackend(cl)
			return
		}
		st.OnGone = s.goneFn
		switch err := st.Link(b, time.Now()); {
		case err == nil:
		case errors.Is(err, stream.ErrBackendGone):
			if races++; races < 4 {
				continue
			}
			s.answerNoBackend(cl)
			return
		default:
			s.answerLocal(answer{status: 502, cause: causeBackendError})
			return
		}
		if s.attempt(b) != outRetry {
			return
		}
		if st.Attempts() >= s.pol.maxAttempts(&s.h.srv.opt) {
			s.answerLocal(answer{status: 503, cause: causeRetriesExhausted,
				detail: "no backend could be reached", retryAfter: s.h.srv.opt.RetryAfter})
			return
		}
		_ = st.Relink()
		s.h.srv.m.Retry()
	}
}

func (s *h2Stream) answerNoBackend(cl *route.Cluster) {
	detail := "no backend: " + cl.Reason()
	if cl.Reason() == "" {
		detail = "no backend: no ready endpoint for " + cl.Name()
	}
	s.answerLocal(answer{status: 503, cause: causeNoBackend, detail: detail})
}

// attempt runs one try against b.
func (s *h2Stream) attempt(b *route.Backend) outcome {
	if s.up != nil {
		return s.attemptH2C(b)
	}
	srv := s.h.srv
	replayable := s.endStream && idempotent(s.method)
	bc := srv.backends.get(b, time.Now(), !replayable)
	if bc == nil {
		var err error
		bc, err = srv.backends.dial(b, s.pol.connectTimeout(&srv.opt))
		if err != nil {
			b.RecordFailure()
			if isTimeout(err) && !s.pol.retryConnectTimeout() {
				srv.m.Connect(metrics.ConnectTimeout)
				s.answerLocal(answer{status: 504, cause: causeConnectTimeout, detail: "backend connect timed out"})
				return outDone
			}
			srv.m.Connect(metrics.ConnectError)
			return s.h2RetryIf(route.RetryConnectFailure)
		}
		srv.m.Connect(metrics.ConnectOK)
	}
	h := s.h
	h.mu.Lock()
	gone := s.reset
	s.bc = bc
	h.mu.Unlock()
	if gone {
		srv.backends.close(bc)
		s.clientGone()
		return outDone
	}
	out := s.exchange(bc)
	h.mu.Lock()
	s.bc = nil
	h.mu.Unlock()
	return out
}

// exchange sends the request head (and starts the body pump) and relays
// the response.
func (s *h2Stream) exchange(bc *bconn) outcome {
	o := &s.h.srv.opt
	now := time.Now()
	setWrite(bc.nc, &bc.wdl, now, s.pol.responseTimeout(o))
	setRead(bc.nc, &bc.rdl, now, s.pol.responseTimeout(o))
	n, err := bc.nc.Write(s.st.Back[:s.head])
	if err != nil {
		s.h.srv.backends.close(bc)
		if n == 0 && !s.gone() {
			return s.h2RetryIf(route.RetryConnectFailure | route.RetryResetBeforeResponse)
		}
		return s.failBeforeResponse(bc, err, true)
	}
	if !s.endStream {
		s.startPump(bc)
	}
	return s.readResponse(bc)
}

// gone reports whether the stream was reset or its backend drained.
func (s *h2Stream) gone() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.reset
}

// readResponse reads the response head into Back, forwarding interim
// responses, then relays the final one.
func (s *h2Stream) readResponse(bc *bconn) outcome {
	o, back := &s.h.srv.opt, s.st.Back
	base := s.respBase()
	rw, got := base, false
	s.scan.reset(base)
	for {
		switch s.scan.scan(back, rw, o.MaxHeaderCount+1) {
		case scanDone:
			if !parseResponse(back, &s.scan, &s.resp) || s.resp.status == 101 {
				return s.badResponse(bc)
			}
			if s.resp.status >= 200 {
				if s.retryResponse(bc, rw) {
					return outRetry
				}
				return s.relay(bc, rw)
			}
			if _, err := s.h.sendHead(s, s.encodeResponse, nil, false); err != nil {
				return s.abort(bc, causeClientAborted)
			}
			end := s.resp.end
			rw = base + copy(back[base:], back[end:rw])
			s.scan.reset(base)
			continue
		case scanBareLF, scanTooMany:
			return s.badResponse(bc)
		}
		if rw == len(back) {
			return s.badResponse(bc)
		}
		n, err := bc.nc.Read(back[rw:])
		if n > 0 {
			rw += n
			got = true
			continue
		}
		return s.failBeforeResponse(bc, err, got)
	}
}

func (s *h2Stream) badResponse(bc *bconn) outcome {
	s.stopPump(bc)
	s.h.srv.backends.close(bc)
	bc.b.RecordFailure()
	s.answerLocal(answer{status: 502, cause: causeBackendError})
	return outDone
}

// failBeforeResponse handles a backend failure before the response head:
// a retry when that is safe, else 502 or 504, or nothing when the client
// is gone.
func (s *h2Stream) failBeforeResponse(bc *bconn, err error, got bool) outcome {
	s.stopPump(bc)
	s.h.srv.backends.close(bc)
	s.h.mu.Lock()
	reset, drained := s.reset, s.drained
	s.h.mu.Unlock()
	switch {
	case reset:
		s.clientGone()
		return outDone
	case s.overLimit():
		return s.answerTooLarge()
	case drained:
		s.answerLocal(answer{status: 502, cause: causeBackendGone})
		return outDone
	case s.pumpErr != nil && s.pumpErr != errH2StreamGone:
		bc.b.RecordFailure()
		s.answerLocal(answer{status: 502, cause: causeBackendError})
		return outDone
	case isTimeout(err):
		s.answerLocal(answer{status: 504, cause: causeBackendTimeout})
		return outDone
	case !got && bc.reused && s.endStream && idempotent(s.method):
		return s.h2RetryIf(route.RetryResetBeforeResponse)
	}
	bc.b.RecordFailure()
	s.answerLocal(answer{status: 502, cause: causeBackendError})
	return outDone
}

// clientGone records a stream the client reset (logged as 499, as nginx).
func (s *h2Stream) clientGone() {
	if s.st.State() == stream.Linked {
		_ = s.st.Unlink()
	}
	s.st.Ctx.Status, s.st.Ctx.Cause = 499, causeClientAborted
}

// relay forwards the final response whose head is parsed in Back (rw bytes
// read), then its body, and pools or closes the backend connection.
func (s *h2Stream) relay(bc *bconn, rw int) outcome {
	st, r, back := s.st, &s.resp, s.st.Back
	st.Metrics.BackendEnd = time.Now()
	st.Ctx.Status = r.status
	mode := bodyLength
	switch {
	case r.bodyless(s.method == "HEAD"):
		mode = bodyNone
	case r.chunked:
		mode = bodyChunked
	case r.hasTE || r.contentLength < 0:
		mode = bodyClose
	}
	body, left, clean := back[r.end:r.end], int64(0), true
	switch mode {
	case bodyNone:
		clean = rw == r.end
	case bodyLength:
		in := min(r.contentLength, int64(rw-r.end))
		body, left, clean = back[r.end:r.end+int(in)], r.contentLength-in, r.end+int(in) == rw
	case bodyChunked:
		s.chunk.reset(0, s.h.srv.opt.MaxHeaderCount, s.h.srv.opt.MaxHeaderBytes)
		n, out, err := s.feedChunk(back[r.end:rw])
		if err != nil {
			return s.badResponse(bc)
		}
		body, clean = back[r.end:r.end+out], r.end+n == rw
	case bodyClose:
		body = back[r.end:rw]
	}
	done := mode == bodyNone || (mode == bodyLength && left == 0) || (mode == bodyChunked && s.chunk.done())
	n, err := s.h.sendHead(s, s.encodeResponse, body, done && s.rtr == nil)
	if err == nil && n < len(body) {
		err = s.h.sendData(s, body[n:], done && s.rtr == nil)
	}
	if err == nil && done && s.rtr != nil {
		err = s.sendTrailerLines()
	}
	if err != nil {
		return s.abort(bc, causeClientAborted)
	}
	st.Metrics.BytesOut = int64(len(body))
	switch {
	case done:
	case mode == bodyLength:
		err = s.relayLength(bc, left)
	case mode == bodyChunked:
		clean, err = s.relayChunked(bc)
	case mode == bodyClose:
		err = s.relayUntilClose(bc)
	}
	if err != nil {
		return s.abort(bc, causeOf(err))
	}
	return s.endExchange(bc, clean && mode != bodyClose && r.reusable())
}

// encodeResponse writes the response head in Back as HTTP/2 fields:
// :status, then the fields with lower-case names, without the
// connection-specific ones (RFC 9113 §8.2.2), with Date and Server added.
func (s *h2Stream) encodeResponse(enc *hpack.Encoder) {
	r, buf := &s.resp, s.st.Back
	status := statusStrings[r.status%600]
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	toks := r.connTokens[:r.nConnTokens]
	for i := range r.fields {
		f := &r.fields[i]
		if f.drop || f.kind == kindTransferEncoding || f.kind == kindUpgrade ||
			len(toks) > 0 && !framingField(f.kind) && namedByConnection(buf, f, toks) {
			continue
		}
		name := f.name.in(buf)
		for j, c := range name {
			if 'A' <= c && c <= 'Z' {
				name[j] = c + 'a' - 'A'
			}
		}
		_ = enc.WriteField(hpack.HeaderField{Name: bstr(name), Value: bstr(f.value.in(buf))})
	}
	if r.status >= 200 {
		if !r.hasDate {
			_ = enc.WriteField(hpack.HeaderField{Name: "date", Value: bstr(dates.get(time.Now()))})
		}
		if !r.hasServer {
			_ = enc.WriteField(hpack.HeaderField{Name: "server", Value: "kakehi"})
		}
		if v := s.affinityValue(); v != nil {
			_ = enc.WriteField(hpack.HeaderField{Name: "set-cookie", Value: bstr(v)})
		}
	}
}

// relayLength relays the n body bytes still to come.
func (s *h2Stream) relayLength(bc *bconn, n int64) error {
	buf := s.st.Back
	for n > 0 {
		k, err := s.readBackend(bc, buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		n -= int64(k)
		if err := s.h.sendData(s, buf[:k], n == 0); err != nil {
			return errClientGone
		}
		s.st.Metrics.BytesOut += int64(k)
	}
	return nil
}

// relayChunked relays the rest of a chunked body, decoded, and the
// backend's trailers as a trailing HEADERS frame.
func (s *h2Stream) relayChunked(bc *bconn) (clean bool, err error) {
	buf, k := s.st.Back, &s.chunk
	for !k.done() {
		m, err := s.readBackend(bc, buf)
		if err != nil {
			return false, err
		}
		n, out, ferr := s.feedChunk(buf[:m])
		if ferr != nil {
			return false, errBackendBody
		}
		if out > 0 || k.done() {
			if err := s.h.sendData(s, buf[:out], k.done() && s.rtr == nil); err != nil {
				return false, errClientGone
			}
		}
		s.st.Metrics.BytesOut += int64(out)
		clean = n == m
	}
	if s.rtr != nil && s.sendTrailerLines() != nil {
		return false, errClientGone
	}
	return clean, nil
}

// relayUntilClose relays a body delimited by the backend closing.
func (s *h2Stream) relayUntilClose(bc *bconn) error {
	buf := s.st.Back
	for {
		setRead(bc.nc, &bc.rdl, time.Now(), s.h2BodyIdle())
		k, err := bc.nc.Read(buf)
		if k > 0 {
			if werr := s.h.sendData(s, buf[:k], false); werr != nil {
				return errClientGone
			}
			s.st.Metrics.BytesOut += int64(k)
		}
		if err != nil {
			if isEOF(err) {
				if werr := s.h.sendData(s, nil, true); werr != nil {
					return errClientGone
				}
				return nil
			}
			if isTimeout(err) && !s.gone() {
				return errBackendStalled
			}
			return errBackendBody
		}
	}
}

// readBackend reads body bytes with the body idle timeout.
func (s *h2Stream) readBackend(bc *bconn, p []byte) (int, error) {
	setRead(bc.nc, &bc.rdl, time.Now(), s.h2BodyIdle())
	n, err := bc.nc.Read(p)
	if err != nil && n == 0 {
		if s.gone() {
			return 0, errClientGone
		}
		if isTimeout(err) {
			return 0, errBackendStalled
		}
		return 0, errBackendBody
	}
	return n, nil
}

// endExchange waits for the request body to be sent, or stops it when the
// response ended first, and pools or closes the backend connection.
func (s *h2Stream) endExchange(bc *bconn, reusable bool) outcome {
	if s.pumping {
		s.h.mu.Lock()
		ended := s.reqEnd
		s.h.mu.Unlock()
		if ended {
			reusable = s.waitPump() == nil && reusable
		} else {
			s.stopPump(bc)
			reusable = false
		}
	}
	s.h.mu.Lock()
	reusable = reusable && !s.reset && !s.drained
	s.bc = nil // no interrupt may touch bc once it is pooled
	s.h.mu.Unlock()
	if reusable {
		s.h.srv.backends.put(bc, time.Now())
	} else {
		s.h.srv.backends.close(bc)
	}
	return outDone
}

// abort ends an exchange whose response started: the stream is reset.
func (s *h2Stream) abort(bc *bconn, cause string) outcome {
	s.stopPump(bc)
	s.h.srv.backends.close(bc)
	s.h.mu.Lock()
	drained := s.drained
	s.h.mu.Unlock()
	if drained {
		cause = causeBackendGone
	}
	if s.overLimit() {
		cause = causeBodyTooLarge
	}
	s.st.Ctx.Cause = cause
	return outDone
}

// answerLocal sends a response generated by the proxy.
func (s *h2Stream) answerLocal(a answer) {
	st := s.st
	if st.State() == stream.Linked {
		_ = st.Unlink()
	}
	st.Ctx.Status, st.Ctx.Cause = a.status, a.cause
	body := a.detail
	if body == "" {
		body = causeDetail(a.cause)
	}
	if body == "" {
		body = statusText(a.status)
	}
	buf := append(st.Back[:0], body...)
	buf = append(buf, '\n')
	cl := strconv.AppendInt(buf[len(buf):], int64(len(buf)), 10)
	ra := strconv.AppendInt(cl[len(cl):], int64(a.retryAfter), 10)
	head := s.method == "HEAD"
	enc := func(enc *hpack.Encoder) {
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusStrings[a.status%600]})
		_ = enc.WriteField(hpack.HeaderField{Name: "server", Value: "kakehi"})
		_ = enc.WriteField(hpack.HeaderField{Name: "date", Value: bstr(dates.get(time.Now()))})
		_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/plain; charset=utf-8"})
		_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: bstr(cl)})
		if a.retryAfter > 0 {
			_ = enc.WriteField(hpack.HeaderField{Name: "retry-after", Value: bstr(ra)})
		}
		if a.location != "" {
			_ = enc.WriteField(hpack.HeaderField{Name: "location", Value: a.location})
		}
	}
	if head {
		buf = buf[:0]
	}
	n, err := s.h.sendHead(s, enc, buf, true)
	if err == nil && n < len(buf) {
		err = s.h.sendData(s, buf[n:], true)
	}
	if err == nil {
		st.Metrics.BytesOut = int64(len(buf))
	}
}

// finish ends the stream: one access-log record, the stream back to the
// pool, and the stream's slot freed. A response that did not end is reset;
// a complete response to a request whose body is still coming tells the
// client to stop with RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
func (s *h2Stream) finish() {
	h := s.h
	s.st.Finish(time.Now())
	h.mu.Lock()
	delete(h.streams, s.id)
	h.noteClosedLocked(s.id)
	h.active--
	switch {
	case !s.sentEnd && !s.reset:
		_ = h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: s.id, val: uint32(http2.ErrCodeInternal)})
	case s.sentEnd && !s.reqEnd && !s.reset:
		_ = h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: s.id, val: uint32(http2.ErrCodeNo)})
	}
	if s.sentEnd && !s.clientReset && h.resets < h2ResetBudget {
		h.resets++
	}
	drained := h.goAway && h.active == 0
	h.cond.Broadcast()
	h.mu.Unlock()
	s.st.Release(time.Now())
	putH2Stream(s)
	if drained {
		_ = h.nc.SetReadDeadline(aLongTimeAgo)
	}
	h.wg.Done()
}

// onGone is the stream's OnGone hook: its backend left the route table
// and the drain grace is over. It runs on another goroutine, under the
// stream index lock, and only marks the stream and interrupts its I/O.
func (s *h2Stream) onGone() {
	s.h.mu.Lock()
	s.drained = true
	s.interruptLocked()
	s.h.mu.Unlock()
}
