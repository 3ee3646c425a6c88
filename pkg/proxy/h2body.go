package proxy

import (
	"errors"
	"net"
	"strconv"
	"time"

	"golang.org/x/net/http2"
)

// onData handles a DATA frame: flow control, content-length, and the
// body ring of its stream (RFC 9113 §6.1, §6.9, §8.1.1).
func (h *h2Conn) onData(f *http2.DataFrame) error {
	id, data, flen := f.StreamID, f.Data(), int32(f.Length)
	if flen > h.recvConn {
		return connErr(http2.ErrCodeFlowControl, "connection window exceeded")
	}
	h.recvConn -= flen
	h.connCredit += flen
	if h.connCredit >= h2ConnWindow/4 {
		if err := h.queue(h2Ctl{typ: http2.FrameWindowUpdate, val: uint32(h.connCredit)}); err != nil {
			return err
		}
		h.recvConn += h.connCredit
		h.connCredit = 0
	}
	if id > h.maxClientID {
		return connErr(http2.ErrCodeProtocol, "DATA on an idle stream")
	}
	if len(data) == 0 && !f.StreamEnded() {
		if err := h.spend(); err != nil {
			return err
		}
	} else if len(data) > 0 {
		h.refund()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[id]
	switch {
	case s == nil:
		h.mu.Unlock()
		err := h.streamError(id, http2.ErrCodeStreamClosed)
		h.mu.Lock()
		return err
	case s.clientReset:
		// Closed by the client (RFC 9113 §5.1).
		return h.queueLocked(h2Ctl{typ: http2.FrameRSTStream, id: id, val: uint32(http2.ErrCodeStreamClosed)})
	case s.reqEnd:
		return h.resetLocked(s, http2.ErrCodeStreamClosed)
	case s.reset || s.tooLarge:
		return nil
	case int64(flen) > s.recvWin:
		return h.resetLocked(s, http2.ErrCodeFlowControl)
	case s.cl >= 0 && s.bodyIn+int64(len(data)) > s.cl:
		return h.resetLocked(s, http2.ErrCodeProtocol)
	case len(data) > len(s.st.Front)-s.bodyN:
		// More than the window advertised in SETTINGS (sent before the
		// client saw them).
		return h.resetLocked(s, http2.ErrCodeFlowControl)
	case s.bodyLimit > 0 && s.bodyIn+int64(len(data)) > s.bodyLimit:
		return h.overLimitLocked(s)
	}
	s.recvWin -= int64(flen)
	s.recvPending += int64(flen) - int64(len(data)) // padding is returned at once
	s.ringPut(data)
	s.bodyIn += int64(len(data))
	if f.StreamEnded() {
		if s.cl >= 0 && s.bodyIn != s.cl {
			return h.resetLocked(s, http2.ErrCodeProtocol)
		}
		s.reqEnd = true
	}
	h.cond.Broadcast()
	return nil
}

// ringPut appends p to the body ring in st.Front (h.mu held; the caller
// checked the space).
func (s *h2Stream) ringPut(p []byte) {
	buf := s.st.Front
	w := (s.bodyR + s.bodyN) % len(buf)
	n := copy(buf[w:], p)
	copy(buf, p[n:])
	s.bodyN += len(p)
}

// ringNext waits for buffered body bytes and returns the next contiguous
// run of them (they stay buffered until consumed), and whether the body
// ended. It fails when the stream is reset or the connection dies.
func (s *h2Stream) ringNext() ([]byte, bool, error) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		switch {
		case s.reset || h.dead || s.stopBody:
			return nil, false, errH2StreamGone
		case s.tooLarge:
			return nil, false, errH2BodyTooLarge
		case s.bodyN > 0:
			end := min(s.bodyR+s.bodyN, len(s.st.Front))
			return s.st.Front[s.bodyR:end], false, nil
		case s.reqEnd:
			return nil, true, nil
		}
		h.cond.Wait()
	}
}

// consume frees n body bytes of the ring and returns window to the client
// once half of it is used, or once the ring is empty.
func (s *h2Stream) consume(n int) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	s.bodyR = (s.bodyR + n) % len(s.st.Front)
	s.bodyN -= n
	s.recvPending += int64(n)
	if s.reqEnd || s.reset || s.recvPending == 0 {
		return
	}
	if s.recvPending >= int64(h.initRecv)/2 || s.bodyN == 0 {
		if h.queueLocked(h2Ctl{typ: http2.FrameWindowUpdate, id: s.id, val: uint32(s.recvPending)}) == nil {
			s.recvWin += s.recvPending
			s.recvPending = 0
		}
	}
}

// errH2BodyWrite says that the backend failed while taking the body.
var errH2BodyWrite = errors.New("proxy: backend failed while taking the request body")

// pump streams the request body from the ring to the backend, chunked
// when the client gave no content-length, and reports its end on
// pumpDone. It runs on its own goroutine only for requests with a body.
func (s *h2Stream) pump(bc *bconn) {
	err := s.pumpBody(bc)
	s.pumpErr = err
	if err != nil {
		_ = bc.nc.SetReadDeadline(aLongTimeAgo) // the response cannot come now
	}
	s.pumpDone <- struct{}{}
}

func (s *h2Stream) pumpBody(bc *bconn) error {
	chunked := s.cl < 0
	idle := s.h2BodyIdle()
	var hdr [20]byte
	for {
		p, end, err := s.ringNext()
		if err != nil {
			return err
		}
		setWrite(bc.nc, &bc.wdl, time.Now(), idle)
		if end {
			if chunked {
				return s.writeLastChunk(bc)
			}
			return nil
		}
		if chunked {
			h := strconv.AppendInt(hdr[:0], int64(len(p)), 16)
			h = append(h, '\r', '\n')
			bufs := net.Buffers{h, p, []byte("\r\n")}
			_, err = bufs.WriteTo(bc.nc)
		} else {
			_, err = bc.nc.Write(p)
		}
		if err != nil {
			return errH2BodyWrite
		}
		s.st.Metrics.BytesIn += int64(len(p))
		s.consume(len(p))
	}
}

// writeLastChunk ends a chunked body with the request's trailers.
func (s *h2Stream) writeLastChunk(bc *bconn) error {
	s.h.mu.Lock()
	tr := s.trailers
	s.h.mu.Unlock()
	bufs := net.Buffers{[]byte("0\r\n"), tr, []byte("\r\n")}
	if _, err := bufs.WriteTo(bc.nc); err != nil {
		return errH2BodyWrite
	}
	return nil
}

// startPump starts the body pump for a request with a body.
func (s *h2Stream) startPump(bc *bconn) {
	s.pumping, s.pumpErr = true, nil
	go s.pump(bc)
}

// stopPump interrupts the pump if it runs and waits for it.
func (s *h2Stream) stopPump(bc *bconn) {
	if !s.pumping {
		return
	}
	select {
	case <-s.pumpDone:
	default:
		s.h.mu.Lock()
		s.stopBody = true
		s.h.cond.Broadcast()
		s.h.mu.Unlock()
		_ = bc.nc.SetWriteDeadline(aLongTimeAgo)
		<-s.pumpDone
	}
	s.pumping = false
}

// waitPump waits for the pump to send the whole body.
func (s *h2Stream) waitPump() error {
	if !s.pumping {
		return s.pumpErr
	}
	<-s.pumpDone
	s.pumping = false
	return s.pumpErr
}

// interruptLocked wakes the stream's goroutines (h.mu held): waits on the
// connection's condition, and I/O on the backend connection.
func (s *h2Stream) interruptLocked() {
	s.h.cond.Broadcast()
	if s.bc != nil {
		_ = s.bc.nc.SetDeadline(aLongTimeAgo)
	}
	if s.up != nil {
		s.up.interruptLocked()
	}
}
