package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Preface is the client connection preface (RFC 9113 §3.4). The HTTP/1.1
// front reads its first 18 bytes as a request head ("PRI * HTTP/2.0") and
// hands the connection over; h2PrefaceRest is what is left to check.
const (
	h2Preface     = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2PrefaceHead = "PRI * HTTP/2.0\r\n\r\n"
	h2PrefaceRest = "SM\r\n\r\n"
)

// Flood budgets of one HTTP/2 connection. Each is a count of frames, not a
// rate, and every one of them ends the connection with
// GOAWAY(ENHANCE_YOUR_CALM) when exhausted; H2.md tabulates them.
const (
	// h2ControlBudget is how many frames that cost the proxy work but carry
	// no request (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, DATA without
	// payload or END_STREAM, HEADERS blocks of trailers) a connection may
	// send before it does useful work. Each stream opened and each DATA or
	// HEADERS frame the proxy sends gives one back, up to the budget.
	h2ControlBudget = 1000
	// h2ResetBudget is how many stream resets a connection may cause, in
	// either direction: a client RST_STREAM on a stream still in progress
	// (Rapid Reset, CVE-2023-44487), a stream refused over the concurrency
	// limit, and every RST_STREAM the proxy sends because of a client's
	// frame (MadeYouReset, CVE-2025-8671). Each stream that completes
	// normally gives one back, up to the budget.
	h2ResetBudget = 200
	// h2MaxQueuedControl bounds the control frames (SETTINGS and PING
	// acks, RST_STREAM, WINDOW_UPDATE) queued for a client that does not
	// read (about 100 KiB); past it the connection ends with
	// GOAWAY(ENHANCE_YOUR_CALM). It is above what the budgets let a client
	// cause, so that the budgets are what floods meet first.
	h2MaxQueuedControl = 2*h2ControlBudget + 2*h2ResetBudget + 1024
	// h2MaxHeaderFrames bounds the HEADERS and CONTINUATION frames of one
	// header block (CONTINUATION flood, CVE-2024-27316).
	h2MaxHeaderFrames = 32
	// h2GoAwayLinger is how long a connection that sent a GOAWAY for an
	// error keeps reading (and discarding) before it closes, so that the
	// client receives the GOAWAY rather than a TCP reset.
	h2GoAwayLinger = time.Second
	// h2ShutdownPingWait bounds the round trip between Shutdown's first
	// GOAWAY (last stream 2^31-1) and the second one.
	h2ShutdownPingWait = time.Second
	// h2ConnWindow is the connection-level receive window the proxy
	// advertises. Per-stream windows bound what is buffered, so the
	// connection window is returned as soon as DATA is buffered.
	h2ConnWindow = 1 << 20
)

// h2MaxWindow is the largest flow-control window (RFC 9113 §6.9.1).
const h2MaxWindow = 1<<31 - 1

// h2Error is a connection error: GOAWAY with code, then close.
type h2Error struct {
	code   http2.ErrCode
	reason string
}

func (e h2Error) Error() string { return "http2: " + e.code.String() + ": " + e.reason }

func connErr(code http2.ErrCode, reason string) error { return h2Error{code, reason} }

// h2Conn is one HTTP/2 client connection. Its reader loop runs on the
// connection's goroutine and is the only one to read frames and decode
// header blocks; a writer goroutine sends queued control frames; each
// stream in progress has one goroutine for its backend exchange (bounded
// by MAX_CONCURRENT_STREAMS), which writes its own HEADERS and DATA.
type h2Conn struct {
	srv *Server
	c   *conn // the tracked client connection: addresses, shutdown hooks
	nc  net.Conn
	tls *tls.ConnectionState

	// immutable after newH2Conn:
	maxStreams  int
	initRecv    int32 // SETTINGS_INITIAL_WINDOW_SIZE advertised
	maxFrame    uint32
	maxListSize uint32

	// owned by the reader goroutine:
	br          *bufio.Reader
	fr          *http2.Framer
	dec         *hpack.Decoder
	dh          *h2Stream // new stream whose header block is being decoded
	inBlock     bool      // a header block is being decoded
	trailer     bool      // the block is a trailer block of stream tid
	tid         uint32
	tbad        bool   // the trailer block is malformed
	tbuf        []byte // trailer lines being decoded
	blockFrames int
	blockBytes  int
	maxClientID uint32
	recvConn    int32 // connection receive window left
	connCredit  int32 // DATA bytes received and not yet returned
	control     int   // h2ControlBudget left
	rdl         deadline
	gotSettings bool

	// guarded by mu:
	mu        sync.Mutex
	cond      sync.Cond
	streams   map[uint32]*h2Stream
	active    int   // streams whose goroutine has not finished
	sendConn  int64 // connection send window
	initSend  int64 // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame uint32
	ctl       []h2Ctl
	dead      bool // the client connection failed or is closing
	goAway    bool // no new streams (GOAWAY sent or received)
	lastID    uint32
	resets    int        // h2ResetBudget left
	closedIDs [32]uint32 // recently closed stream ids, for STREAM_CLOSED
	closedNxt int

	shutdownOnce sync.Once
	pingAck      chan struct{} // Shutdown's PING was acknowledged
	wake         chan struct{} // the writer goroutine has control frames
	shutReq      chan struct{} // closed by shutdown
	quit         chan struct{} // closed when the reader loop ends
	sent         atomic.Int64  // HEADERS and DATA frames sent, refunded to control
	closing      atomic.Bool   // a GOAWAY for an error is being sent: no deadline extension
	wg           sync.WaitGroup

	// writer state, guarded by wmu:
	wmu      sync.Mutex
	wwait    atomic.Int32 // goroutines waiting for wmu
	bw       *bufio.Writer
	fw       *http2.Framer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	wdl      deadline
	werr     error
	ctlDrain []h2Ctl
}

// h2Ctl is a control frame queued for the writer goroutine.
type h2Ctl struct {
	typ  http2.FrameType
	id   uint32 // stream, or last stream id for GOAWAY
	val  uint32 // error code or window increment
	ack  bool
	data [8]byte
}

var (
	h2ReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
	h2WriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
)

// ServeH2Conn serves nc, a connection on which the client speaks HTTP/2
// from its first byte (TLS with ALPN "h2", where tlsState is the completed
// handshake, or h2c with prior knowledge, tlsState nil). It returns when
// the connection is closed, and closes nc. The connection is tracked like
// the listener's: Shutdown sends it GOAWAY and waits for its streams.
func (s *Server) ServeH2Conn(nc net.Conn, tlsState *tls.ConnectionState) {
	c := newConn(s, nc)
	if tlsState != nil {
		c.proto = "https"
	}
	if !s.addConn(c) {
		_ = nc.Close()
		return
	}
	defer c.finish()
	s.serveH2(c, nil, tlsState)
}

// h2Preface reports whether the head just read is the first line of the
// HTTP/2 connection preface, as the first bytes of the connection (h2c
// with prior knowledge, RFC 9113 §3.3).
func (c *conn) h2Preface() bool {
	sc := &c.ex.scan
	return !c.h1Served && string(c.st.Front[sc.start:sc.pos]) == h2PrefaceHead
}

// handOffH2 serves the connection as HTTP/2 from the bytes after the
// preface's first line; the HTTP/1.1 stream is given back unused.
func (c *conn) handOffH2() {
	pre := append([]byte{}, c.st.Front[c.ex.scan.pos:c.fw]...)
	c.release()
	var cs *tls.ConnectionState
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cs = &st
	}
	c.srv.serveH2(c, pre, cs)
}

// serveH2 runs HTTP/2 on c. pre holds bytes already read from the client
// after the preface's first line ("PRI * HTTP/2.0\r\n\r\n"), when the
// HTTP/1.1 front handed the connection over; nil means the whole preface
// is still to be read. The caller closes the connection afterwards.
func (s *Server) serveH2(c *conn, pre []byte, tlsState *tls.ConnectionState) {
	h := newH2Conn(s, c, tlsState)
	c.h2.Store(h)
	defer h.release()
	if s.shutting.Load() {
		return
	}
	var r io.Reader = c.nc
	if pre != nil {
		r = io.MultiReader(bytes.NewReader(pre), c.nc)
	}
	h.br.Reset(r)
	h.serve(pre != nil)
}

func newH2Conn(s *Server, c *conn, tlsState *tls.ConnectionState) *h2Conn {
	o := &s.opt
	h := &h2Conn{
		srv: s, c: c, nc: c.nc, tls: tlsState,
		maxStreams:  o.H2MaxConcurrentStreams,
		initRecv:    int32(o.H2InitialWindowSize),
		maxFrame:    uint32(o.H2MaxFrameSize),
		maxListSize: uint32(o.H2MaxHeaderListSize),
		recvConn:    h2ConnWindow,
		control:     h2ControlBudget,
		streams:     make(map[uint32]*h2Stream),
		sendConn:    65535,
		initSend:    65535,
		peerFrame:   16384,
		resets:      h2ResetBudget,
		pingAck:     make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
		shutReq:     make(chan struct{}),
		quit:        make(chan struct{}),
	}
	h.cond.L = &h.mu
	h.br = h2ReaderPool.Get().(*bufio.Reader)
	h.bw = h2WriterPool.Get().(*bufio.Writer)
	h.bw.Reset(c.nc)
	h.fr = http2.NewFramer(nil, h.br)
	h.fr.SetReuseFrames()
	h.fr.SetMaxReadFrameSize(h.maxFrame)
	h.dec = hpack.NewDecoder(4096, h.onField)
	h.dec.SetMaxStringLength(int(h.maxListSize))
	h.fw = http2.NewFramer(h.bw, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	// No dynamic table: header strings may alias pooled buffers, and a
	// table the client cannot shrink is memory it does not pay for.
	h.enc.SetMaxDynamicTableSizeLimit(0)
	return h
}

// release returns the pooled reader and writer once every goroutine of
// the connection has stopped.
func (h *h2Conn) release() {
	h.br.Reset(nil)
	h2ReaderPool.Put(h.br)
	h.wmu.Lock()
	h.bw.Reset(nil)
	h2WriterPool.Put(h.bw)
	h.bw = nil
	h.wmu.Unlock()
}

// serve runs the reader loop until the connection ends, then stops every
// stream and waits for their goroutines and the writer's.
func (h *h2Conn) serve(sawHead bool) {
	h.wg.Add(1)
	go h.writeLoop()
	err := h.start(sawHead)
	for err == nil {
		err = h.readFrame()
	}
	var he h2Error
	if errors.As(err, &he) {
		h.goAwayAndLinger(he.code, he.reason)
	}
	h.mu.Lock()
	h.dead = true
	h.mu.Unlock()
	close(h.quit)
	if s := h.dh; s != nil { // a header block cut short
		h.dh = nil
		s.st.Release(time.Now())
		putH2Stream(s)
	}
	_ = h.nc.SetDeadline(aLongTimeAgo) // stops a writer stuck on a client that does not read
	h.stopStreams()
	h.wg.Wait()
}

// start sends the server's SETTINGS and reads the client's preface and
// first SETTINGS frame.
func (h *h2Conn) start(sawHead bool) error {
	o := &h.srv.opt
	h.lockWrite()
	_ = h.fw.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(h.maxStreams)},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(h.initRecv)},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: h.maxFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h.maxListSize},
	)
	_ = h.fw.WriteWindowUpdate(0, h2ConnWindow-65535)
	h.unlockWrite()
	_ = h.nc.SetReadDeadline(time.Now().Add(o.ReadHeaderTimeout))
	want := h2Preface
	if sawHead {
		want = h2PrefaceRest
	}
	var buf [len(h2Preface)]byte
	if _, err := io.ReadFull(h.br, buf[:len(want)]); err != nil {
		return err
	}
	if string(buf[:len(want)]) != want {
		return connErr(http2.ErrCodeProtocol, "bad connection preface")
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		return h.frameError(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return connErr(http2.ErrCodeProtocol, "first frame is not SETTINGS")
	}
	h.gotSettings = true
	return h.onSettings(sf)
}

// readFrame reads and handles one frame. A nil error means go on.
func (h *h2Conn) readFrame() error {
	h.setReadDeadline()
	f, err := h.fr.ReadFrame()
	if err != nil {
		if isTimeout(err) && h.busy() {
			h.rdl.forget()
			return nil // streams in progress: the client may just be waiting
		}
		return h.frameError(err)
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		return h.onData(f)
	case *http2.HeadersFrame:
		return h.onHeaders(f)
	case *http2.ContinuationFrame:
		return h.onContinuation(f)
	case *http2.SettingsFrame:
		if err := h.spend(); err != nil {
			return err
		}
		return h.onSettings(f)
	case *http2.PingFrame:
		return h.onPing(f)
	case *http2.WindowUpdateFrame:
		return h.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return h.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return h.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
		return h.spend()
	case *http2.GoAwayFrame:
		h.mu.Lock()
		h.goAway = true
		h.mu.Unlock()
		return nil
	case *http2.PushPromiseFrame:
		return connErr(http2.ErrCodeProtocol, "PUSH_PROMISE from a client")
	}
	return nil // unknown frame types are ignored (RFC 9113 §4.1)
}

// frameError turns a Framer read error into what the reader loop returns:
// a stream error is answered with RST_STREAM and the loop goes on.
func (h *h2Conn) frameError(err error) error {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return h.streamError(se.StreamID, se.Code)
	case errors.As(err, &ce):
		return connErr(http2.ErrCode(ce), "frame error")
	case errors.Is(err, http2.ErrFrameTooLarge):
		return connErr(http2.ErrCodeFrameSize, "frame too large")
	}
	return err
}

// busy reports whether streams are in progress.
func (h *h2Conn) busy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active > 0 && !h.dead
}

// setReadDeadline arms the idle timeout while no stream is in progress.
func (h *h2Conn) setReadDeadline() {
	setRead(h.nc, &h.rdl, time.Now(), h.srv.opt.IdleTimeout)
}

// spend takes one frame from the control budget, after crediting the
// HEADERS and DATA frames sent since the last look.
func (h *h2Conn) spend() error {
	if h.control--; h.control < 0 {
		h.control = min(h.control+int(h.sent.Swap(0)), h2ControlBudget)
		if h.control < 0 {
			return connErr(http2.ErrCodeEnhanceYourCalm, "too many control frames")
		}
	}
	return nil
}

// refund gives one frame back to the control budget (reader goroutine).
func (h *h2Conn) refund() {
	if h.control < h2ControlBudget {
		h.control++
	}
}

// onSettings applies the client's settings and acknowledges them.
func (h *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return connErr(http2.ErrCode(ce), "bad setting")
			}
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - h.initSend
			for _, st := range h.streams {
				if st.sendWin+delta > h2MaxWindow {
					return connErr(http2.ErrCodeFlowControl, "window overflow")
				}
				st.sendWin += delta
			}
			h.initSend = int64(s.Val)
			h.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			h.peerFrame = s.Val
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.queueLocked(h2Ctl{typ: http2.FrameSettings, ack: true})
}

// onPing answers a PING, or notes the ack of Shutdown's.
func (h *h2Conn) onPing(f *http2.PingFrame) error {
	if f.IsAck() {
		select {
		case h.pingAck <- struct{}{}:
		default:
		}
		return nil
	}
	if err := h.spend(); err != nil {
		return err
	}
	return h.queue(h2Ctl{typ: http2.FramePing, ack: true, data: f.Data})
}

// onWindowUpdate credits a send window.
func (h *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	if err := h.spend(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		if h.sendConn+inc > h2MaxWindow {
			return connErr(http2.ErrCodeFlowControl, "connection window overflow")
		}
		h.sendConn += inc
		h.cond.Broadcast()
		return nil
	}
	if f.StreamID > h.maxClientID {
		return connErr(http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream")
	}
	s := h.streams[f.StreamID]
	if s == nil || s.sentEnd {
		return nil // closed: ignored
	}
	if s.sendWin+inc > h2MaxWindow {
		return h.resetLocked(s, http2.ErrCodeFlowControl)
	}
	s.sendWin += inc
	h.cond.Broadcast()
	return nil
}

// onReset handles a client's RST_STREAM.
func (h *h2Conn) onReset(f *http2.RSTStreamFrame) error {
	if f.StreamID > h.maxClientID {
		return connErr(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[f.StreamID]
	if s == nil || s.reset {
		return nil
	}
	s.reset, s.clientReset = true, true
	s.interruptLocked()
	if h.resets--; h.resets < 0 {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream resets")
	}
	return nil
}

// streamError resets stream id with code (a stream error) and charges the
// reset budget (the client made the proxy reset a stream).
func (h *h2Conn) streamError(id uint32, code http2.ErrCode) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[id]; s != nil {
		return h.resetLocked(s, code)
	}
	if err := h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: id, val: uint32(code)}); err != nil {
		return err
	}
	if h.resets--; h.resets < 0 {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream errors")
	}
	return nil
}

// resetLocked sends RST_STREAM for s and stops its exchange.
func (h *h2Conn) resetLocked(s *h2Stream, code http2.ErrCode) error {
	if !s.reset {
		s.reset = true
		s.interruptLocked()
		if err := h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: s.id, val: uint32(code)}); err != nil {
			return err
		}
	}
	if h.resets--; h.resets < 0 {
		return connErr(http2.ErrCodeEnhanceYourCalm, "too many stream errors")
	}
	return nil
}

// noteClosedLocked remembers a closed stream id so that a late frame on
// it is told STREAM_CLOSED rather than PROTOCOL_ERROR.
func (h *h2Conn) noteClosedLocked(id uint32) {
	h.closedIDs[h.closedNxt] = id
	h.closedNxt = (h.closedNxt + 1) % len(h.closedIDs)
}

func (h *h2Conn) recentlyClosedLocked(id uint32) bool {
	for _, c := range h.closedIDs {
		if c == id {
			return true
		}
	}
	return false
}

// stopStreams resets every stream after the connection failed.
func (h *h2Conn) stopStreams() {
	h.mu.Lock()
	for _, s := range h.streams {
		s.reset = true
		s.interruptLocked()
	}
	h.cond.Broadcast()
	h.mu.Unlock()
}

// goAwayAndLinger sends GOAWAY(code), half-closes, and reads and discards
// for up to h2GoAwayLinger so that the client gets the GOAWAY.
func (h *h2Conn) goAwayAndLinger(code http2.ErrCode, reason string) {
	h.mu.Lock()
	h.goAway = true
	last := h.maxClientID
	h.dead = true
	h.cond.Broadcast()
	for _, s := range h.streams {
		s.reset = true
		s.interruptLocked()
	}
	h.mu.Unlock()
	// A writer stuck on a client that does not read gives up the lock
	// within the linger time; nothing extends the deadline any more.
	h.closing.Store(true)
	_ = h.nc.SetWriteDeadline(time.Now().Add(h2GoAwayLinger))
	h.lockWrite()
	if h.werr == nil {
		_ = h.fw.WriteGoAway(last, code, []byte(reason))
		h.werr = h.bw.Flush()
	}
	h.wmu.Unlock()
	if cw, ok := h.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	end := time.Now().Add(h2GoAwayLinger)
	_ = h.nc.SetReadDeadline(end)
	var buf [4096]byte
	for time.Now().Before(end) {
		if _, err := h.nc.Read(buf[:]); err != nil {
			return
		}
	}
}
