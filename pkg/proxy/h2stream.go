package proxy

import (
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kakehi/kakehi/pkg/stream"
)

// Pseudo-header bits of h2Stream.pseudo.
const (
	pseudoMethod uint8 = 1 << iota
	pseudoScheme
	pseudoAuthority
	pseudoPath
)

// h2Stream is one HTTP/2 request: its pkg/stream.Stream (Front is the
// request body ring, Back holds the HTTP/1.1 request head, then the
// response), the facts decoded from its header block, and its
// flow-control state. h2Streams are pooled.
type h2Stream struct {
	h  *h2Conn
	id uint32
	st *stream.Stream

	// written by the reader loop while it decodes the header block, then
	// read-only (the goroutine starts after):
	method, authority, path, routePath, ua, reqID string
	pseudo                                        uint8
	regular                                       bool
	lineDone                                      bool
	hostField                                     bool
	head                                          int   // HTTP/1.1 head bytes in st.Back[:head]
	cl                                            int64 // content-length, -1 when absent
	fields                                        int
	listSize                                      uint32
	malformed                                     bool
	answer                                        int    // status of a local answer decided while decoding
	cause                                         string // its cause
	endStream                                     bool   // END_STREAM on the HEADERS frame
	haveXF                                        [4]bool
	cookies                                       []string

	// guarded by h.mu:
	sendWin      int64
	recvWin      int64
	recvPending  int64 // consumed body bytes not yet returned by WINDOW_UPDATE
	bodyR, bodyN int   // body bytes buffered in st.Front, as a ring
	bodyIn       int64
	reqEnd       bool // the client sent END_STREAM
	reset        bool // RST_STREAM sent or received, or the connection failed
	clientReset  bool
	stalled      bool
	stopBody     bool // the pump must stop
	drained      bool // the backend left the table (OnGone)
	sentEnd      bool
	bc           *bconn
	trailers     []byte // request trailer lines for a chunked body
	up           *h2Up  // the h2c exchange, when the backend speaks h2c
	rtr          []byte // response trailer section of a chunked HTTP/1.1 response
	bodyLimit    int64  // the route's request body bound; 0: none or not routed yet
	tooLarge     bool   // the body went over bodyLimit (h2limit.go)
	sentHead     bool   // a response header block was sent

	// owned by the stream goroutine:
	scan     headScan
	resp     response
	chunk    chunker
	meta     []byte
	pumping  bool
	pumpErr  error
	pumpDone chan struct{}
	goneFn   func()      // s.onGone, made once per pooled h2Stream
	pol      policyState // the route's policy, see policy.go
}

var h2StreamPool = sync.Pool{New: func() any {
	s := &h2Stream{pumpDone: make(chan struct{}, 1), meta: make([]byte, 0, 64)}
	s.goneFn = s.onGone
	return s
}}

// getH2Stream returns a pooled h2Stream for stream id on h holding st.
func getH2Stream(h *h2Conn, id uint32, st *stream.Stream) *h2Stream {
	s := h2StreamPool.Get().(*h2Stream)
	cookies, meta, trailers, fields, done, gone := s.cookies[:0], s.meta[:0], s.trailers[:0], s.resp.fields[:0], s.pumpDone, s.goneFn
	*s = h2Stream{h: h, id: id, st: st, cl: -1, cookies: cookies, meta: meta, trailers: trailers, pumpDone: done, goneFn: gone}
	if n := h.srv.opt.MaxHeaderCount + 1; cap(fields) < n {
		fields = make([]field, 0, n)
	}
	s.resp.fields = fields
	return s
}

func putH2Stream(s *h2Stream) {
	s.h, s.st, s.bc = nil, nil, nil
	clear(s.cookies)
	h2StreamPool.Put(s)
}

// sbytes returns the bytes of s without copying; they must not be changed.
func sbytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// onHeaders handles a HEADERS frame: a new stream, or trailers.
func (h *h2Conn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return connErr(http2.ErrCodeProtocol, "even stream id from a client")
	}
	h.inBlock, h.blockFrames, h.blockBytes, h.dh, h.trailer = true, 1, 0, nil, false
	h.mu.Lock()
	old := h.streams[id]
	// A stream the client ended or reset is closed to new HEADERS (RFC
	// 9113 §5.1), even while its response is still being finished.
	closed := h.recentlyClosedLocked(id) || old != nil && (old.clientReset || old.reqEnd)
	h.mu.Unlock()
	var err error
	switch {
	case old != nil && closed:
		return connErr(http2.ErrCodeStreamClosed, "HEADERS on a closed stream")
	case old != nil:
		err = h.startTrailers(old, f)
	case id <= h.maxClientID && closed:
		return connErr(http2.ErrCodeStreamClosed, "HEADERS on a closed stream")
	case id <= h.maxClientID:
		return connErr(http2.ErrCodeProtocol, "stream id not increasing")
	default:
		err = h.startStream(f)
	}
	if err != nil {
		return err
	}
	return h.feedBlock(f.HeaderBlockFragment(), f.HeadersEnded())
}

// startStream prepares the decoding of a new stream's header block.
func (h *h2Conn) startStream(f *http2.HeadersFrame) error {
	id := f.StreamID
	h.maxClientID = id
	h.refund()
	if f.HasPriority() && f.Priority.StreamDep == id {
		return h.streamError(id, http2.ErrCodeProtocol) // decoded and discarded
	}
	h.mu.Lock()
	refuse := h.goAway && id > h.lastID
	full := h.active >= h.maxStreams
	h.mu.Unlock()
	if refuse {
		return nil // above the last stream of our GOAWAY: ignored
	}
	if full {
		return h.streamError(id, http2.ErrCodeRefusedStream)
	}
	st, err := h.srv.pool.Get()
	if err != nil {
		h.srv.m.Refused(503, causePoolExhausted)
		return h.streamError(id, http2.ErrCodeRefusedStream)
	}
	s := getH2Stream(h, id, st)
	s.endStream = f.StreamEnded()
	st.Metrics.Start = time.Now()
	h.dh = s
	return nil
}

// startTrailers prepares the decoding of a trailer block on s.
func (h *h2Conn) startTrailers(s *h2Stream, f *http2.HeadersFrame) error {
	h.mu.Lock()
	ended := s.reqEnd
	h.mu.Unlock()
	if ended {
		return h.streamError(s.id, http2.ErrCodeStreamClosed)
	}
	if err := h.spend(); err != nil {
		return err
	}
	h.trailer, h.tbad, h.tbuf, h.tid = true, !f.StreamEnded(), h.tbuf[:0], s.id
	return nil
}

// onContinuation feeds a CONTINUATION frame to the decoder, within the
// CONTINUATION flood bounds.
func (h *h2Conn) onContinuation(f *http2.ContinuationFrame) error {
	frag := f.HeaderBlockFragment()
	if h.blockFrames++; h.blockFrames > h2MaxHeaderFrames {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many CONTINUATION frames")
	}
	if len(frag) == 0 && !f.HeadersEnded() {
		if err := h.spend(); err != nil {
			return err
		}
	}
	return h.feedBlock(frag, f.HeadersEnded())
}

// feedBlock decodes a header block fragment; the block's total size is
// bounded by twice the header list size.
func (h *h2Conn) feedBlock(frag []byte, end bool) error {
	if h.blockBytes += len(frag); h.blockBytes > 2*int(h.maxListSize)+4096 {
		return connErr(http2.ErrCodeEnhanceYourCalm, "header block too large")
	}
	if _, err := h.dec.Write(frag); err != nil {
		return connErr(http2.ErrCodeCompression, "hpack: "+err.Error())
	}
	if !end {
		return nil
	}
	h.inBlock = false
	if err := h.dec.Close(); err != nil {
		return connErr(http2.ErrCodeCompression, "hpack: truncated block")
	}
	h.dec.SetEmitEnabled(true)
	if h.trailer {
		return h.endTrailers()
	}
	if s := h.dh; s != nil {
		h.dh = nil
		return h.endHeaders(s)
	}
	return nil
}

// onField is the decoder's emit function.
func (h *h2Conn) onField(f hpack.HeaderField) {
	if h.trailer {
		h.onTrailerField(f)
		return
	}
	s := h.dh
	if s == nil || s.malformed || s.answer != 0 {
		return
	}
	if s.listSize += f.Size(); s.listSize > h.maxListSize {
		s.localAnswer(431, causeHeaderTooLarge)
		return
	}
	if !validH2Name(f.Name) || !validH2Value(f.Value) {
		s.malformed = true
		return
	}
	if f.Name[0] == ':' {
		s.onPseudo(f)
		return
	}
	s.onRegular(f)
}

// validH2Name reports whether a field name is a lower-case token, or ':'
// and one (RFC 9113 §8.2.1, §8.3).
func validH2Name(n string) bool {
	if len(n) > 0 && n[0] == ':' {
		n = n[1:]
	}
	if len(n) == 0 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if classes[c]&cTchar == 0 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// validH2Value reports whether a field value has no control bytes other
// than HTAB (so no CR, LF or NUL) and no leading or trailing whitespace.
func validH2Value(v string) bool {
	if len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		return false
	}
	return validValue(sbytes(v))
}

// localAnswer makes the stream answer status by itself; the rest of the
// block is decoded and ignored.
func (s *h2Stream) localAnswer(status int, cause string) {
	if s.answer == 0 {
		s.answer, s.cause = status, cause
	}
}

// onPseudo records a pseudo-header field (RFC 9113 §8.3.1).
func (s *h2Stream) onPseudo(f hpack.HeaderField) {
	var bit uint8
	switch f.Name {
	case ":method":
		bit, s.method = pseudoMethod, f.Value
	case ":scheme":
		bit = pseudoScheme
		if f.Value != "http" && f.Value != "https" {
			s.localAnswer(400, causeBadRequest)
		}
	case ":authority":
		bit, s.authority = pseudoAuthority, f.Value
	case ":path":
		bit, s.path = pseudoPath, f.Value
	default: // :status, :protocol (no extended CONNECT), unknown
		s.malformed = true
		return
	}
	if s.regular || s.pseudo&bit != 0 {
		s.malformed = true // after a regular field, or repeated
	}
	s.pseudo |= bit
}

// onRegular translates a regular field into an HTTP/1.1 field line,
// refusing connection-specific fields (RFC 9113 §8.2.2).
func (s *h2Stream) onRegular(f hpack.HeaderField) {
	s.regular = true
	if !s.lineDone && !s.writeRequestLine() {
		return
	}
	if s.fields++; s.fields > s.h.srv.opt.MaxHeaderCount {
		s.localAnswer(431, causeHeaderTooLarge)
		return
	}
	trust := s.h.srv.opt.TrustForwardedHeaders
	switch k := classify(sbytes(f.Name)); k {
	case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding, kindUpgrade:
		s.malformed = true
		return
	case kindTE:
		if f.Value != "trailers" {
			s.malformed = true
			return
		}
	case kindHost:
		if s.hostField || (s.pseudo&pseudoAuthority != 0 && !eqFoldBytes(sbytes(f.Value), sbytes(s.authority))) {
			s.malformed = true // repeated, or disagrees with :authority
			return
		}
		s.hostField = true
		if s.pseudo&pseudoAuthority != 0 {
			return // the Host line was written from :authority
		}
		if !validHost(sbytes(f.Value)) {
			s.localAnswer(400, causeBadRequest)
			return
		}
		s.authority = f.Value
	case kindContentLength:
		n, ok := parseDecimal(sbytes(f.Value))
		if !ok || s.cl >= 0 {
			s.malformed = true
			return
		}
		s.cl = n
	case kindXForwardedFor, kindXForwardedProto, kindXForwardedHost, kindXForwardedPort:
		if !trust {
			return
		}
		s.haveXF[k-kindXForwardedFor] = true
	case kindXRequestID:
		s.reqID = f.Value
	case kindUserAgent:
		s.ua = f.Value
	case kindProxyAuthorization, kindHTTP2Settings:
		return
	default:
		if f.Name == "cookie" {
			s.cookies = append(s.cookies, f.Value)
			return
		}
	}
	s.putLine(f.Name, f.Value)
}

// putLine appends "name: value\r\n" to the HTTP/1.1 head, keeping
// headRoom bytes free for the fields the proxy adds.
func (s *h2Stream) putLine(name, value string) {
	buf := s.st.Back
	if s.head+len(name)+len(value)+4 > len(buf)-headRoom {
		s.localAnswer(431, causeHeaderTooLarge)
		return
	}
	s.head += copy(buf[s.head:], name)
	s.head += copy(buf[s.head:], ": ")
	s.head += copy(buf[s.head:], value)
	s.head += copy(buf[s.head:], "\r\n")
}

// writeRequestLine writes the request line and the Host field once the
// pseudo-header fields are all known. It reports false when the request
// is malformed or answered locally.
func (s *h2Stream) writeRequestLine() bool {
	s.lineDone = true
	if s.pseudo&pseudoMethod == 0 || !validToken(sbytes(s.method)) {
		s.malformed = true
		return false
	}
	if s.method == "CONNECT" {
		// RFC 9113 §8.5: :authority only. Not supported, as over HTTP/1.1.
		if s.pseudo != pseudoMethod|pseudoAuthority {
			s.malformed = true
		} else {
			s.localAnswer(501, causeNotImplemented)
		}
		return false
	}
	if s.pseudo&(pseudoScheme|pseudoPath) != pseudoScheme|pseudoPath || s.path == "" {
		s.malformed = true
		return false
	}
	if !s.checkPath() {
		return false
	}
	buf := s.st.Back
	if len(s.method)+len(s.path)+11 > len(buf)-headRoom {
		s.localAnswer(431, causeHeaderTooLarge)
		return false
	}
	s.head = copy(buf, s.method)
	s.head += copy(buf[s.head:], " ")
	s.head += copy(buf[s.head:], s.path)
	s.head += copy(buf[s.head:], " HTTP/1.1\r\n")
	if s.pseudo&pseudoAuthority != 0 {
		if !validHost(sbytes(s.authority)) {
			s.localAnswer(400, causeBadRequest)
			return false
		}
		s.putLine("Host", s.authority)
	}
	return s.answer == 0
}

// checkPath validates :path as the HTTP/1.1 front validates a target, and
// sets routePath (the path without the query).
func (s *h2Stream) checkPath() bool {
	p := s.path
	if p == "*" && s.method == "OPTIONS" {
		s.routePath = p
		return true
	}
	if p[0] != '/' {
		s.localAnswer(400, causeBadRequest)
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if classes[c]&cTarget == 0 || c == '%' && (i+2 >= len(p) || classes[p[i+1]]&cHex == 0 || classes[p[i+2]]&cHex == 0) {
			s.localAnswer(400, causeBadRequest)
			return false
		}
	}
	rp := p
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			rp = p[:i]
			break
		}
	}
	if badPath(sbytes(rp)) {
		s.localAnswer(400, causeBadRequest)
		return false
	}
	s.routePath = rp
	return true
}

// finishHead completes the HTTP/1.1 head after the last field: Cookie,
// the proxy's X-Forwarded-* and X-Request-Id, the body framing, and the
// empty line.
func (s *h2Stream) finishHead() {
	if !s.lineDone && !s.writeRequestLine() {
		return
	}
	if s.malformed || s.answer != 0 {
		return
	}
	if s.authority == "" && !s.hostField {
		s.malformed = true // RFC 9113 §8.3.1: http(s) needs an authority
		return
	}
	if len(s.cookies) > 0 { // RFC 9113 §8.2.3: one field for HTTP/1.1
		s.putCookies()
	}
	c := s.h.c
	s.putLine("X-Forwarded-For", bstr(c.xff))
	if !s.haveXF[kindXForwardedProto-kindXForwardedFor] {
		s.putLine("X-Forwarded-Proto", c.proto)
	}
	if !s.haveXF[kindXForwardedHost-kindXForwardedFor] && s.authority != "" {
		s.putLine("X-Forwarded-Host", s.authority)
	}
	if !s.haveXF[kindXForwardedPort-kindXForwardedFor] && c.port != nil {
		s.putLine("X-Forwarded-Port", bstr(c.port))
	}
	if s.reqID == "" {
		s.meta = s.h.srv.ids.appendID(s.meta[:0])
		s.reqID = unsafe.String(&s.meta[0], len(s.meta))
		s.putLine("X-Request-Id", s.reqID)
	}
	switch {
	case s.endStream && s.cl > 0:
		s.malformed = true // RFC 9113 §8.1.1: no DATA, yet a length
		return
	case !s.endStream && s.cl < 0:
		s.putLine("Transfer-Encoding", "chunked")
	}
	if s.head+2 > len(s.st.Back) {
		s.localAnswer(431, causeHeaderTooLarge)
		return
	}
	s.head += copy(s.st.Back[s.head:], "\r\n")
}

// putCookies writes the Cookie fields joined with "; ".
func (s *h2Stream) putCookies() {
	n := 0
	for _, c := range s.cookies {
		n += len(c) + 2
	}
	buf := s.st.Back
	if s.head+n+8 > len(buf)-headRoom {
		s.localAnswer(431, causeHeaderTooLarge)
		return
	}
	s.head += copy(buf[s.head:], "Cookie: ")
	for i, c := range s.cookies {
		if i > 0 {
			s.head += copy(buf[s.head:], "; ")
		}
		s.head += copy(buf[s.head:], c)
	}
	s.head += copy(buf[s.head:], "\r\n")
}

// endHeaders starts a decoded stream, or refuses a malformed one with
// RST_STREAM(PROTOCOL_ERROR) without forwarding anything.
func (h *h2Conn) endHeaders(s *h2Stream) error {
	s.finishHead()
	st := s.st
	ctx := &st.Ctx
	ctx.ClientAddr, ctx.Proto = h.c.remote, "HTTP/2.0"
	ctx.Method, ctx.Authority, ctx.Path, ctx.UserAgent, ctx.RequestID = s.method, s.authority, s.path, s.ua, s.reqID
	if s.malformed {
		_ = st.Unlink() // counted and logged like any request
		ctx.Status, ctx.Cause = 400, causeBadRequest
		st.Release(time.Now())
		putH2Stream(s)
		return h.streamError(s.id, http2.ErrCodeProtocol)
	}
	_ = st.Open(st.Metrics.Start)
	s.sendWin, s.recvWin = 0, int64(h.initRecv)
	h.mu.Lock()
	s.sendWin = h.initSend
	s.reqEnd = s.endStream
	h.streams[s.id] = s
	h.active++
	h.lastID = s.id
	h.mu.Unlock()
	h.wg.Add(1)
	go s.run()
	return nil
}

// onTrailerField collects a request trailer field as an HTTP/1.1 line.
func (h *h2Conn) onTrailerField(f hpack.HeaderField) {
	if h.tbad {
		return
	}
	if !validH2Name(f.Name) || !validH2Value(f.Value) || f.Name[0] == ':' {
		h.tbad = true
		return
	}
	switch classify(sbytes(f.Name)) {
	case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding, kindUpgrade, kindTE:
		h.tbad = true
		return
	case kindContentLength, kindHost:
		return // not allowed in a chunked trailer section; dropped
	}
	if len(h.tbuf)+len(f.Name)+len(f.Value)+4 > int(h.maxListSize) {
		h.tbad = true
		return
	}
	h.tbuf = append(h.tbuf, f.Name...)
	h.tbuf = append(h.tbuf, ": "...)
	h.tbuf = append(h.tbuf, f.Value...)
	h.tbuf = append(h.tbuf, "\r\n"...)
}

// endTrailers ends the request body of the stream whose trailers were
// decoded.
func (h *h2Conn) endTrailers() error {
	h.trailer = false
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[h.tid]
	if s == nil || s.reset {
		return nil
	}
	if h.tbad || (s.cl >= 0 && s.bodyIn != s.cl) {
		return h.resetLocked(s, http2.ErrCodeProtocol)
	}
	s.trailers = append(s.trailers[:0], h.tbuf...)
	s.reqEnd = true
	h.cond.Broadcast()
	return nil
}

// statusStrings holds the :status values, so that encoding one does not
// allocate.
var statusStrings = func() (t [600]string) {
	for i := 100; i < 600; i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()
