package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// h1PumpBuf is the read size of an h1Pump.
const h1PumpBuf = 16 << 10

// errH1PumpStopped says that the pump was asked to stop.
var errH1PumpStopped = errors.New("proxy: body pump stopped")

// h1Pump streams an HTTP/1.1 request body (decoded when chunked, with its
// trailers) into the pipe the h2c backend client reads, on a goroutine of
// its own, while the connection goroutine relays the response.
type h1Pump struct {
	c    *conn
	pw   *io.PipeWriter
	tr   http.Header // request trailers, for a chunked body
	rtr  []byte      // raw trailer section
	k    chunker
	done chan struct{}
	halt atomic.Bool

	// results, written before done is closed:
	n          int64 // body bytes read from the client after the head's reads
	complete   bool  // the whole body was read
	leftover   bool  // bytes after a chunked body were read (pipelining)
	status     int   // the answer for a body error, 0 to just close
	cause      string
	clientGone bool
}

// startPump starts the body pump and returns the request body and its
// length for the backend client (0: unknown).
func (u *h1Up) startPump() (io.ReadCloser, int64) {
	pr, pw := io.Pipe()
	p := &h1Pump{c: u.c, pw: pw, done: make(chan struct{})}
	r := &u.c.ex.req
	if r.chunked {
		p.tr = make(http.Header)
	}
	u.pump = p
	go p.run()
	return pr, max(r.contentLength, 0)
}

func (p *h1Pump) run() {
	err := p.body()
	if err == nil {
		p.complete = true
		_ = p.pw.Close()
	} else {
		_ = p.pw.CloseWithError(err)
	}
	close(p.done)
}

func (p *h1Pump) body() error {
	c := p.c
	ex, o := c.ex, &c.srv.opt
	r := &ex.req
	buffered := c.st.Front[r.end:ex.bodyEnd]
	if !r.chunked {
		if _, err := p.pw.Write(buffered); err != nil {
			return err
		}
		return p.copyLength(ex.bodyLeft)
	}
	p.k.reset(ex.pol.maxBody(o), o.MaxHeaderCount, o.MaxHeaderBytes)
	if err := p.feed(buffered); err != nil {
		return err
	}
	buf := make([]byte, h1PumpBuf)
	for !p.k.done() {
		n, err := p.read(buf)
		if n > 0 {
			if ferr := p.feed(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err != nil && !p.k.done() {
			return err
		}
	}
	trailerLines(p.rtr, func(name, value string) {
		switch classify(sbytes(name)) {
		case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding,
			kindUpgrade, kindContentLength, kindHost, kindTE:
			return
		}
		k := http.CanonicalHeaderKey(name)
		p.tr[k] = append(p.tr[k], value)
	})
	return nil
}

// copyLength copies the left bytes of a body with a content-length.
func (p *h1Pump) copyLength(left int64) error {
	if left == 0 {
		return nil
	}
	buf := make([]byte, min(left, h1PumpBuf))
	for left > 0 {
		n, err := p.read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			left -= int64(n)
			if _, werr := p.pw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil && left > 0 {
			return err
		}
	}
	return nil
}

// read reads body bytes from the client with the body idle timeout.
func (p *h1Pump) read(buf []byte) (int, error) {
	c := p.c
	if p.halt.Load() {
		return 0, errH1PumpStopped
	}
	setRead(c.nc, &c.rdl, time.Now(), c.bodyIdle())
	n, err := c.read(buf)
	p.n += int64(n)
	if err != nil && n == 0 {
		switch {
		case p.halt.Load():
			return 0, errH1PumpStopped
		case isTimeout(err):
			p.status, p.cause = 408, causeClientTimeout
		default:
			p.clientGone, p.cause = true, causeClientAborted
		}
		return 0, err
	}
	return n, nil
}

// feed decodes raw chunked bytes and writes the data to the pipe.
func (p *h1Pump) feed(raw []byte) error {
	n, out, err := feedKeepTrailers(&p.k, raw, &p.rtr)
	if err != nil {
		p.status, p.cause = 400, causeBadRequest
		if errors.Is(err, errChunkTooLarge) {
			p.status, p.cause = 413, causeBodyTooLarge
		}
		return err
	}
	if n < len(raw) {
		p.leftover = true
	}
	if out > 0 {
		if _, werr := p.pw.Write(raw[:out]); werr != nil {
			return werr
		}
	}
	return nil
}

// stop interrupts the pump if it runs and waits for it.
func (p *h1Pump) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.halt.Store(true)
	_ = p.c.nc.SetReadDeadline(aLongTimeAgo)
	_ = p.pw.CloseWithError(errH1PumpStopped)
	<-p.done
	p.c.rdl = deadline{} // the connection closes; no deadline is cached
}

// finish stops the pump and reports whether the client connection can
// carry another request: the body was read to its end and no more.
func (p *h1Pump) finish() bool {
	p.stop()
	return p.complete && !p.leftover
}

// feedKeepTrailers is k.feed(p, true) that also keeps the raw trailer
// section in *tr (nil when it has no field); HTTP/1.1 clients to h2c
// backends and HTTP/2 clients of chunked backends share it.
func feedKeepTrailers(k *chunker, p []byte, tr *[]byte) (n, out int, err error) {
	for n < len(p) && k.state != ckDone {
		if k.state == ckData {
			m := int(min(int64(len(p)-n), k.size))
			copy(p[out:], p[n:n+m])
			out += m
			n += m
			if k.size -= int64(m); k.size == 0 {
				k.state = ckDataCR
			}
			continue
		}
		if k.state >= ckTrailer && k.state <= ckTrLF {
			*tr = append(*tr, p[n])
		}
		if err := k.step(p[n]); err != nil {
			return n, out, err
		}
		n++
	}
	if k.state == ckDone && len(*tr) <= 1 {
		*tr = nil
	}
	return n, out, nil
}
