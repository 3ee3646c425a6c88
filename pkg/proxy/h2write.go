package proxy

import (
	"errors"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// errH2StreamGone is returned to a stream goroutine whose stream was reset
// or whose connection failed: it must stop and clean up.
var errH2StreamGone = errors.New("proxy: http2 stream reset or connection gone")

// lockWrite takes the write lock. Writers that find others waiting leave
// the flush to the last of them, so that the frames of streams answering
// at the same time share one write system call.
func (h *h2Conn) lockWrite() {
	h.wwait.Add(1)
	h.wmu.Lock()
	h.wwait.Add(-1)
	// Control frames queued before this writer's turn go first: a SETTINGS
	// ACK must precede DATA sized by the window those settings changed.
	h.drainCtl()
}

// unlockWrite sends the queued control frames, flushes unless another
// writer is waiting, and releases the write lock.
func (h *h2Conn) unlockWrite() {
	h.drainCtl()
	if h.werr == nil && h.wwait.Load() == 0 && h.bw.Buffered() > 0 {
		h.setWriteDeadline(time.Now())
		if err := h.bw.Flush(); err != nil {
			h.writeFailed(err)
		}
	}
	h.wmu.Unlock()
}

// setWriteDeadline bounds the next flush (write lock held).
func (h *h2Conn) setWriteDeadline(now time.Time) {
	if h.closing.Load() {
		return
	}
	setWrite(h.nc, &h.wdl, now, h.srv.opt.BodyIdleTimeout)
}

// writeFailed records a write error (write lock held): the connection is
// dead, the reader is interrupted and every stream stops.
func (h *h2Conn) writeFailed(err error) {
	if h.werr != nil {
		return
	}
	h.werr = err
	h.mu.Lock()
	h.dead = true
	for _, s := range h.streams {
		s.reset = true
		s.interruptLocked()
	}
	h.cond.Broadcast()
	h.mu.Unlock()
	_ = h.nc.SetReadDeadline(aLongTimeAgo)
}

// queue queues a control frame for the writer goroutine.
func (h *h2Conn) queue(c h2Ctl) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.queueLocked(c)
}

// errH2Overflow ends a connection whose client does not read what it asks
// for.
var errH2Overflow = connErr(http2.ErrCodeEnhanceYourCalm, "control frames queued for a client that does not read")

// queueLocked is queue with h.mu held.
func (h *h2Conn) queueLocked(c h2Ctl) error {
	if len(h.ctl) >= h2MaxQueuedControl {
		return errH2Overflow
	}
	h.ctl = append(h.ctl, c)
	if len(h.ctl) == 1 {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// drainCtl writes the queued control frames (write lock held).
func (h *h2Conn) drainCtl() {
	h.mu.Lock()
	if len(h.ctl) == 0 {
		h.mu.Unlock()
		return
	}
	h.ctl, h.ctlDrain = h.ctlDrain[:0], h.ctl
	h.mu.Unlock()
	if h.werr != nil {
		return
	}
	for i := range h.ctlDrain {
		c := &h.ctlDrain[i]
		var err error
		switch c.typ {
		case http2.FrameSettings:
			err = h.fw.WriteSettingsAck()
		case http2.FramePing:
			err = h.fw.WritePing(c.ack, c.data)
		case http2.FrameRSTStream:
			err = h.fw.WriteRSTStream(c.id, http2.ErrCode(c.val))
		case http2.FrameWindowUpdate:
			err = h.fw.WriteWindowUpdate(c.id, c.val)
		case http2.FrameGoAway:
			err = h.fw.WriteGoAway(c.id, http2.ErrCode(c.val), nil)
		}
		if err != nil {
			h.writeFailed(err)
			return
		}
	}
}

// writeLoop is the writer goroutine: it sends control frames queued by
// the reader loop, and runs Shutdown's two-step GOAWAY.
func (h *h2Conn) writeLoop() {
	defer h.wg.Done()
	var timer *time.Timer
	var timeout <-chan time.Time
	shutReq := h.shutReq
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		case <-shutReq:
			shutReq = nil
			// First GOAWAY: no new streams after those in flight, whose
			// ids the proxy cannot know yet (RFC 9113 §6.8).
			_ = h.queue(h2Ctl{typ: http2.FrameGoAway, id: h2MaxWindow})
			_ = h.queue(h2Ctl{typ: http2.FramePing, data: [8]byte{'s', 'h', 'u', 't', 'd', 'o', 'w', 'n'}})
			timer = time.NewTimer(h2ShutdownPingWait)
			timeout = timer.C
		case <-h.pingAck:
			if timeout != nil {
				timeout = nil
				h.finalGoAway()
			}
		case <-timeout:
			timeout = nil
			h.finalGoAway()
		}
		h.lockWrite()
		h.unlockWrite()
	}
}

// finalGoAway sends the GOAWAY that names the last stream the proxy will
// process, and wakes the reader so that the connection closes once the
// streams in flight are done.
func (h *h2Conn) finalGoAway() {
	h.mu.Lock()
	h.goAway = true
	last := h.lastID
	_ = h.queueLocked(h2Ctl{typ: http2.FrameGoAway, id: last})
	h.mu.Unlock()
	_ = h.nc.SetReadDeadline(aLongTimeAgo)
}

// shutdown starts the graceful close of the connection (Server.Shutdown).
// It does not block.
func (h *h2Conn) shutdown() {
	h.shutdownOnce.Do(func() { close(h.shutReq) })
}

// awaitWindow waits until up to want bytes may be sent on s and takes
// them from the send windows. It fails when the stream is reset, the
// connection fails, or no window opens for BodyIdleTimeout.
func (h *h2Conn) awaitWindow(s *h2Stream, want int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t *time.Timer
	for {
		if s.reset || h.dead || s.stalled {
			if t != nil {
				t.Stop()
			}
			s.stalled = false
			return 0, errH2StreamGone
		}
		n := min(int64(want), h.sendConn, s.sendWin, int64(h.peerFrame))
		if n > 0 {
			if t != nil {
				t.Stop()
			}
			h.sendConn -= n
			s.sendWin -= n
			return int(n), nil
		}
		if t == nil {
			t = time.AfterFunc(h.srv.opt.BodyIdleTimeout, func() {
				h.mu.Lock()
				s.stalled = true
				h.cond.Broadcast()
				h.mu.Unlock()
			})
		}
		h.cond.Wait()
	}
}

// tryWindow takes up to want bytes of send window without waiting.
func (h *h2Conn) tryWindow(s *h2Stream, want int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.reset || h.dead {
		return 0
	}
	n := min(int64(want), h.sendConn, s.sendWin, int64(h.peerFrame))
	if n <= 0 {
		return 0
	}
	h.sendConn -= n
	s.sendWin -= n
	return int(n)
}

// writeHeaderBlock writes the header block in h.hbuf as HEADERS and
// CONTINUATION frames (write lock held).
func (h *h2Conn) writeHeaderBlock(id uint32, end bool, frame uint32) error {
	block := h.hbuf.Bytes()
	first := block
	if uint32(len(first)) > frame {
		first = block[:frame]
	}
	block = block[len(first):]
	err := h.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first,
		EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		frag := block
		if uint32(len(frag)) > frame {
			frag = block[:frame]
		}
		block = block[len(frag):]
		err = h.fw.WriteContinuation(id, len(block) == 0, frag)
	}
	return err
}

// sendHead encodes and writes a header block for s, with body bytes
// (when the window allows) and END_STREAM after them when end is set. It
// returns how many body bytes were written. encode writes the fields with
// the connection's encoder; the strings it passes may alias buffers, since
// the encoder keeps no dynamic table.
func (h *h2Conn) sendHead(s *h2Stream, encode func(*hpack.Encoder), body []byte, end bool) (int, error) {
	n := 0
	if len(body) > 0 {
		n = h.tryWindow(s, len(body))
	}
	h.mu.Lock()
	frame := h.peerFrame
	s.sentHead = true
	h.mu.Unlock()
	h.lockWrite()
	defer h.unlockWrite()
	if h.werr != nil {
		return 0, errH2StreamGone
	}
	h.hbuf.Reset()
	encode(h.enc)
	headEnd := end && len(body) == 0
	if err := h.writeHeaderBlock(s.id, headEnd, frame); err != nil {
		h.writeFailed(err)
		return 0, errH2StreamGone
	}
	if n > 0 {
		if err := h.fw.WriteData(s.id, end && n == len(body), body[:n]); err != nil {
			h.writeFailed(err)
			return 0, errH2StreamGone
		}
	}
	h.sent.Add(1)
	if end && n == len(body) {
		h.markSentEnd(s)
	}
	return n, nil
}

// sendData writes p as DATA frames on s within the flow-control windows,
// with END_STREAM on the last when end is set.
func (h *h2Conn) sendData(s *h2Stream, p []byte, end bool) error {
	for len(p) > 0 || end {
		n := 0
		if len(p) > 0 {
			var err error
			if n, err = h.awaitWindow(s, len(p)); err != nil {
				return err
			}
		}
		last := end && n == len(p)
		h.lockWrite()
		err := h.werr
		if err == nil {
			if err = h.fw.WriteData(s.id, last, p[:n]); err != nil {
				h.writeFailed(err)
			}
		}
		h.unlockWrite()
		if err != nil {
			return errH2StreamGone
		}
		h.sent.Add(1)
		if last {
			h.markSentEnd(s)
			return nil
		}
		p = p[n:]
	}
	return nil
}

func (h *h2Conn) markSentEnd(s *h2Stream) {
	h.mu.Lock()
	s.sentEnd = true
	h.mu.Unlock()
}
